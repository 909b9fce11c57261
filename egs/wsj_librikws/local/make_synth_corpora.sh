#!/usr/bin/env bash
# Stage 0: synthesise the embedded stand-ins for every corpus whose path in db.sh is empty.
#   local/make_synth_corpora.sh [--synth-config conf/synth.yaml] [--size mini] [--nj N] [--seed S] <out-dir>
set -euo pipefail
synth_config=conf/synth.yaml   # not "config": --config is the option parser's own
size=mini
nj=$PYADML_NPROC
seed=
help_message="Usage: $0 [--synth-config F] [--size NAME] [--nj N] [--seed S] <out-dir>"
. utils/parse_options.sh
[ $# -eq 1 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
out_dir=$1
. ./db.sh

corpora=()
[ -n "$KING_ASR_066" ] || corpora+=(king_asr_066)
[ -n "$WSJ" ] || corpora+=(wsj)
[ -n "$LIBRIPHRASE" ] || corpora+=(libriphrase)
[ -n "$MUSAN" ] || corpora+=(musan)
[ -n "$RIRS_NOISES" ] || corpora+=(rirs_noises)
if [ ${#corpora[@]} -eq 0 ]; then
  echo "$0: every corpus has a path in db.sh; nothing to synthesise"
  exit 0
fi
list=$(IFS=,; echo "${corpora[*]}")
echo "$0: synthesising $list into $out_dir"
python -m pyadml.bin.make_synth_corpora --config "$synth_config" --size "$size" --nj "$nj" \
  ${seed:+--seed "$seed"} --corpora "$list" --out-dir "$out_dir"
