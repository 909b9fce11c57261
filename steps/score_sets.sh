#!/usr/bin/env bash
# Stage 8's trial scoring, shared by the recipes: the paper's protocol (the clip cosine, or a
# detector model's head) into <exp-dir>/results and the section "<tag>" of RESULTS.md, and the
# back-ends beside it, in one Python process (pyadml.bin.score --run) that loads the model and
# embeds each cut and keyword once for all of them:
#   --tnorm true: the same trials with adaptive T-norm (pyadml.score.norm; the training keywords
#     as cohort) into <exp-dir>/results_tnorm, section "<tag>, T-norm";
#   --words true: the sets with multi-word keywords (protocol pairs) scored word by word, the
#     words in order (pyadml.score.phrase), into <exp-dir>/results_words, section "<tag>, phrase
#     words". Word sets are left out: single-word keywords keep the cosine. --words-onnx DIR:
#     the windows through that ONNX export of the model (python -m pyadml.bin.export_onnx) in
#     --jobs processes: the same scores to float rounding, about twice as fast on 2 cores.
#   --enrol true: every set with each keyword also enrolled by TTS voices (pyadml.score.enrol;
#     its query mixes their acoustic embeddings with the text's) into <exp-dir>/results_enrol,
#     section "<tag>, TTS enrolment".
#   --spkmean true: the same trials T-normed after each clip's embedding loses the shrunk mean
#     of its speaker's other clips in the set (pyadml.score.speaker_mean: the held-out voices'
#     offset, known here from the cuts' speakers) into <exp-dir>/results_tnorm_spkmean, section
#     "<tag>, T-norm, speaker mean".
# All four need a cosine model. Run from a recipe directory (data/fbank, data/trials).
#   steps/score_sets.sh [--tnorm true|false] [--words true|false] [--enrol true|false] [--spkmean true|false] [--words-onnx DIR --jobs N] \
#       <exp-dir> <tag> <set>:<protocol> ...
set -euo pipefail
tnorm=false
words=false
enrol=false
spkmean=false
words_onnx=
jobs=1
help_message="Usage: $0 [--tnorm true|false] [--words true|false] [--enrol true|false] [--spkmean true|false] [--words-onnx DIR --jobs N] <exp-dir> <tag> <set>:<protocol> ..."
. utils/parse_options.sh
[ $# -ge 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
exp=$1 tag=$2
shift 2
# Each --run is one argument that the command splits as a shell would: quote its values.
q() { printf '%q' "$1"; }
runs=()
if [ "$tnorm" = true ]; then
  runs+=(--run "--out-dir $(q "$exp/results_tnorm") --score-norm tnorm --tag $(q "$tag, T-norm")")
fi
pairs=()
for s in "$@"; do
  if [[ $s == *:pairs ]]; then pairs+=("$(q "$s")"); fi
done
if [ "$words" = true ] && [ ${#pairs[@]} -gt 0 ]; then
  runs+=(--run "--out-dir $(q "$exp/results_words") --phrase-score words ${words_onnx:+--words-onnx $(q "$words_onnx") --jobs $(q "$jobs")} --tag $(q "$tag, phrase words") ${pairs[*]}")
fi
if [ "$enrol" = true ]; then
  runs+=(--run "--out-dir $(q "$exp/results_enrol") --enrol tts --tag $(q "$tag, TTS enrolment")")
fi
if [ "$spkmean" = true ]; then
  runs+=(--run "--out-dir $(q "$exp/results_tnorm_spkmean") --score-norm tnorm --speaker-mean --tag $(q "$tag, T-norm, speaker mean")")
fi
exec python -m pyadml.bin.score --exp-dir "$exp" --fbank-dir data/fbank --trials-dir data/trials \
  --results-md RESULTS.md --tag "$tag" "$@" "${runs[@]}"
