#!/usr/bin/env bash
# fbank for several sets: <cuts-dir>/<set>.jsonl.gz -> <fbank-dir>/<set>.jsonl.gz, as
# steps/make_fbank.sh does it for one, but with ONE $cmd array for all the sets that need work:
# job JOB computes part JOB of each of them in one process, which loads torch and lhotse once.
#   steps/make_fbank_sets.sh [--nj 4] [--cmd CMD] [--fbank-config conf/fbank.yaml] \
#       <cuts-dir> <fbank-dir> <set> [<set> ...]
# Job logs: <fbank-dir>/log/fbank.JOB.log.  A set whose complete output exists is skipped; re-runs
# and kills: see steps/make_fbank_common.sh.
set -euo pipefail
nj=4
cmd=utils/run_local.sh
fbank_config=
help_message="Usage: $0 [--nj N] [--cmd CMD] [--fbank-config FILE] <cuts-dir> <fbank-dir> <set>..."
. utils/parse_options.sh
. steps/make_fbank_common.sh
[ $# -ge 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
cuts=$1
fbank=$2
shift 2
sets=()
i=0
for name in "$@"; do
  i=$(( i + 1 ))
  [ -f "$cuts/$name.jsonl.gz" ] || { echo "$0: set $name: expected its cuts in $cuts/$name.jsonl.gz" >&2; exit 1; }
  # <desc>: the set's name on the stage's console (utils/queue_common.sh, queue_progress)
  sets+=("$cuts/$name.jsonl.gz" "$fbank/$name.jsonl.gz" "fbank set $i/$# $name")
done
fbank_sets "$fbank" fbank "${sets[@]}"
