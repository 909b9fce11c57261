#!/usr/bin/env bash
# fbank for several sets: <cuts-dir>/<set>.jsonl.gz -> <fbank-dir>/<set>.jsonl.gz, each through
# steps/make_fbank.sh (which skips a set whose complete output exists).
#   steps/make_fbank_sets.sh [--nj 4] [--cmd CMD] [--fbank-config conf/fbank.yaml] \
#       <cuts-dir> <fbank-dir> <set> [<set> ...]
set -euo pipefail
nj=4
cmd=utils/run_local.sh
fbank_config=
help_message="Usage: $0 [--nj N] [--cmd CMD] [--fbank-config FILE] <cuts-dir> <fbank-dir> <set>..."
. utils/parse_options.sh
[ $# -ge 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
cuts=$1
fbank=$2
shift 2
i=0
for name in "$@"; do
  i=$(( i + 1 ))
  [ -f "$cuts/$name.jsonl.gz" ] || { echo "$0: set $name: expected its cuts in $cuts/$name.jsonl.gz" >&2; exit 1; }
  # The name of the set's line on the stage's console (utils/queue_common.sh, queue_progress).
  PYADML_PROGRESS_DESC="fbank set $i/$# $name" steps/make_fbank.sh --nj "$nj" --cmd "$cmd" ${fbank_config:+--fbank-config "$fbank_config"} \
    "$cuts/$name.jsonl.gz" "$fbank" "$fbank/$name.jsonl.gz"
done
