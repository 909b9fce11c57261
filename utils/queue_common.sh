# utils/queue_common.sh -- the part of the Kaldi-style "$cmd" contract that
# utils/run_local.sh and utils/run_slurm.sh share, sourced by both so that the
# backends cannot drift apart: option words, job range, JOB substitution,
# quoting of the command words and the log header/footer.
#
# The sourcing script sets prog and defines usage (used by queue_die_usage).

# queue_die_usage MESSAGE: "<prog>: MESSAGE" and the usage on stderr; exit 2.
queue_die_usage() {
  printf '%s: %s\n' "$prog" "$1" >&2
  usage >&2
  exit 2
}

# queue_next_option ARGS...: the option at the front of ARGS ("--name value" or
# "--name=value") into opt and val, and into queue_nshift the number of words it
# takes.  Past the options opt is empty (queue_nshift is 1 for "--", else 0).
# Called as a plain command, not as a condition, so that set -e still holds.
queue_next_option() {
  opt= val= queue_nshift=0
  case $1 in
    --help|-h) usage; exit 0 ;;
    --) queue_nshift=1 ;;
    --*=*) opt=${1%%=*}; val=${1#*=}; queue_nshift=1 ;;
    --*)
      opt=$1
      (( $# >= 2 )) || queue_die_usage "option $opt requires a value"
      val=$2; queue_nshift=2 ;;
  esac
}

# queue_parse_args ARGS...: "[NAME=START:END | NAME=I] <log> <command> [args]"
# into jobvar (empty without a range), start, end, num_jobs, logfile, cmd_words.
queue_parse_args() {
  local range
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
      queue_die_usage "bad job range '$1' (expected e.g. JOB=1:4)"
    fi
    (( end >= start )) || queue_die_usage "bad job range '$1': end < start"
    shift
  fi

  (( $# >= 1 )) || queue_die_usage "missing log file"
  (( $# >= 2 )) || queue_die_usage "missing command"
  logfile=$1
  shift
  [[ -n $logfile ]] || queue_die_usage "empty log file name"
  # Otherwise all jobs would write one log.
  if [[ -n $jobvar ]] && (( end > start )) && [[ $logfile != *"$jobvar"* ]]; then
    queue_die_usage "running $(( end - start + 1 )) jobs but the log file '$logfile' does not contain $jobvar"
  fi
  cmd_words=("$@")
  num_jobs=$(( end - start + 1 ))
}

# queue_subst TEXT INDEX: TEXT with every occurrence of $jobvar replaced by INDEX.
queue_subst() {
  if [[ -n $jobvar ]]; then
    printf '%s' "${1//"$jobvar"/$2}"
  else
    printf '%s' "$1"
  fi
}

# queue_quote_word WORD: WORD as one shell word (single-quoted when needed).
queue_quote_word() {
  local w=$1 sq="'"
  if [[ -n $w && ! $w =~ [[:space:]\'\"] ]]; then
    printf '%s' "$w"
  else
    printf "'%s'" "${w//$sq/$sq\\$sq$sq}"
  fi
}

# queue_quote_command INDEX: the shell command line for job INDEX.  As in Kaldi
# the first word is verbatim (a quoted pipeline works), and so are later words
# without whitespace or quotes (escaped operators work).
queue_quote_command() {
  local idx=$1 k line
  line=$(queue_subst "${cmd_words[0]}" "$idx")
  for (( k = 1; k < ${#cmd_words[@]}; k++ )); do
    line+=" $(queue_quote_word "$(queue_subst "${cmd_words[k]}" "$idx")")"
  done
  printf '%s' "$line"
}

# queue_log_header COMMAND and queue_log_footer STATUS SECONDS THREADS: the
# first and last lines of a job's log.  run_slurm.sh copies both into its batch
# script (declare -f) and reads the status back from the last line, so they
# must stay self-contained and "# Ended (code N)" must stay last.
queue_log_header() {
  printf '# %s\n# Started at %s\n' "$1" "$(date)"
}
queue_log_footer() {
  printf '# Accounting: time=%d threads=%s\n' "$2" "$3"
  printf '# Ended (code %d) at %s, elapsed time %d seconds\n' "$1" "$(date)" "$2"
}

# queue_code_note CODE: what an exit status above 128 means (a job killed by a signal), as
# " (killed by SIGKILL: out of memory, or kill -9?)"; nothing for other codes.
queue_code_note() {
  local code=$1 name
  [[ $code =~ ^[0-9]+$ ]] && (( code > 128 && code < 128 + 65 )) || return 0
  name=$(kill -l "$(( code - 128 ))" 2>/dev/null) || return 0
  name=${name#SIG}
  case $name in
    KILL) printf ' (killed by SIGKILL: out of memory, or kill -9?)' ;;
    *) printf ' (killed by SIG%s)' "$name" ;;
  esac
}

# queue_log_tail LOG [N]: the last N (8) lines of a failed job's log on stderr, without the
# footer, a progress bar's redrawn line shown as a terminal would (its last state), so that the
# reason is on the console beside the log's name.
queue_log_tail() {
  local log=$1 n=${2:-8}
  if [[ ! -s $log ]]; then
    printf '%s: (%s is empty or missing: the job never started?)\n' "$prog" "$log" >&2
    return 0
  fi
  printf '%s: last lines of %s:\n' "$prog" "$log" >&2
  sed -e 's/.*\r\(.\)/\1/' -e '/^# Accounting: /d' -e '/^# Ended (code /d' -e '/^[[:space:]]*$/d' \
      -- "$log" 2>/dev/null | tail -n "$n" | cut -c1-300 | sed 's/^/   /' >&2 || true
}

# ------------------------------------------------------------------ progress
# Progress for the console of utils/stage.sh's run_stage, which copies the file named by
# $PYADML_PROGRESS to the console while the stage's output goes to its log.  Nothing is
# written when it is unset (a step run by hand, or a job of a $cmd that reports its jobs
# itself).  PYADML_PROGRESS_TTY=1: the console is a terminal and a line is redrawn in place;
# otherwise (a pipe, a file) a line at most every $PYADML_PROGRESS_INTERVAL seconds (default
# 15), and always the final one.  The file is captured here, so that a backend can take
# PYADML_PROGRESS out of its jobs' environment and still report.
queue_progress_file=${PYADML_PROGRESS:-}
queue_progress_t0=$SECONDS
queue_progress_last=$SECONDS   # the first periodic line comes one interval in

# queue_progress TEXT [final]
queue_progress() {
  local text=$1 final=${2:-} interval=${PYADML_PROGRESS_INTERVAL:-15}
  [[ -n $queue_progress_file ]] || return 0
  interval=${interval%%.*}
  [[ $interval =~ ^[0-9]+$ ]] || interval=15
  if [[ ${PYADML_PROGRESS_TTY:-0} == 1 ]]; then
    if [[ $final == final ]]; then text+=$'\e[K\n'; else text+=$'\e[K'; fi
    { printf '\r%s' "$text" >>"$queue_progress_file"; } 2>/dev/null || true
  elif [[ $final == final ]] || (( SECONDS - queue_progress_last >= interval )); then
    queue_progress_last=$SECONDS
    { printf '%s\n' "$text" >>"$queue_progress_file"; } 2>/dev/null || true
  fi
  return 0
}

# queue_progress_clock: seconds since this script started as m:ss (h:mm:ss).
queue_progress_clock() {
  local s=$(( SECONDS - queue_progress_t0 ))
  if (( s >= 3600 )); then
    printf '%d:%02d:%02d' $(( s / 3600 )) $(( s % 3600 / 60 )) $(( s % 60 ))
  else
    printf '%d:%02d' $(( s / 60 )) $(( s % 60 ))
  fi
}

# queue_progress_name LOGFILE: what a $cmd call is called in its progress lines: the log's
# name without the job variable and .log (log/fbank_wsj.JOB.log -> fbank_wsj), unless the
# step named it ($PYADML_PROGRESS_DESC).
queue_progress_name() {
  local base
  if [[ -n ${PYADML_PROGRESS_DESC:-} ]]; then printf '%s' "$PYADML_PROGRESS_DESC"; return; fi
  base=$(basename -- "$1")
  if [[ -n ${jobvar:-} ]]; then base=${base//."$jobvar"/}; base=${base//"$jobvar"/}; fi
  printf '%s' "${base%.log}"
}
