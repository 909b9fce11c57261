# shellcheck shell=bash
# utils/parse_options.sh -- command-line option parsing for recipe scripts.
#
# Usage (in a script, after its default variables are set):
#
#   stage=0
#   nj=4
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>\n  --nj N   ..."
#   . utils/parse_options.sh || exit 1
#
# Source it WITHOUT arguments: bash only lets a sourced file consume the
# caller's positional parameters when none are passed to `.`.
#
# Contract (same as Kaldi's parse_options.sh, independently implemented):
#   --name value | --name=value   set $name; dashes in name become underscores.
#                                 Only variables the script already defined are
#                                 accepted, so typos fail loudly.
#   boolean options               a variable whose default is true/false only
#                                 accepts true or false.
#   --config FILE                 FILE is sourced before every other option is
#                                 applied, wherever it appears, so explicit
#                                 options override the config.
#   --help | -h                   print usage to stdout and exit 0.
#   --  or first non-"--" arg     ends option parsing; the rest stays in "$@".
# Errors print a message and the usage to stderr and `exit 1`; since this file
# is sourced, that terminates the calling script.
# Internal names all start with __po_ and are removed before returning.

__po_usage() {
  if [[ -n "${help_message+set}" ]]; then
    printf "%b\n" "$help_message"
  else
    printf '%s\n' "Usage: $0 [options] <args>  (see the top of $0 for the options and their defaults)"
  fi
}

__po_die() {
  printf '%s\n' "$0: $1" >&2
  __po_usage >&2
  exit 1
}

# Pass 1: source every --config file first.  The walk mirrors pass 2's
# tokenisation, so a value that happens to read "--config" is not mistaken for
# the option, and nothing after "--" or the first positional is looked at.
__po_i=1
while (( __po_i <= $# )); do
  __po_arg=${!__po_i}
  __po_cfg=
  case $__po_arg in
    --|--help|-h) break ;;
    --config=*)
      __po_cfg=${__po_arg#--config=}
      __po_i=$(( __po_i + 1 )) ;;
    --config)
      if (( __po_i + 1 > $# )); then
        __po_die "option --config requires a value"
      fi
      __po_j=$(( __po_i + 1 ))
      __po_cfg=${!__po_j}
      __po_i=$(( __po_i + 2 )) ;;
    --*=*) __po_i=$(( __po_i + 1 )) ;;
    --*)   __po_i=$(( __po_i + 2 )) ;;  # consumes its value
    *) break ;;
  esac
  if [[ $__po_arg == --config || $__po_arg == --config=* ]]; then
    # -r alone accepts directories, which `.` would then fail on obscurely.
    if [[ ! -f $__po_cfg || ! -r $__po_cfg ]]; then
      __po_die "config file '$__po_cfg' does not exist or is not readable"
    fi
    # Sourced at top level (not in a function) so `declare`s in it stay global.
    # shellcheck disable=SC1090
    . "$__po_cfg"
  fi
done

# Pass 2: apply the options in order, shifting them off the caller's "$@".
while (( $# > 0 )); do
  case $1 in
    --) shift; break ;;
    --help|-h) __po_usage; exit 0 ;;
    --*=*)
      __po_opt=${1%%=*}
      __po_value=${1#*=}
      shift ;;
    --*)
      __po_opt=$1
      # The value is taken verbatim even if it starts with a dash (--opts "-x 1").
      if (( $# < 2 )); then
        __po_die "option $__po_opt requires a value"
      fi
      __po_value=$2
      shift 2 ;;
    *) break ;;
  esac

  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  [[ $__po_name == config ]] && continue  # already sourced in pass 1

  # Reject non-identifiers before `declare -p`/`printf -v` can misread them,
  # and never let options reach our own internals.
  if [[ ! $__po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ || $__po_name == __po_* ]] \
      || ! declare -p "$__po_name" >/dev/null 2>&1; then
    __po_die "unknown option $__po_opt"
  fi

  # A true/false default marks a boolean; anything else is almost always a typo
  # that would silently read as "false" in `if $flag; then`.
  if [[ ${!__po_name-} == true || ${!__po_name-} == false ]] \
      && [[ $__po_value != true && $__po_value != false ]]; then
    __po_die "invalid value '$__po_value' for boolean option $__po_opt (expected true or false)"
  fi

  # printf -v assigns without eval, so values with spaces/quotes/$ are kept as-is.
  if ! printf -v "$__po_name" '%s' "$__po_value" 2>/dev/null; then
    __po_die "cannot set option $__po_opt (is $__po_name readonly?)"
  fi
done

unset __po_i __po_j __po_arg __po_cfg __po_opt __po_name __po_value
unset -f __po_usage __po_die
true  # the caller's `. utils/parse_options.sh || exit 1` must see success
