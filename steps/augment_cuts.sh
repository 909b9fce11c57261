#!/usr/bin/env bash
# Seeded augmentation: <train-set>_aug holds the training cuts and their augmented copies;
# each set in --eval-sets gets <set>_aug, one reverberant or noisy copy per cut (no speed
# perturbation or band-limiting: the test condition). Sources are recordings manifests named
# like sets (<corpus>_recordings_<part>.jsonl.gz is set <corpus>_<part>); an empty one is off.
#   steps/augment_cuts.sh [--augment-config conf/augment.yaml] [--noise SET] [--music SET] [--babble SET]
#       [--rirs SET] [--eval-sets "SET ..."] <manifest-dir> <cuts-dir> <train-set>
set -euo pipefail
augment_config=conf/augment.yaml   # not "config": --config is the option parser's own
noise=
music=
babble=
rirs=
eval_sets=
help_message="Usage: $0 [--augment-config F] [--noise SET] [--music SET] [--babble SET] [--rirs SET] [--eval-sets \"SET ...\"] <manifest-dir> <cuts-dir> <train-set>"
. utils/parse_options.sh
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
manifests=$1
cuts=$2
train_set=$3
sources=(--manifest-dir "$manifests")
[ -z "$noise" ] || sources+=(--noise "$noise")
[ -z "$music" ] || sources+=(--music "$music")
[ -z "$babble" ] || sources+=(--babble "$babble")
[ -z "$rirs" ] || sources+=(--rirs "$rirs")
python -m pyadml.bin.augment_cuts --config "$augment_config" "${sources[@]}" \
  --cuts "$cuts/$train_set.jsonl.gz" --out "$cuts/${train_set}_aug.jsonl.gz"
for s in $eval_sets; do
  python -m pyadml.bin.augment_cuts --config "$augment_config" "${sources[@]}" --eval \
    --cuts "$cuts/$s.jsonl.gz" --out "$cuts/${s}_aug.jsonl.gz"
done
