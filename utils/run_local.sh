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
# "run_local.sh: K / N failed, log is in <first failed log>", one line per
# failed job (a job killed by a signal says which) and the last lines of the
# first failed log go to stderr and the exit status is 1.  Usage errors exit 2.

set -euo pipefail

prog=run_local.sh
. "$(dirname "${BASH_SOURCE[0]}")/queue_common.sh"

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

# ---------------------------------------------------------------- options
max_jobs_run=
num_threads=
gpu=0
while (( $# > 0 )); do
  queue_next_option "$@"
  shift "$queue_nshift"
  [[ -n $opt ]] || break
  case $opt in
    --max-jobs-run)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || queue_die_usage "--max-jobs-run must be a positive integer, got '$val'"
      max_jobs_run=$(( 10#$val )) ;;
    --num-threads)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || queue_die_usage "--num-threads must be a positive integer, got '$val'"
      num_threads=$(( 10#$val )) ;;
    --gpu)
      [[ $val =~ ^[0-9]+$ ]] \
        || queue_die_usage "--gpu must be a non-negative integer, got '$val'"
      gpu=$(( 10#$val )) ;;
    --mem|--time|--config) : ;;   # cluster-only; nothing to do locally
    *) queue_die_usage "unknown option $opt" ;;
  esac
done

# ------------------------------------------------------------ job range
queue_parse_args "$@"
[[ -n $max_jobs_run ]] || max_jobs_run=$num_jobs

if (( gpu > 0 )) && ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "$prog: warning: --gpu $gpu requested but nvidia-smi was not found; running anyway" >&2
fi
if [[ -n $num_threads ]]; then
  export OMP_NUM_THREADS=$num_threads
fi
threads=${num_threads:-1}

# Progress on utils/stage.sh's console (queue_progress): "<name>: K/N jobs done, R running"
# as the jobs finish.  The jobs themselves do not report: N of them would garble one line.
progress=false
if [[ -n $queue_progress_file ]] && (( num_jobs > 1 )); then
  progress=true
  progress_name=$(queue_progress_name "$logfile")
  unset PYADML_PROGRESS PYADML_PROGRESS_DESC
fi

# ------------------------------------------------------------- helpers
# run_job INDEX LOG COMMAND STATUS_FILE: runs in a background subshell.
run_job() {
  local idx=$1 log=$2 command=$3 status_file=$4
  local t0 t1 rc=0 child got_sig=0
  if ! mkdir -p -- "$(dirname -- "$log")" 2>/dev/null \
      || ! { queue_log_header "$command" > "$log"; } 2>/dev/null; then
    echo "$prog: job $idx: cannot write log file $log" >&2
    echo 1 > "$status_file"
    return 1
  fi
  t0=$(date +%s)
  bash -c "$command" < /dev/null >> "$log" 2>&1 &
  child=$!
  # Forward termination to the job (background jobs ignore SIGINT).
  trap 'got_sig=1; kill -TERM "$child" 2>/dev/null || true' TERM HUP INT
  # (stderr: not bash's "Killed" notice of the job; the report below says it)
  wait "$child" 2>/dev/null || rc=$?
  if (( got_sig )); then
    rc=0; wait "$child" 2>/dev/null || rc=$?
  fi
  trap - TERM HUP INT
  t1=$(date +%s)
  queue_log_footer "$rc" "$(( t1 - t0 ))" "$threads" >> "$log"
  echo "$rc" > "$status_file"
  return "$rc"
}

# ------------------------------------------------------------- run
# The jobs' exit statuses go beside their logs (a .run_local.XXXXXX directory in the first job's
# log directory, removed at the end), not under $TMPDIR: the jobs need the logs' disk writable
# anyway, while a $TMPDIR that was full made every job look failed ("exited with code unknown",
# its log saying "Ended (code 0)"), and one read-only or missing (a cluster job's TMPDIR, set on a
# machine where it does not exist) stopped the run at mktemp, as Python's tools ran on.
status_parent=$(dirname -- "$(queue_subst "$logfile" "$start")")
status_err=
if ! status_err=$(mkdir -p -- "$status_parent" 2>&1) \
    || ! status_dir=$(mktemp -d "$status_parent/.run_local.XXXXXX" 2>&1); then
  echo "$prog: cannot write in $status_parent, where the jobs' logs go: ${status_err:-$status_dir}" >&2
  exit 1
fi
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

# report [final]: the progress line, from the jobs' status files.
report() {
  local k=0 f=0 r s text
  for s in "$status_dir"/*; do
    [[ -f $s ]] || continue
    k=$(( k + 1 ))
    [[ $(< "$s") == 0 ]] || f=$(( f + 1 ))
  done
  r=$(running_jobs)
  text="   $progress_name: $k/$num_jobs jobs done"
  (( f == 0 )) || text+=", $f failed"
  (( r == 0 )) || text+=", $r running"
  queue_progress "$text | elapsed $(queue_progress_clock)" "${1:-}"
}

for (( i = start; i <= end; i++ )); do
  while (( $(running_jobs) >= max_jobs_run )); do
    if $progress; then
      sleep 0.5
      report
    elif $have_wait_n; then
      wait -n 2>/dev/null || true
    else
      sleep 0.1
    fi
  done
  job_log=$(queue_subst "$logfile" "$i")
  job_cmd=$(queue_quote_command "$i")
  run_job "$i" "$job_log" "$job_cmd" "$status_dir/$i" &
  pids+=("$!")
done

if $progress; then
  while (( $(running_jobs) > 0 )); do
    sleep 0.5
    report
  done
  report final
fi
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
    [[ -n $first_failed_log ]] || first_failed_log=$(queue_subst "$logfile" "$i")
  fi
done

if (( ${#failed[@]} > 0 )); then
  echo "$prog: ${#failed[@]} / $num_jobs failed, log is in $first_failed_log" >&2
  for f in "${failed[@]}"; do
    if (( num_jobs > 1 )) || [[ -n $(queue_code_note "${f#*:}") ]]; then
      echo "$prog:   job ${f%%:*} exited with code ${f#*:}$(queue_code_note "${f#*:}"), log is in $(queue_subst "$logfile" "${f%%:*}")" >&2
    fi
  done
  queue_log_tail "$first_failed_log"
  exit 1
fi
exit 0
