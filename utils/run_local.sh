#!/usr/bin/env bash
# utils/run_local.sh -- local backend of the Kaldi-style "$cmd" contract.
# (Same idea as Kaldi's run.pl; an independent bash implementation.)
#
#   utils/run_local.sh [options] JOB=1:N <log-file-with-JOB> <command> [args ...]
#   utils/run_local.sh [options] <log-file> <command> [args ...]     # one job
#
# Recipes set   cmd="utils/run_local.sh --max-jobs-run 2"   in cmd.sh and call
#   $cmd JOB=1:4 exp/log/fbank.JOB.log python -m x --part JOB --of 4
#
# Job range:  NAME=START:END (or NAME=I for a single index); NAME is any
#   identifier (JOB, TASK, ...).  Every occurrence of NAME in the log path and
#   in the command words is replaced by the job index.  With more than one job
#   the log path must contain NAME (otherwise all jobs would share one log).
#
# Command:  the words are joined with spaces and run with `bash -c` in the
#   current directory, stdin from /dev/null (as on a cluster).  Like Kaldi:
#   - the FIRST word is used verbatim, so a quoted pipeline given as one word
#     works:  $cmd log "echo JOB | tr 1 x"
#   - later words without whitespace or quote characters are used verbatim, so
#     escaped operators work:  $cmd log prog a \| sort \> out.txt
#   - later words containing whitespace or quotes (or empty) are single-quoted,
#     so they reach the program as one argument:  python -m x --text "a b"
#
# Options (--name value or --name=value):
#   --max-jobs-run N   at most N jobs at a time (default: all); N >= 1
#   --num-threads T    exported to the jobs as OMP_NUM_THREADS=T; logged
#   --gpu G            warns if G > 0 and nvidia-smi is missing; still runs
#   --mem X, --time T, --config F
#                      accepted for compatibility with cluster backends; ignored
#   --help, -h         this message
# (--config is deliberately NOT sourced: cluster configs are not bash, which is
# why this script does not use utils/parse_options.sh.)
#
# Each log gets:  "# <command as run>", "# Started at <date>", the command's
# stdout+stderr, "# Accounting: time=<s> threads=<T>" and
# "# Ended (code <status>) at <date>, elapsed time <s> seconds".
#
# Exit status: 0 if every job succeeded.  Otherwise, once all jobs are done,
# "run_local.sh: K / N failed, log is in <first failed log>" plus one line per
# failed job goes to stderr and the exit status is 1.  Usage errors exit 2.

set -euo pipefail

prog=run_local.sh

usage() {
  cat <<EOF
Usage: $prog [options] JOB=1:N <log-file-with-JOB> <command> [args ...]
       $prog [options] <log-file> <command> [args ...]
Runs the command once per job index (JOB replaced by the index in the log path
and command), in parallel, each with its own log file.
Options:
  --max-jobs-run N   run at most N jobs at a time (default: all)
  --num-threads T    export OMP_NUM_THREADS=T to the jobs
  --gpu G            (warning only, if G > 0 and nvidia-smi is missing)
  --mem X | --time T | --config F   accepted for compatibility; ignored
e.g.: $prog --max-jobs-run 2 JOB=1:4 exp/log/fbank.JOB.log python -m x --part JOB --of 4
EOF
}

die_usage() {
  printf '%s: %s\n' "$prog" "$1" >&2
  usage >&2
  exit 2
}

# ---------------------------------------------------------------- options
max_jobs_run=
num_threads=
gpu=0
while (( $# > 0 )); do
  case $1 in
    --help|-h) usage; exit 0 ;;
    --) shift; break ;;
    --*=*) opt=${1%%=*}; val=${1#*=}; shift ;;
    --*)
      opt=$1
      (( $# >= 2 )) || die_usage "option $opt requires a value"
      val=$2; shift 2 ;;
    *) break ;;
  esac
  case $opt in
    --max-jobs-run)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || die_usage "--max-jobs-run must be a positive integer, got '$val'"
      max_jobs_run=$(( 10#$val )) ;;
    --num-threads)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || die_usage "--num-threads must be a positive integer, got '$val'"
      num_threads=$(( 10#$val )) ;;
    --gpu)
      [[ $val =~ ^[0-9]+$ ]] \
        || die_usage "--gpu must be a non-negative integer, got '$val'"
      gpu=$(( 10#$val )) ;;
    --mem|--time|--config) : ;;   # cluster-only; nothing to do locally
    *) die_usage "unknown option $opt" ;;
  esac
done

# ------------------------------------------------------------ job range
jobvar=
start=1
end=1
if (( $# > 0 )) && [[ $1 =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
  jobvar=${BASH_REMATCH[1]}
  range=${BASH_REMATCH[2]}
  if [[ $range =~ ^([0-9]+):([0-9]+)$ ]]; then
    start=$(( 10#${BASH_REMATCH[1]} )); end=$(( 10#${BASH_REMATCH[2]} ))
  elif [[ $range =~ ^([0-9]+)$ ]]; then
    start=$(( 10#${BASH_REMATCH[1]} )); end=$start
  else
    die_usage "bad job range '$1' (expected e.g. JOB=1:4)"
  fi
  (( end >= start )) || die_usage "bad job range '$1': end < start"
  shift
fi

(( $# >= 1 )) || die_usage "missing log file"
(( $# >= 2 )) || die_usage "missing command"
logfile=$1
shift
[[ -n $logfile ]] || die_usage "empty log file name"
if [[ -n $jobvar ]] && (( end > start )) && [[ $logfile != *"$jobvar"* ]]; then
  die_usage "running $(( end - start + 1 )) jobs but the log file '$logfile' does not contain $jobvar"
fi
cmd_words=("$@")
num_jobs=$(( end - start + 1 ))
[[ -n $max_jobs_run ]] || max_jobs_run=$num_jobs

if (( gpu > 0 )) && ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "$prog: warning: --gpu $gpu requested but nvidia-smi was not found; running anyway" >&2
fi
if [[ -n $num_threads ]]; then
  export OMP_NUM_THREADS=$num_threads
fi
threads=${num_threads:-1}

# ------------------------------------------------------------- helpers
# subst TEXT INDEX: TEXT with every occurrence of $jobvar replaced by INDEX.
subst() {
  if [[ -n $jobvar ]]; then
    printf '%s' "${1//"$jobvar"/$2}"
  else
    printf '%s' "$1"
  fi
}

# quote_word WORD: WORD as one shell word (single-quoted when needed).
quote_word() {
  local w=$1 sq="'"
  if [[ -n $w && ! $w =~ [[:space:]\'\"] ]]; then
    printf '%s' "$w"
  else
    printf "'%s'" "${w//$sq/$sq\\$sq$sq}"
  fi
}

# build_command INDEX: the shell command line for job INDEX.
build_command() {
  local idx=$1 k line
  line=$(subst "${cmd_words[0]}" "$idx")
  for (( k = 1; k < ${#cmd_words[@]}; k++ )); do
    line+=" $(quote_word "$(subst "${cmd_words[k]}" "$idx")")"
  done
  printf '%s' "$line"
}

# run_job INDEX LOG COMMAND STATUS_FILE: runs in a background subshell.
run_job() {
  local idx=$1 log=$2 command=$3 status_file=$4
  local t0 t1 rc=0 child got_sig=0
  if ! mkdir -p -- "$(dirname -- "$log")" 2>/dev/null \
      || ! { printf '# %s\n# Started at %s\n' "$command" "$(date)" > "$log"; } 2>/dev/null; then
    echo "$prog: job $idx: cannot write log file $log" >&2
    echo 1 > "$status_file"
    return 1
  fi
  t0=$(date +%s)
  bash -c "$command" < /dev/null >> "$log" 2>&1 &
  child=$!
  # Forward termination to the job (background jobs ignore SIGINT).
  trap 'got_sig=1; kill -TERM "$child" 2>/dev/null || true' TERM HUP INT
  wait "$child" || rc=$?
  if (( got_sig )); then
    rc=0; wait "$child" || rc=$?
  fi
  trap - TERM HUP INT
  t1=$(date +%s)
  {
    printf '# Accounting: time=%d threads=%s\n' "$(( t1 - t0 ))" "$threads"
    printf '# Ended (code %d) at %s, elapsed time %d seconds\n' "$rc" "$(date)" "$(( t1 - t0 ))"
  } >> "$log"
  echo "$rc" > "$status_file"
  return "$rc"
}

# ------------------------------------------------------------- run
status_dir=$(mktemp -d "${TMPDIR:-/tmp}/run_local.XXXXXX")
pids=()
cleanup() { rm -rf -- "$status_dir"; }
on_signal() {
  local sig=$1 p
  trap - INT TERM HUP
  echo "$prog: caught SIG$sig, killing running jobs" >&2
  for p in ${pids[@]+"${pids[@]}"}; do
    kill -TERM "$p" 2>/dev/null || true
  done
  wait || true
  cleanup
  [[ $sig == INT ]] && exit 130
  exit 143
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

have_wait_n=false
if (( BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 3) )); then
  have_wait_n=true
fi

running_jobs() { jobs -pr | wc -l; }

for (( i = start; i <= end; i++ )); do
  while (( $(running_jobs) >= max_jobs_run )); do
    if $have_wait_n; then
      wait -n 2>/dev/null || true
    else
      sleep 0.1
    fi
  done
  job_log=$(subst "$logfile" "$i")
  job_cmd=$(build_command "$i")
  run_job "$i" "$job_log" "$job_cmd" "$status_dir/$i" &
  pids+=("$!")
done

for p in "${pids[@]}"; do
  wait "$p" 2>/dev/null || true
done

# ------------------------------------------------------------- report
failed=()
first_failed_log=
for (( i = start; i <= end; i++ )); do
  rc=
  [[ -f $status_dir/$i ]] && rc=$(< "$status_dir/$i")
  if [[ $rc != 0 ]]; then
    failed+=("$i:${rc:-unknown}")
    [[ -n $first_failed_log ]] || first_failed_log=$(subst "$logfile" "$i")
  fi
done

if (( ${#failed[@]} > 0 )); then
  echo "$prog: ${#failed[@]} / $num_jobs failed, log is in $first_failed_log" >&2
  if (( num_jobs > 1 )); then
    for f in "${failed[@]}"; do
      echo "$prog:   job ${f%%:*} exited with code ${f#*:}, log is in $(subst "$logfile" "${f%%:*}")" >&2
    done
  fi
  exit 1
fi
exit 0
