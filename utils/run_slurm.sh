#!/usr/bin/env bash
# utils/run_slurm.sh -- Slurm backend of the Kaldi-style "$cmd" contract.
# (Same idea as Kaldi's slurm.pl; an independent bash implementation.)
#
#   utils/run_slurm.sh [options] JOB=1:N <log-file-with-JOB> <command> [args ...]
#   utils/run_slurm.sh [options] <log-file> <command> [args ...]     # one job
#
# Recipes set   cmd="utils/run_slurm.sh --config conf/slurm.conf"   in cmd.sh and call
#   $cmd JOB=1:4 exp/log/fbank.JOB.log python -m x --part JOB --of 4
#
# The contract is utils/run_local.sh's: the same job range (NAME=START:END or
# NAME=I), the same substitution of NAME in the log path and in the command
# words, the same quoting of the command words (run with `bash -c` in the
# current directory, stdin from /dev/null), the same log format and the same
# exit status.  What differs is where the jobs run:
#   - NAME=START:END is submitted as ONE Slurm array job,
#     sbatch --array=START-END[%M] (M = --max-jobs-run, when fewer than the
#     jobs); the single-job form is one plain batch job.
#   - The script then waits for the job to leave the queue (polling squeue; no
#     accounting/sacct needed) and reads every task's status from the
#     "# Ended (code N)" line that the batch script writes to the task's log.
#     A task whose log has no such line (killed node, cancelled while pending)
#     counts as failed, after waiting PYADML_SLURM_LOG_WAIT seconds (default 10)
#     for the line to show up on a shared file system.
#   - A job whose tasks all pend for a reason that waiting cannot end
#     (PartitionTimeLimit, PartitionConfig, ...) for PYADML_SLURM_PENDING_GRACE
#     seconds (default 30) is cancelled, naming the reason; exit status 1.
#   - Interrupting this script (Ctrl-C, SIGTERM) cancels the job (scancel).
#
# The batch script (a copy is kept as <log-dir>/q/<name>.sh; Slurm's own
# stdout/stderr of task I goes to <log-dir>/q/<name>.I.out) does, per task:
#   cd <submission directory>; . ./path.sh if there is one (as Kaldi does, since
#   the config's usual "sbatch --export=PATH" exports little else);
#   export OMP_NUM_THREADS=T if --num-threads T; writes "# <command>",
#   "# Started at <date>" and "# Slurm job <id>, SLURM_ARRAY_JOB_ID=..
#   SLURM_ARRAY_TASK_ID=.. on node <node>" to the log (and "# Requeued by Slurm N
#   time(s) ..." when SLURM_RESTART_COUNT says Slurm requeued it, which this
#   script then reports); runs the command with its
#   stdout+stderr appended to the log; writes "# Accounting: time=<s>
#   threads=<T>" and "# Ended (code <status>) at <date>, elapsed time <s>
#   seconds"; and exits with the command's status.  SIGTERM (scancel, time
#   limit) is passed to the command and still ends the log.
#
# Options (--name value or --name=value):
#   --config F         submission config (default: conf/slurm.conf if it exists,
#                      otherwise the built-in one below)
#   --max-jobs-run N   at most N array tasks at a time (the %N of --array)
#   --num-threads T    cores per task (config: option num_threads=...), and
#                      OMP_NUM_THREADS=T in the task
#   --mem X, --time T, --gpu G
#                      memory, time limit and GPUs per task, mapped to sbatch
#                      flags by the config
#   --NAME VALUE       any other option that the config describes (e.g.
#                      --partition gpu with "option partition=* --partition=$0")
#   --help, -h         this message
# An option that the config does not describe is an error (as in Kaldi).
#
# Config (Kaldi's slurm.pl format; '#' starts a comment):
#   command sbatch --export=PATH      the submission command and its fixed flags
#   option NAME=* FLAGS ... $0 ...    flags for --NAME VALUE; $0 is the value
#   option NAME=VALUE [FLAGS ...]     flags for exactly that value (wins over *)
#   default NAME=VALUE                value used when --NAME is not given
# FLAGS are split on whitespace (no shell quoting).  Built-in config:
#   command sbatch --export=PATH
#   option time=* --time=$0
#   option mem=* --mem=$0
#   option mem=0
#   option num_threads=* --cpus-per-task=$0
#   option num_threads=1 --cpus-per-task=1
#   default gpu=0
#   option gpu=0
#   option gpu=* --gres=gpu:$0
#   option partition=* --partition=$0
#
# Exit status: 0 if every task succeeded.  Otherwise, once the job has left the
# queue, "run_slurm.sh: K / N failed, log is in <first failed log>", one line
# per failed task and the last lines of the first failed log go to stderr and
# the exit status is 1.  Usage and config
# errors exit 2; a failed submission exits 1.

set -euo pipefail

prog=run_slurm.sh
. "$(dirname "${BASH_SOURCE[0]}")/queue_common.sh"

usage() {
  cat <<EOF
Usage: $prog [options] JOB=1:N <log-file-with-JOB> <command> [args ...]
       $prog [options] <log-file> <command> [args ...]
Runs the command once per job index (JOB replaced by the index in the log path
and command) as one Slurm array job, each task with its own log file, and waits.
Options:
  --config F         submission config (default conf/slurm.conf, else built-in)
  --max-jobs-run N   run at most N tasks at a time (sbatch --array=1-N%M)
  --num-threads T    cores per task; OMP_NUM_THREADS=T in the task
  --mem X | --time T | --gpu G | --NAME V   mapped to sbatch flags by the config
e.g.: $prog --config conf/slurm.conf JOB=1:4 exp/log/fbank.JOB.log python -m x --part JOB --of 4
EOF
}

die_config() {
  printf '%s: %s\n' "$prog" "$1" >&2
  exit 2
}

default_config='
command sbatch --export=PATH
option time=* --time=$0
option mem=* --mem=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1 --cpus-per-task=1
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
option partition=* --partition=$0
'

# ---------------------------------------------------------------- options
max_jobs_run=
num_threads=
config=
declare -A cli=()      # option name (underscores) -> value, from the command line
cli_names=()           # in the order given
while (( $# > 0 )); do
  queue_next_option "$@"
  shift "$queue_nshift"
  [[ -n $opt ]] || break
  name=${opt#--}
  name=${name//-/_}
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || queue_die_usage "bad option $opt"
  case $name in
    config) config=$val; continue ;;
    max_jobs_run)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || queue_die_usage "--max-jobs-run must be a positive integer, got '$val'"
      max_jobs_run=$(( 10#$val )); continue ;;
    num_threads)
      [[ $val =~ ^[0-9]+$ ]] && (( 10#$val >= 1 )) \
        || queue_die_usage "--num-threads must be a positive integer, got '$val'"
      val=$(( 10#$val )); num_threads=$val ;;
    gpu)
      [[ $val =~ ^[0-9]+$ ]] \
        || queue_die_usage "--gpu must be a non-negative integer, got '$val'"
      val=$(( 10#$val )) ;;
  esac
  [[ -n ${cli[$name]+set} ]] || cli_names+=("$name")
  cli[$name]=$val
done

# ------------------------------------------------------------ job range
queue_parse_args "$@"
threads=${num_threads:-1}

# Progress on utils/stage.sh's console (queue_progress): "<name>: K/N tasks done, R running"
# from the tasks' logs while the job is polled.  The tasks do not report themselves.
progress=false
if [[ -n $queue_progress_file ]] && (( num_jobs > 1 )); then
  progress=true
  progress_name=$(queue_progress_name "$logfile")
  unset PYADML_PROGRESS PYADML_PROGRESS_DESC
fi

# ------------------------------------------------------------- config
if [[ -z $config ]]; then
  if [[ -f conf/slurm.conf ]]; then
    config=conf/slurm.conf
    config_text=$(< "$config")
  else
    config="(built-in config)"
    config_text=$default_config
  fi
else
  [[ -f $config && -r $config ]] || queue_die_usage "config file '$config' does not exist or is not readable"
  config_text=$(< "$config")
fi

submit_cmd=()
declare -A defaults=() exact=() star=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$(( lineno + 1 ))
  line=${line%%#*}
  read -r -a w <<< "$line" || true
  (( ${#w[@]} > 0 )) || continue
  case ${w[0]} in
    command)
      (( ${#w[@]} >= 2 )) || die_config "$config:$lineno: 'command' needs the submission command"
      submit_cmd=("${w[@]:1}") ;;
    default)
      [[ ${#w[@]} -eq 2 && ${w[1]} =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.+)$ ]] \
        || die_config "$config:$lineno: expected 'default NAME=VALUE', got '${line}'"
      defaults[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]} ;;
    option)
      [[ ${#w[@]} -ge 2 && ${w[1]} =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.+)$ ]] \
        || die_config "$config:$lineno: expected 'option NAME=VALUE [flags]', got '${line}'"
      oname=${BASH_REMATCH[1]}
      ovalue=${BASH_REMATCH[2]}
      flags="${w[*]:2}"
      if [[ $ovalue == '*' ]]; then
        star[$oname]=$flags
      else
        exact[$oname=$ovalue]=$flags
      fi ;;
    *) die_config "$config:$lineno: cannot parse '${line}' (expected command, option or default)" ;;
  esac
done <<< "$config_text"
(( ${#submit_cmd[@]} > 0 )) || die_config "$config has no 'command ...' line"

# Command-line values, then defaults for options not given; max_jobs_run is
# handled here (the array's %M), so config lines for it are ignored.
for name in "${!defaults[@]}"; do
  if [[ -z ${cli[$name]+set} && $name != max_jobs_run ]]; then
    cli_names+=("$name")
    cli[$name]=${defaults[$name]}
  fi
done
opt_flags=()
for name in ${cli_names[@]+"${cli_names[@]}"}; do
  value=${cli[$name]}
  if [[ -n ${exact[$name=$value]+set} ]]; then
    flags=${exact[$name=$value]}
  elif [[ -n ${star[$name]+set} ]]; then
    flags=${star[$name]}
    flags=${flags//'$0'/"$value"}
  else
    die_config "option --${name//_/-} $value is not described in $config (add 'option $name=* <flags with \$0>' or 'option $name=$value <flags>')"
  fi
  read -r -a words <<< "$flags" || true
  opt_flags+=(${words[@]+"${words[@]}"})
done

# ------------------------------------------------------------- helpers
# nap SECONDS: sleep, but let a trapped signal in at once.
nap() {
  sleep "$1" &
  wait $! || true
}

# status_of LOG: the code of the log's "# Ended (code N)" line, or nothing.
status_of() {
  local last
  [[ -f $1 ]] || return 0
  last=$(tail -n 1 -- "$1" 2>/dev/null) || return 0
  if [[ $last =~ ^\#\ Ended\ \(code\ ([0-9]+)\) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

# report RUNNING [final]: the progress line; done and failed tasks from their "# Ended" lines.
report() {
  local k=0 f=0 i rc text
  for (( i = start; i <= end; i++ )); do
    rc=$(status_of "$(queue_subst "$logfile" "$i")")
    [[ -n $rc ]] || continue
    k=$(( k + 1 ))
    [[ $rc == 0 ]] || f=$(( f + 1 ))
  done
  text="   $progress_name: $k/$num_jobs tasks done"
  (( f == 0 )) || text+=", $f failed"
  (( $1 == 0 )) || text+=", $1 running"
  [[ -z ${3:-} ]] || text+=", pending: $3"
  queue_progress "$text (Slurm job $jobid) | elapsed $(queue_progress_clock)" "${2:-}"
}

# never_reason REASON: why a job pending for REASON can never start as it asks, or nothing for a
# reason that waiting can end (Resources, Priority, BeginTime after a requeue, a held job, ...).
never_reason() {
  case $1 in
    PartitionTimeLimit) echo "its time limit (--time) exceeds the partition's" ;;
    PartitionNodeLimit) echo "the nodes it asks for are outside the partition's limits" ;;
    PartitionConfig) echo "no node of the partition has what a task asks for (cores per task, memory, GPUs)" ;;
    BadConstraints) echo "its constraints cannot be satisfied" ;;
    DependencyNeverSatisfied) echo "a dependency of it can never be satisfied" ;;
    InvalidAccount|InvalidQOS|AccountNotAllowed|QOSNotAllowed) echo "its account or QOS is not allowed" ;;
  esac
}

# ------------------------------------------------------------- batch script
first_log=$(queue_subst "$logfile" "$start")
qdir=$(dirname -- "$first_log")/q
base=$(basename -- "$logfile")
if [[ -n $jobvar ]]; then
  base=${base//."$jobvar"/}
  base=${base//"$jobvar"/}
fi
base=${base%.log}
[[ -n $base && $base != . ]] || base=job
cwd=$(pwd)

# ------------------------------------------------------------- submit
mkdir -p -- "$qdir" || { echo "$prog: cannot create $qdir" >&2; exit 1; }
# Remove old logs: a stale "# Ended (code 0)" must never be read as this run's.
for (( i = start; i <= end; i++ )); do
  rm -f -- "$(queue_subst "$logfile" "$i")"
done

qpat=${qdir//%/%%}/${base//%/%%}
submit=("${submit_cmd[@]}" ${opt_flags[@]+"${opt_flags[@]}"} --parsable --job-name="$base")
if [[ -n $jobvar ]]; then
  array="$start-$end"
  if [[ -n $max_jobs_run ]] && (( max_jobs_run < num_jobs )); then
    array+="%$max_jobs_run"
  fi
  submit+=(--array="$array" --output="$qpat.%a.out")
else
  submit+=(--output="$qpat.out")
fi

script="#!/bin/bash
# Generated by utils/run_slurm.sh at $(date) for:
#   $(queue_subst "$logfile" "$jobvar") ($num_jobs task(s), $config)
#   ${submit[*]} < this script
cd $(printf '%q' "$cwd") || exit 1
idx=\${SLURM_ARRAY_TASK_ID:-$start}
case \$idx in
"
for (( i = start; i <= end; i++ )); do
  script+="  $i) log=$(printf '%q' "$(queue_subst "$logfile" "$i")")
     command=$(printf '%q' "$(queue_quote_command "$i")") ;;
"
done
script+="  *) echo \"run_slurm.sh batch script: unexpected task \$idx\" >&2; exit 1 ;;
esac
$(declare -f queue_log_header queue_log_footer)
if ! mkdir -p -- \"\$(dirname -- \"\$log\")\" \\
    || ! queue_log_header \"\$command\" > \"\$log\"; then
  echo \"run_slurm.sh batch script: cannot write log file \$log\" >&2
  exit 1
fi
printf '# Slurm job %s, SLURM_ARRAY_JOB_ID=%s SLURM_ARRAY_TASK_ID=%s on node %s\\n' \\
  \"\${SLURM_JOB_ID:-}\" \"\${SLURM_ARRAY_JOB_ID:-}\" \"\${SLURM_ARRAY_TASK_ID:-}\" \\
  \"\${SLURMD_NODENAME:-\$(hostname)}\" >> \"\$log\"
if [ \"\${SLURM_RESTART_COUNT:-0}\" -gt 0 ]; then
  echo \"# Requeued by Slurm \$SLURM_RESTART_COUNT time(s) before this run (a node failure or preemption): this log holds this run only\" >> \"\$log\"
fi
t0=\$(date +%s)
rc=0
if [ -f ./path.sh ]; then
  . ./path.sh >> \"\$log\" 2>&1 || rc=\$?
fi
${num_threads:+export OMP_NUM_THREADS=$num_threads}
if [ \"\$rc\" -eq 0 ]; then
  bash -c \"\$command\" < /dev/null >> \"\$log\" 2>&1 &
  child=\$!
  got_sig=0
  trap 'got_sig=1; kill -TERM \"\$child\" 2>/dev/null || true' TERM HUP INT
  wait \"\$child\" || rc=\$?
  if [ \"\$got_sig\" -eq 1 ]; then
    rc=0; wait \"\$child\" || rc=\$?
  fi
  trap - TERM HUP INT
fi
t1=\$(date +%s)
queue_log_footer \"\$rc\" \"\$(( t1 - t0 ))\" $threads >> \"\$log\"
exit \"\$rc\"
"

# A copy for people; sbatch reads the script from stdin, so two concurrent
# submissions with the same log name cannot swap scripts.
printf '%s' "$script" > "$qdir/$base.sh" 2>/dev/null || true

jobid=
cancel_job() {
  [[ -n $jobid ]] && scancel "$jobid" 2>/dev/null || true
}
on_signal() {
  local sig=$1
  trap - INT TERM HUP
  echo "$prog: caught SIG$sig, cancelling Slurm job ${jobid:-(not submitted)}" >&2
  cancel_job
  [[ $sig == INT ]] && exit 130
  exit 143
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

if ! out=$("${submit[@]}" <<< "$script" 2>&1); then
  echo "$prog: submission failed: ${submit[*]}" >&2
  printf '%s\n' "$out" >&2
  exit 1
fi
jobid=$(printf '%s\n' "$out" | tail -n 1)
jobid=${jobid%%;*}
if [[ ! $jobid =~ ^[0-9]+$ ]]; then
  echo "$prog: could not read the job id from: $out" >&2
  exit 1
fi
echo "$prog: submitted Slurm job $jobid${array:+ (array $array)}: $(queue_subst "$logfile" "$jobvar")" >&2

# ------------------------------------------------------------- wait
# Poll every second for the first minute, then every 5 s, then every 15 s.
# A job whose tasks all pend for a reason that waiting cannot end (a --time over the partition's
# limit, more cores per task than a node has) is cancelled after PYADML_SLURM_PENDING_GRACE
# seconds (default 30) with that reason; before, this waited forever on "0/N tasks done".
pending_grace=${PYADML_SLURM_PENDING_GRACE:-30}
[[ $pending_grace =~ ^[0-9]+$ ]] || pending_grace=30
t_start=$SECONDS
errors=0
never_since=
while :; do
  if out=$(squeue -h -j "$jobid" -o '%i %T %r' 2>&1); then
    errors=0
    # Task lines start with the job id ("12_3 RUNNING None", "12_[4-9%2] PENDING Resources");
    # none: done.
    [[ $out =~ (^|$'\n')[0-9] ]] || break
    running=$(awk '$2 == "RUNNING"' <<< "$out" | grep -c . || true)
    reasons=$(awk '$2 == "PENDING" && $3 != "" {print $3}' <<< "$out" | sort -u | paste -sd, -)
    never=
    if (( running == 0 )) && [[ -n $reasons && $reasons != *,* ]] \
        && awk '$2 != "PENDING" {exit 1}' <<< "$out"; then
      never=$(never_reason "$reasons")
    fi
    if [[ -z $never ]]; then
      never_since=
    elif [[ -z $never_since ]]; then
      never_since=$SECONDS
    elif (( SECONDS - never_since >= pending_grace )); then
      echo "$prog: Slurm job $jobid cannot start: its tasks pend with reason $reasons ($never)." >&2
      echo "$prog: cancelled it; change what it asks for (${opt_flags[*]:-no options}: the step's options as conf/slurm.conf maps them, $config) or the partition, then run again" >&2
      cancel_job
      exit 1
    fi
    if $progress; then report "$running" "" "$reasons"; fi
  else
    [[ $out == *"Invalid job id"* ]] && break   # already purged from slurmctld
    errors=$(( errors + 1 ))
    if (( errors >= 120 )); then
      echo "$prog: squeue keeps failing for job $jobid; giving up (the job may still run): $out" >&2
      cancel_job
      exit 1
    fi
  fi
  waited=$(( SECONDS - t_start ))
  if (( waited < 60 )); then nap 1
  elif (( waited < 600 )); then nap 5
  else nap 15
  fi
done

# ------------------------------------------------------------- report
# On a shared file system the last lines may show up a little after the job has
# left the queue: give missing "# Ended" lines a few seconds
# (PYADML_SLURM_LOG_WAIT, default 10).
log_wait=${PYADML_SLURM_LOG_WAIT:-10}
[[ $log_wait =~ ^[0-9]+$ ]] || log_wait=10
declare -A status=()
for (( tries = 0; tries <= log_wait; tries++ )); do
  missing=0
  for (( i = start; i <= end; i++ )); do
    [[ -n ${status[$i]:-} ]] && continue
    rc=$(status_of "$(queue_subst "$logfile" "$i")")
    if [[ -n $rc ]]; then status[$i]=$rc; else missing=1; fi
  done
  (( missing && tries < log_wait )) || break
  nap 1
done

if $progress; then report 0 final; fi

# A task Slurm requeued (its node failed, or it was preempted) ran again from the start: said
# whether it then succeeded or not, as it explains a run that took longer than it should.
for (( i = start; i <= end; i++ )); do
  l=$(queue_subst "$logfile" "$i")
  [[ -f $l ]] || continue  # never started: named below
  n=$(sed -n 's/^# Requeued by Slurm \([0-9]*\) time.*/\1/p;T;q' -- "$l" 2>/dev/null || true)
  [[ -z $n ]] || echo "$prog: job $i was requeued by Slurm $n time(s) (a node failure or preemption) and ran again from the start, log is in $l" >&2
done

failed=()
first_failed_log=
for (( i = start; i <= end; i++ )); do
  rc=${status[$i]:-}
  if [[ $rc != 0 ]]; then
    failed+=("$i:${rc:-unknown}")
    [[ -n $first_failed_log ]] || first_failed_log=$(queue_subst "$logfile" "$i")
  fi
done

if (( ${#failed[@]} > 0 )); then
  echo "$prog: ${#failed[@]} / $num_jobs failed, log is in $first_failed_log" >&2
  for f in "${failed[@]}"; do
    i=${f%%:*}
    rc=${f#*:}
    if [[ $rc == unknown ]]; then
      if [[ -n $jobvar ]]; then sout="$qdir/$base.$i.out"; else sout="$qdir/$base.out"; fi
      echo "$prog:   job $i (Slurm job ${jobid}${jobvar:+_$i}) ended without an exit status (killed, cancelled or never started), log is in $(queue_subst "$logfile" "$i"), Slurm's output in $sout" >&2
    elif (( num_jobs > 1 )) || [[ -n $(queue_code_note "$rc") ]]; then
      echo "$prog:   job $i exited with code $rc$(queue_code_note "$rc"), log is in $(queue_subst "$logfile" "$i")" >&2
    fi
  done
  queue_log_tail "$first_failed_log"
  exit 1
fi
exit 0
