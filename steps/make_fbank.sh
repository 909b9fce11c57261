#!/usr/bin/env bash
# 40-dim fbank for one cut manifest: split into N parts, compute each as a $cmd job, merge.
#   steps/make_fbank.sh [--nj 4] [--cmd utils/run_local.sh] [--fbank-config conf/fbank.yaml] \
#       <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>
# Job logs: <fbank-dir>/log/fbank_<name>.JOB.log (<name>: <cuts> without .jsonl.gz).
# Re-runs do only what is missing, and a kill at any point leaves nothing that looks done: see
# steps/make_fbank_common.sh, which steps/make_fbank_sets.sh shares (several sets, one array).
set -euo pipefail
nj=4
cmd=utils/run_local.sh
fbank_config=
help_message="Usage: $0 [--nj N] [--cmd CMD] [--fbank-config FILE] <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>"
. utils/parse_options.sh
. steps/make_fbank_common.sh
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
name=$(basename "$1" .jsonl.gz)
fbank_sets "$2" "fbank_$name" "$1" "$3" "${PYADML_PROGRESS_DESC:-fbank $name}"
