#!/usr/bin/env bash
# Stage 8's word back-end: the test sets with multi-word keywords (protocol pairs) scored word by
# word, the words in order (pyadml.score.phrase), into <exp-dir>/results_words and the section
# "<tag>, phrase words" of RESULTS.md. Word sets are left out: single-word keywords keep the
# cosine. Run from a recipe directory (data/fbank, data/trials).
#   steps/score_phrase_words.sh [--words-onnx DIR --jobs N] <exp-dir> <tag> <set>:<protocol> ...
# --words-onnx DIR: the windows through that ONNX export of the model (python -m
# pyadml.bin.export_onnx) in --jobs processes: the same scores to float rounding, about twice
# as fast on 2 cores.
set -euo pipefail
words_onnx=
jobs=1
help_message="Usage: $0 [--words-onnx DIR --jobs N] <exp-dir> <tag> <set>:<protocol> ..."
. utils/parse_options.sh
[ $# -ge 2 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
exp=$1 tag=$2
shift 2
sets=()
for s in "$@"; do
  if [[ $s == *:pairs ]]; then sets+=("$s"); fi
done
[ ${#sets[@]} -gt 0 ] || exit 0
exec python -m pyadml.bin.score --exp-dir "$exp" --fbank-dir data/fbank --trials-dir data/trials \
  --out-dir "$exp/results_words" --phrase-score words --results-md RESULTS.md \
  ${words_onnx:+--words-onnx "$words_onnx" --jobs "$jobs"} --tag "$tag, phrase words" "${sets[@]}"
