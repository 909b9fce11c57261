#!/usr/bin/env bash
# 40-dim fbank for a cut manifest: split into N parts, compute each as a $cmd job, merge.
#   steps/make_fbank.sh [--nj 4] [--cmd utils/run_local.sh] [--fbank-config conf/fbank.yaml] \
#       <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>
set -euo pipefail
nj=4
cmd=utils/run_local.sh
fbank_config=
help_message="Usage: $0 [--nj N] [--cmd CMD] [--fbank-config FILE] <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>"
. utils/parse_options.sh
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
cuts=$1
dir=$2
out=$3
[ -f "$cuts" ] || { echo "$0: no such cut manifest: $cuts" >&2; exit 1; }
name=$(basename "$cuts" .jsonl.gz)
split=$dir/split_$name
mkdir -p "$split" "$dir/log"
rm -f "$split"/cuts.*.jsonl.gz "$split"/feats.*.jsonl.gz

python -m pyadml.bin.fbank split "$cuts" "$nj" "$split"
n=$(ls "$split"/cuts.*.jsonl.gz | wc -l)   # fewer parts than --nj when there are few cuts
$cmd JOB=1:"$n" "$dir/log/fbank_$name.JOB.log" \
  python -m pyadml.bin.fbank compute ${fbank_config:+--config "$fbank_config"} \
    "$split/cuts.JOB.jsonl.gz" "$dir/${name}_feats.JOB" "$split/feats.JOB.jsonl.gz"
parts=()
for i in $(seq 1 "$n"); do parts+=("$split/feats.$i.jsonl.gz"); done
python -m pyadml.bin.fbank merge "$out" "${parts[@]}"
grep -h "real time" "$dir/log/fbank_$name".*.log || true
