#!/usr/bin/env bash
# Stage 0: synthesise the embedded stand-ins for every corpus whose path in db.sh is empty:
# LibriSpeech with word alignments in its real layout (pyadml.synth.librispeech) and the
# toolkit's LibriPhrase, MUSAN, RIRS_NOISES (and WSJ when db.sh declares it) stand-ins.
#   local/make_synth_corpora.sh [--synth-config conf/synth.yaml] \
#       [--librispeech-config conf/synth_librispeech.yaml] [--size mini] [--nj N] [--seed S] <out-dir>
set -euo pipefail
synth_config=conf/synth.yaml   # not "config": --config is the option parser's own
librispeech_config=conf/synth_librispeech.yaml
size=mini
nj=$PYADML_NPROC
seed=
help_message="Usage: $0 [--synth-config F] [--librispeech-config F] [--size NAME] [--nj N] [--seed S] <out-dir>"
. utils/parse_options.sh
[ $# -eq 1 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
out_dir=$1
. ./db.sh

# A corpus is synthesised when db.sh declares its variable empty; one db.sh does not declare
# (WSJ, commented out by default) is neither synthesised nor tested.
corpora=()
for pair in librispeech:LIBRISPEECH wsj:WSJ libriphrase:LIBRIPHRASE musan:MUSAN rirs_noises:RIRS_NOISES; do
  var=${pair#*:}
  if declare -p "$var" > /dev/null 2>&1 && [ -z "${!var}" ]; then corpora+=("${pair%%:*}"); fi
done
if [ ${#corpora[@]} -eq 0 ]; then
  echo "$0: db.sh declares no corpus empty; nothing to synthesise"
  exit 0
fi
list=$(IFS=,; echo "${corpora[*]}")
echo "$0: synthesising $list into $out_dir"
python -m pyadml.bin.make_synth_librispeech --config "$synth_config" \
  --librispeech-config "$librispeech_config" --size "$size" --nj "$nj" \
  ${seed:+--seed "$seed"} --corpora "$list" --out-dir "$out_dir"
