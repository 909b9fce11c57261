# shellcheck shell=bash
# utils/stage.sh -- stage gating for recipe run.sh scripts.
#
#   stage=0; stop_stage=100; done_dir=data/.done; force=false
#   . utils/parse_options.sh || exit 1
#   . utils/stage.sh
#   run_stage 0 "prepare data" exp/log/prep.log local/prepare_data.sh data/raw
#   run_stage 1 "make features" exp/log/feats.log my_shell_function arg1
#
# run_stage N DESCRIPTION LOG_FILE COMMAND [ARGS...]
#   - N outside [stage, stop_stage]: returns 0, prints nothing.
#   - $done_dir/stage_N.done exists (and force != true): prints an
#     "already done" line and returns 0 without running COMMAND.
#   - otherwise runs COMMAND in a subshell with stdout+stderr appended to
#     LOG_FILE.  On failure it prints the status, the log path and the log's
#     tail to stderr and `exit`s the calling script with that status.  On
#     success it writes the marker (last, atomically) and prints elapsed time.
# Variables read from the caller: stage (default 0), stop_stage (default
# 1000000), done_dir (required), force (optional; true = ignore markers).
# COMMAND may be a shell function; it inherits the caller's `set -e`.

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
  if (( n < lo || n > hi )); then
    return 0
  fi
  if [[ -z ${done_dir:-} ]]; then
    echo "run_stage: set done_dir (where stage markers go) before calling run_stage" >&2
    exit 2
  fi

  local marker=$done_dir/stage_$n.done
  if [[ -e $marker ]]; then
    if [[ ${force:-false} != true ]]; then
      echo "== Stage $n: $desc: already done ($marker); skipping"
      return 0
    fi
    # Drop the old marker first so a failed forced re-run cannot look complete.
    rm -f -- "$marker"
  fi

  mkdir -p -- "$done_dir" "$(dirname -- "$log")"
  local cmdline
  cmdline=$(printf '%q ' "$@")
  cmdline=${cmdline% }
  echo "== Stage $n: $desc  [$(date)]"
  echo "   log: $log"
  printf '# Stage %s: %s  [%s]\n# command: %s\n' "$n" "$desc" "$(date)" "$cmdline" >>"$log"

  local start=$SECONDS status=0 errexit=false
  [[ $- == *e* ]] && errexit=true
  # Not run as `if cmd` / `cmd || ...`: bash disables set -e inside functions
  # called from such contexts, so a failing step inside a stage function would
  # be ignored.  Instead errexit is switched off here only, and re-enabled
  # inside the subshell.  The subshell also confines `exit`/`cd` in COMMAND.
  set +e
  (
    if $errexit; then set -e; fi
    "$@"
  ) >>"$log" 2>&1
  status=$?
  if $errexit; then set -e; fi

  if (( status != 0 )); then
    {
      echo "** Stage $n ($desc) failed with status $status; see $log"
      echo "** last lines of $log:"
      tail -n 20 -- "$log" | sed 's/^/   /'
    } >&2
    exit "$status"
  fi

  # Marker last, via rename, so a crash mid-write never leaves a partial one.
  local tmp=$done_dir/.stage_$n.done.tmp.$$
  {
    echo "date: $(date)"
    echo "stage: $n"
    echo "description: $desc"
    echo "command: $cmdline"
    echo "log: $log"
    echo "elapsed_s: $(( SECONDS - start ))"
  } >"$tmp"
  mv -f -- "$tmp" "$marker"
  echo "== Stage $n: done in $(( SECONDS - start ))s"
}
