# shellcheck shell=bash
# utils/stage.sh -- stage gating for recipe run.sh scripts.
#
#   stage=0; stop_stage=100; done_dir=data/.done; force=false
#   . utils/parse_options.sh || exit 1
#   . utils/stage.sh
#   run_stage 0 "prepare data" exp/log/prep.log local/prepare_data.sh data/raw
#   stage_inputs="conf/fbank.yaml" \
#     run_stage 1 "make features" exp/log/feats.log my_shell_function arg1
#
# run_stage N DESCRIPTION LOG_FILE COMMAND [ARGS...]
#   - N outside [stage, stop_stage]: returns 0, prints nothing.
#   - $done_dir/stage_N.done exists, force != true and its key matches what the
#     stage would run now: prints an "already done" line and returns 0 without
#     running COMMAND.
#   - the marker exists but its key differs: prints why the stage reruns (the
#     input files that changed, were added or removed, or the old and new
#     command line; "marker has no key" for markers written before keys
#     existed), removes the marker and runs the stage.
#   - otherwise runs COMMAND in a subshell with stdout+stderr appended to
#     LOG_FILE.  On failure it prints the status, the log path and the log's
#     tail to stderr and `exit`s the calling script with that status.  On
#     success it writes the marker (last, atomically) and prints elapsed time.
#   - SIGINT, SIGTERM or SIGHUP to the calling script while COMMAND runs (Ctrl-C,
#     kill PID, timeout, a hang-up) stops every process of the stage (SIGTERM;
#     Ctrl-C first gets 10 s to work), says which stage was interrupted and
#     exits 128+signal without a marker: nothing of the stage runs on.
#
# The key (a "key:" line in the marker) is a sha256 over
#   1. the command line (printf %q of COMMAND and ARGS),
#   2. the contents of every ARG that names an existing regular file (also the
#      FILE of --opt=FILE), and for a .yaml/.yml file also of the file named by
#      its top-level "base: other.yaml" line (relative to the yaml's directory),
#      recursively -- training configs layer on a base;
#   3. the contents of the files in $stage_inputs (space-separated), for inputs
#      that are not named on the command line (a stage function's configs), and
#      of the files listed one a line in the files of $stage_input_lists: inputs
#      that only the stage knows, listed by its previous run (stage 1 lists the
#      corpus files it read, so an edited CTM or text reruns it). A directory in
#      such a list stands for the names of the files under it (symlinks
#      followed), not their contents: stage 1 lists the corpus directories it
#      searched, so a file added there (a chapter unpacked after an interrupted
#      tar, the alignments of a chapter that had none) reruns it too.
#   4. the keys of the stages before it in this script ("upstream: stage_M KEY"
#      lines; a stage outside [stage, stop_stage] contributes its marker's key),
#      so a change that reruns a stage reruns every stage after it.
# Other directories are not hashed.  Paths in $stage_outputs (space-separated) are
# left out: files a stage writes that something else also rewrites (a results
# table shared by experiments) would otherwise make it rerun.  Each hashed file
# is listed in the marker as "input: <sha256> <path>" so a change can be named.
# Files are hashed after COMMAND succeeds, so a file the stage itself writes
# (--out model.pt) is recorded as the stage left it, not as missing.
# Give per-stage variables as a prefix:  stage_inputs="a.yaml b.yaml" run_stage ...
#
# Variables read from the caller: stage (default 0), stop_stage (default
# 1000000), done_dir (required), force (optional; true = ignore markers),
# stage_inputs, stage_input_lists and stage_outputs (optional; empty by default).
# COMMAND may be a shell function; it inherits the caller's `set -e`.

# _stage_yaml_base YAML: the path its top-level "base:" line names, or nothing.
_stage_yaml_base() {
  local line base
  line=$(grep -m1 -E '^base:' -- "$1" 2>/dev/null) || return 0
  base=${line#base:}
  base=${base%%[[:space:]]#*}                       # trailing comment
  base=${base#"${base%%[![:space:]]*}"}             # leading blanks
  base=${base%"${base##*[![:space:]]}"}             # trailing blanks
  base=${base#[\"\']}; base=${base%[\"\']}          # quotes
  [[ -n $base ]] || return 0
  if [[ $base == /* ]]; then
    echo "$base"
  else
    local dir
    dir=$(dirname -- "$1")
    if [[ $dir == . ]]; then echo "$base"; else echo "$dir/$base"; fi
  fi
}

# _stage_inputs ARGS...: the files the key covers, one per line, each once.
# Uses the caller's associative array `_stage_seen` (local to run_stage).
_stage_add_file() {
  local f=$1 w
  [[ -f $f && -z ${_stage_seen[$f]:-} ]] || return 0
  for w in ${stage_outputs:-}; do
    [[ $w == "$f" ]] && return 0
  done
  _stage_seen[$f]=1
  echo "$f"
  case $f in
    *.yaml|*.yml)
      local base
      base=$(_stage_yaml_base "$f")
      # Cycles end here: a file already seen is not added (nor followed) again.
      [[ -z $base ]] || _stage_add_file "$base" ;;
  esac
}

# _stage_add_dir DIR: a directory of a $stage_input_lists file, once.
_stage_add_dir() {
  [[ -d $1 && -z ${_stage_seen[$1]:-} ]] || return 0
  _stage_seen[$1]=1
  echo "$1"
}

_stage_inputs() {
  local a
  for a in "$@"; do
    _stage_add_file "$a"
    if [[ $a == -*=* ]]; then _stage_add_file "${a#*=}"; fi
  done
  for a in ${stage_inputs:-}; do
    _stage_add_file "$a"
  done
  local list
  for list in ${stage_input_lists:-}; do
    [[ -f $list ]] || continue
    # A listed file that is gone is left out, and so reads as removed: the stage reruns.
    while IFS= read -r a; do
      [[ -z $a ]] || { _stage_add_file "$a"; _stage_add_dir "$a"; }
    done <"$list"
  done
}

# _stage_manifest CMDLINE ARGS...: "command: ..." and "input: <sha256> <path>"
# lines; the key is the sha256 of exactly this text.
_stage_manifest() {
  local cmdline=$1 f h line
  shift
  local -A _stage_seen=() sums=()
  local files=() plain=()
  echo "command: $cmdline"
  printf '%s' "${_stage_upstream:-}"
  mapfile -t files < <(_stage_inputs "$@")
  for f in "${files[@]}"; do [[ -d $f ]] || plain+=("$f"); done
  # One sha256sum for them all: a real corpus's list (stage 1's transcripts) holds thousands of
  # files, and a process each took seconds.
  while IFS= read -r line; do
    # A name with a backslash comes escaped ("\<sum>  <name>"): hashed on its own below.
    [[ $line == \\* ]] || sums[${line:66}]=${line:0:64}
  done < <(printf '%s\0' "${plain[@]}" | xargs -0 -r sha256sum -- 2>/dev/null)
  for f in "${files[@]}"; do
    if [[ -d $f ]]; then
      # The names of the files under it (a corpus's: one find, seconds for 300,000 files).
      h=$(find -L "$f" -type f -printf '%P\n' 2>/dev/null | LC_ALL=C sort | sha256sum)
      echo "input: ${h%% *} $f"
      continue
    fi
    h=${sums[$f]:-}
    # An unreadable file still counts (as such), rather than killing the caller.
    [[ -n $h ]] || { h=$(sha256sum <"$f" 2>/dev/null) && h=${h%% *}; } || h=unreadable
    echo "input: $h $f"
  done
}

_stage_key() { printf '%s\n' "$1" | sha256sum | cut -d' ' -f1; }

# _stage_note N MARKER: stage N's key joins the upstream of the stages after it.
_stage_upstream=
_stage_note() {
  local key=
  [[ -f $2 ]] && key=$(sed -n 's/^key: //p' "$2" | head -n 1)
  _stage_upstream+="upstream: stage_$1 ${key:-none}"$'\n'
}

# _stage_why_changed MARKER MANIFEST: say what differs between the recorded
# inputs and command line and the current ones.
_stage_why_changed() {
  local marker=$1 manifest=$2 line p
  local -A old=() new=()
  local changed=() added=() removed=() relisted=()
  while IFS= read -r line; do
    [[ $line == "input: "* ]] || continue
    line=${line#input: }; old[${line#* }]=${line%% *}
  done <"$marker"
  # Walk the lists in file order (not hash order) so the report reads stably.
  while IFS= read -r line; do
    [[ $line == "input: "* ]] || continue
    line=${line#input: }; p=${line#* }; new[$p]=1
    if [[ -z ${old[$p]:-} ]]; then added+=("$p")
    elif [[ ${old[$p]} != "${line%% *}" ]]; then
      if [[ -d $p ]]; then relisted+=("$p"); else changed+=("$p"); fi
    fi
  done <<<"$manifest"
  while IFS= read -r line; do
    [[ $line == "input: "* ]] || continue
    p=${line#input: }; p=${p#* }
    [[ -n ${new[$p]:-} ]] || removed+=("$p")
  done <"$marker"
  local up_changed=() k
  local -A old_up=()
  while IFS= read -r line; do
    [[ $line == "upstream: "* ]] || continue
    line=${line#upstream: }; old_up[${line%% *}]=${line#* }
  done <"$marker"
  while IFS= read -r line; do
    [[ $line == "upstream: "* ]] || continue
    line=${line#upstream: }; k=${line%% *}
    [[ ${old_up[$k]:-} == "${line#* }" ]] || up_changed+=("${k#stage_}")
  done <<<"$manifest"
  local old_cmd new_cmd
  old_cmd=$(sed -n 's/^command: //p' "$marker" | head -n 1)
  new_cmd=$(sed -n 's/^command: //p' <<<"$manifest")
  local said=false
  if [[ $old_cmd != "$new_cmd" ]]; then
    echo "   its command line changed"
    echo "     was: $old_cmd"
    echo "     now: $new_cmd"
    said=true
  fi
  if (( ${#changed[@]} )); then echo "   changed: ${changed[*]}"; said=true; fi
  if (( ${#relisted[@]} )); then
    echo "   files added or removed under: ${relisted[*]}"; said=true
  fi
  if (( ${#added[@]} )); then echo "   added: ${added[*]}"; said=true; fi
  if (( ${#removed[@]} )); then echo "   removed: ${removed[*]}"; said=true; fi
  if (( ${#up_changed[@]} )); then
    echo "   an earlier stage changed: stage ${up_changed[*]}"; said=true
  fi
  $said || echo "   its key differs (marker edited?)"
}

# _stage_follow FILE END PARENT: copy what is appended to FILE to stdout, byte for byte (so a
# live bar's carriage returns redraw it), every 0.25 s, until the file END exists (then the
# rest) or the process PARENT is gone (Ctrl-C).  The stage's progress channel: commands append
# to $PYADML_PROGRESS (pyadml.train.progress, utils/queue_common.sh); PYADML_PROGRESS_TTY=1
# says the console is a terminal (live bars), otherwise they write a line every
# $PYADML_PROGRESS_INTERVAL seconds (default 15).  The file stays as <log>.progress.
_stage_follow() {
  set +e
  local file=$1 end=$2 parent=$3 pos=0 size last=false
  while :; do
    [[ -e $end ]] && last=true
    size=$(wc -c <"$file" 2>/dev/null)
    size=${size//[!0-9]/}
    size=${size:-$pos}
    (( size >= pos )) || pos=0
    if (( size > pos )); then
      tail -c +"$(( pos + 1 ))" -- "$file" 2>/dev/null | head -c "$(( size - pos ))"
      pos=$size
    fi
    $last && return 0
    kill -0 "$parent" 2>/dev/null || return 0
    sleep 0.25
  done
}

# _stage_descendants PID: the PIDs of PID's descendants (children first), from one snapshot.
_stage_descendants() {
  local -A kids=()
  local pid ppid line queue=("$1") p c i=0
  if command -v ps >/dev/null 2>&1; then
    while read -r pid ppid; do kids[$ppid]+=" $pid"; done < <(ps -e -o pid= -o ppid= 2>/dev/null)
  else
    for p in /proc/[0-9]*/stat; do
      read -r line <"$p" 2>/dev/null || continue
      pid=${line%% *}; line=${line##*) }; line=${line#* }; ppid=${line%% *}
      kids[$ppid]+=" $pid"
    done
  fi
  while (( i < ${#queue[@]} )); do
    p=${queue[i]}; i=$(( i + 1 ))
    for c in ${kids[$p]:-}; do queue+=("$c"); echo "$c"; done
  done
}

# _stage_start_time PID: field 22 of /proc/PID/stat (when it started; with the PID, it names one
# process, not a later one given the same PID), or nothing for a process gone or a zombie.
_stage_start_time() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 0
  line=${line##*) }                    # the fields after "(comm)", which may hold anything
  [[ $line != Z* ]] || return 0
  read -r -a line <<<"$line"
  echo "${line[19]}"
}

# _stage_stop CHILD SIG: run.sh got SIG while the stage's subshell CHILD ran. Ctrl-C (INT) reached
# the whole process group: the stage gets 10 s to stop by itself. Otherwise, or after that, every
# process of the stage gets SIGTERM (run_local.sh and torchrun pass it on to their jobs), and after
# 30 s more SIGKILL; then it returns, the stage's processes gone, so that no orphan writes on and
# the lock that hold_lock took is free for the next run.
_stage_stop() {
  local child=$1 sig=$2 p t
  local -A born=()
  trap '' INT TERM HUP   # a second Ctrl-C must not cut the stop short
  for p in "$child" $(_stage_descendants "$child"); do
    born[$p]=$(_stage_start_time "$p")
  done
  _stage_alive() {   # the processes of the snapshot still running, into alive
    alive=()
    for p in "${!born[@]}"; do
      [[ -z ${born[$p]} || $(_stage_start_time "$p") != "${born[$p]}" ]] || alive+=("$p")
    done
    (( ${#alive[@]} ))
  }
  local alive=()
  if [[ $sig == INT ]]; then
    for (( t = 0; t < 100; t++ )); do _stage_alive || break; sleep 0.1; done
  fi
  if _stage_alive; then
    kill -TERM "${alive[@]}" 2>/dev/null
    for (( t = 0; t < 300; t++ )); do _stage_alive || break; sleep 0.1; done
    if _stage_alive; then kill -KILL "${alive[@]}" 2>/dev/null; fi
  fi
  wait "$child" 2>/dev/null
  return 0
}

# _stage_disk_note LOG: after a failed stage, a line for each disk that holds LOG's directory or
# the current one (data/, exp/ and the recipe's files) and is full: the stage's error may then be
# missing from its log, which could not be written either (train.error, the last lines), and the
# lines above would give no reason.
_stage_disk_note() {
  local d avail mount
  local -A seen=()
  for d in "$(dirname -- "$1")" .; do
    read -r avail mount < <(df -Pk -- "$d" 2>/dev/null | awk 'NR == 2 { print $4, $6 }') || continue
    [[ $avail =~ ^[0-9]+$ && -z ${seen[$mount]:-} ]] || continue
    seen[$mount]=1
    (( avail < 1024 )) || continue
    echo "** the disk of $d ($mount) is full: $avail KiB free; the stage's error may be missing" \
      "from its log. Free some space, or move the recipe to a larger disk, then run again"
  done
}

run_stage() {
  if (( $# < 4 )); then
    echo "run_stage: usage: run_stage N description log_file command [args...]" >&2
    exit 2
  fi
  local n=$1 desc=$2 log=$3
  shift 3
  local lo=${stage:-0} hi=${stop_stage:-1000000}
  local v
  # Validate before (( )) sees them: there a non-number is read as a variable name.
  for v in "$n" "$lo" "$hi"; do
    if [[ ! $v =~ ^-?[0-9]+$ ]]; then
      echo "run_stage: stage numbers must be integers (N=$n stage=$lo stop_stage=$hi)" >&2
      exit 2
    fi
  done
  if [[ -z ${done_dir:-} ]]; then
    echo "run_stage: set done_dir (where stage markers go) before calling run_stage" >&2
    exit 2
  fi
  local marker=$done_dir/stage_$n.done
  if (( n < lo )); then
    _stage_note "$n" "$marker"
    return 0
  fi
  if (( n > hi )); then
    return 0
  fi

  local cmdline
  cmdline=$(printf '%q ' "$@")
  cmdline=${cmdline% }
  if [[ -e $marker ]]; then
    if [[ ${force:-false} != true ]]; then
      local manifest old_key
      manifest=$(_stage_manifest "$cmdline" "$@")
      old_key=$(sed -n 's/^key: //p' "$marker" | head -n 1)
      if [[ -z $old_key ]]; then
        echo "== Stage $n: $desc: marker has no key; rerunning ($marker)"
      elif [[ $old_key == "$(_stage_key "$manifest")" ]]; then
        echo "== Stage $n: $desc: already done ($marker); skipping"
        _stage_note "$n" "$marker"
        return 0
      else
        echo "== Stage $n: $desc: changed since $marker; rerunning:"
        _stage_why_changed "$marker" "$manifest"
      fi
    fi
    # Drop the old marker first so a failed re-run cannot look complete.
    rm -f -- "$marker"
  fi

  mkdir -p -- "$done_dir" "$(dirname -- "$log")"
  echo "== Stage $n: $desc  [$(date)]"
  echo "   log: $log"
  printf '# Stage %s: %s  [%s]\n# command: %s\n' "$n" "$desc" "$(date)" "$cmdline" >>"$log"

  local start=$SECONDS status=0 errexit=false
  [[ $- == *e* ]] && errexit=true
  # Not run as `if cmd` / `cmd || ...`: bash disables set -e inside functions
  # called from such contexts, so a failing step inside a stage function would
  # be ignored.  Instead errexit is switched off here only, and re-enabled
  # inside the subshell.  The subshell also confines `exit`/`cd` in COMMAND.
  # Progress: the command's output goes to the log, and what it writes to its progress
  # channel ($PYADML_PROGRESS, <log>.progress) is copied to the console while it runs.
  local progress progress_tty=0 progress_cols= follower
  progress=$(cd -- "$(dirname -- "$log")" && pwd)/$(basename -- "$log").progress
  : >"$progress"
  rm -f -- "$progress.end"
  if [[ -t 1 ]]; then
    progress_tty=1
    progress_cols=$(stty size </dev/tty 2>/dev/null | cut -d' ' -f2) || progress_cols=
  fi
  # The shell running run_stage, read here: in the arguments of a command run with & it would be
  # the follower's own PID, and a follower of a killed run.sh then looped on forever, holding
  # the lock that hold_lock took (its descriptor is inherited).
  local parent=$BASHPID
  _stage_follow "$progress" "$progress.end" "$parent" &
  follower=$!
  set +e
  # The command runs in the background and is waited for: bash defers a trap while a foreground
  # command runs, and without one a signal to run.sh alone (kill PID, timeout, a hang-up) ended
  # run.sh and left the stage running on without it. Now the signal stops the stage's processes
  # (_stage_stop), and run_stage says so. Its stdin stays run.sh's (not the /dev/null of &).
  local in_fd child sig= old_traps
  old_traps=$(trap -p INT TERM HUP)
  exec {in_fd}<&0
  (
    trap - INT QUIT   # older bashes ignore them in a background command
    if $errexit; then set -e; fi
    export PYADML_PROGRESS=$progress PYADML_PROGRESS_TTY=$progress_tty
    [[ -z $progress_cols ]] || export PYADML_PROGRESS_COLS=$progress_cols
    "$@"
  ) <&"$in_fd" >>"$log" 2>&1 &
  child=$!
  exec {in_fd}<&-
  trap 'sig=${sig:-INT}' INT
  trap 'sig=${sig:-TERM}' TERM
  trap 'sig=${sig:-HUP}' HUP
  wait "$child"
  status=$?
  if [[ -n $sig ]]; then
    _stage_stop "$child" "$sig"
    case $sig in INT) status=130 ;; HUP) status=129 ;; *) status=143 ;; esac
  fi
  trap - INT TERM HUP
  eval "$old_traps"
  : >"$progress.end"
  wait "$follower" 2>/dev/null
  rm -f -- "$progress.end"
  # A live bar left without its newline (a crash) must not swallow the next line.
  [[ ! -s $progress || -z $(tail -c 1 -- "$progress") ]] || echo
  if $errexit; then set -e; fi

  if [[ -n $sig ]]; then
    {
      echo "** Stage $n ($desc) interrupted by SIG$sig; see $log"
      echo "** its processes are stopped; it is not marked done, so the next run runs it again"
    } >&2 2>/dev/null
    exit "$status"
  fi
  if (( status != 0 )); then
    {
      echo "** Stage $n ($desc) failed with status $status; see $log"
      echo "** last lines of $log:"
      tail -n 20 -- "$log" | sed 's/^/   /'
      _stage_disk_note "$log"
    } >&2
    exit "$status"
  fi

  # Hashed now, after the command: files it wrote itself are recorded as it
  # left them, so the next run does not see them as new inputs.
  local manifest
  manifest=$(_stage_manifest "$cmdline" "$@")
  # Marker last, via rename, so a crash mid-write never leaves a partial one.
  local tmp=$done_dir/.stage_$n.done.tmp.$$
  {
    echo "date: $(date)"
    echo "stage: $n"
    echo "description: $desc"
    echo "log: $log"
    echo "elapsed_s: $(( SECONDS - start ))"
    echo "key: $(_stage_key "$manifest")"
    echo "$manifest"
  } >"$tmp"
  mv -f -- "$tmp" "$marker"
  _stage_note "$n" "$marker"
  echo "== Stage $n: done in $(( SECONDS - start ))s"
}

# hold_lock FILE [shared]: an exclusive lock on FILE for the rest of the calling script, or exit
# naming the run that holds it. With "shared", a shared one: runs that only read what the lock
# guards (run.sh from stage 6 on reads data/) run side by side, but not beside one that writes
# it (stages 0-5 of another run.sh). The lock is on a descriptor the script keeps open, so it
# ends with the script, and processes the script started (torchrun's workers) keep holding it
# while they live: a re-run cannot train beside a stray worker.
# A shared lock on a directory this user cannot write (a data/ shared read-only by the group that
# prepared it, or on a read-only mount) is taken on the lock file opened for reading, which flock
# allows, without the holder line; where there is no lock file to open, the run reads without
# one and says so. An exclusive lock there is refused, naming what cannot be written.
hold_lock() {
  local file=$1 mode=${2:-} fd flags=-n line err writable=true
  [[ $mode != shared ]] || flags="-s -n"
  if ! err=$({ mkdir -p -- "$(dirname -- "$file")" && : >>"$file"; } 2>&1); then
    err=${err##*: }
    if [[ $mode == shared && -f $file ]] && { exec {fd}<"$file"; } 2>/dev/null; then
      writable=false
    elif [[ $mode == shared && ! -e $file ]]; then
      echo "$0: note: $(dirname -- "$file") is only read from here on, and its lock file" \
        "$file cannot be made ($err): reading it without the lock" >&2
      return 0
    else
      echo "$0: cannot take the lock $file: $err; $(dirname -- "$file") must be writable" \
        "for what this run does${mode:+ (}${mode:+from stage 6 on it is only read, and may be shared read-only)}" >&2
      exit 1
    fi
  else
    exec {fd}>>"$file"
  fi
  # shellcheck disable=SC2086
  if ! flock $flags "$fd"; then
    local holder pid host line alive=()
    holder=$(cat -- "$file" 2>/dev/null)
    # Shared holders each add a line: name those still running (all when none is).
    while IFS= read -r line; do
      read -r _ pid _ host _ <<<"$line"
      [[ ! $pid =~ ^[0-9]+$ || $host != "$(hostname)" ]] || kill -0 "$pid" 2>/dev/null || continue
      alive+=("$line")
    done <<<"$holder"
    if (( ${#alive[@]} )); then holder=$(printf '%s\n' "${alive[@]}"); fi
    echo "$0: $(dirname -- "$file") is in use by: ${holder:-another run}" >&2
    read -r _ pid _ host _ <<<"$holder"
    # A run killed with SIGKILL leaves the processes of its stage running on, and they hold the
    # lock (inherited): name them, not only the PID of a run that is gone.
    if (( ! ${#alive[@]} )) && [[ $pid =~ ^[0-9]+$ && $host == "$(hostname)" ]]; then
      local real holders=() p cmd
      real=$(readlink -f -- "$file")
      exec {fd}>&-   # ours closed: the processes that search are not listed
      sleep 0.5      # the killed run's console follower ends within 0.25 s: not listed either
      for p in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$real" 2>/dev/null | cut -d/ -f3 | sort -un); do
        cmd=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-100) || continue
        [[ -z $cmd ]] || holders+=("$p ($cmd)")
      done
      if (( ${#holders[@]} )); then
        echo "$0: pid $pid is gone (killed?), but processes it started still hold the lock:" >&2
        for p in "${holders[@]}"; do echo "$0:   $p" >&2; done
        echo "$0: they end when their work does; to stop them: kill ${holders[*]%% *}" >&2
        echo "$0: then run again (the stage they belong to reruns: it was not marked done)" >&2
        exit 1
      fi
    fi
    echo "$0: (lock $file) wait for that run to finish, or stop it, then run again" >&2
    exit 1
  fi
  line=$(printf 'pid %s on %s since %s: %s%s' "$$" "$(hostname)" "$(date '+%F %T')" "$0" \
    "${mode:+ (reading)}")
  $writable || return 0   # who holds it, only where it can be written
  if [[ $mode == shared ]]; then echo "$line" >> "$file"; else echo "$line" > "$file"; fi
}
