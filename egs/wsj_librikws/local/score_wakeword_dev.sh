#!/usr/bin/env bash
# Score a model on the real-speech wake-word development set (six keywords, crowd-sourced
# recordings; the protocol of its README: every clip against all six keywords, AP, EER, AUC,
# top-1). For measuring only: it never trains anything.
#   local/score_wakeword_dev.sh [--vad true] [--floor-db DB] [--score-norm tnorm] [--phrase-score words] [--words-onnx DIR --jobs N] <exp-dir> [<wakeword_dev dir>]
# The set is looked for beside the toolkit (../shared/data/wakeword_dev from its root).
# --vad true: clips cut to their speech first (energy rule of pyadml.score.vad: frames within
# 30 dB of the loudest, plus 50 ms), results in <exp-dir>/results/wakeword_dev_vad; the
# default scores the clips as recorded.
# --floor-db DB: every log-mel value more than DB dB below the clip's loudest raised to that
# level first (pyadml.score.floor: the scores no longer depend on the recording level), results
# in .../wakeword_dev_floor<DB> (after _vad when both are given).
# --score-norm tnorm: adaptive T-norm of the scores with the model's training keywords as cohort
# (pyadml.score.norm), results in .../wakeword_dev_tnorm (or wakeword_dev_vad_tnorm).
# --phrase-score words: the two-word keywords also scored word by word (pyadml.score.phrase),
# results in .../wakeword_dev_words (or wakeword_dev_vad_words). The options combine, in the
# order VAD, floor, words, T-norm: --vad true --score-norm tnorm --phrase-score words gives
# .../wakeword_dev_vad_tnorm_words, and with --floor-db 50 .../wakeword_dev_vad_floor50_tnorm_words.
# --words-onnx DIR --jobs N: the words' windows through that ONNX export of the model
# (python -m pyadml.bin.export_onnx) in N processes; the same scores to float rounding.
set -euo pipefail
vad=false
floor_db=
norm=none
phrase=clip
words_onnx=
jobs=1
while [ $# -gt 0 ]; do
  case $1 in
    --vad) vad=${2:?--vad needs true or false}; shift 2 ;;
    --floor-db) floor_db=${2:?--floor-db needs a number of dB}; shift 2 ;;
    --score-norm) norm=${2:?--score-norm needs none or tnorm}; shift 2 ;;
    --phrase-score) phrase=${2:?--phrase-score needs clip or words}; shift 2 ;;
    --words-onnx) words_onnx=${2:?--words-onnx needs a directory}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "Usage: $0 [--vad true|false] [--floor-db DB] [--score-norm none|tnorm] [--phrase-score clip|words] [--words-onnx DIR --jobs N] <exp-dir> [<wakeword_dev dir>]" >&2; exit 1; }
exp=$1
dev=${2:-$PYADML_ROOT/../shared/data/wakeword_dev}
if [ ! -f "$dev/clips.tsv" ]; then
  echo "$0: no wake-word development set at $dev (clips.tsv); nothing to score"
  exit 0
fi
out=$exp/results/wakeword_dev
opts=()
case $vad in
  true) out=${out}_vad; opts+=(--vad) ;;
  false) ;;
  *) echo "$0: --vad must be true or false, got '$vad'" >&2; exit 1 ;;
esac
if [ -n "$floor_db" ]; then
  case $floor_db in
    *[!0-9.]*|.|*.*.*) echo "$0: --floor-db must be a positive number of dB, got '$floor_db'" >&2; exit 1 ;;
  esac
  out=${out}_floor$floor_db; opts+=(--floor-db "$floor_db")
fi
case $norm in
  tnorm) out=${out}_tnorm; opts+=(--score-norm tnorm) ;;
  none) ;;
  *) echo "$0: --score-norm must be none or tnorm, got '$norm'" >&2; exit 1 ;;
esac
case $phrase in
  words) out=${out}_words; opts+=(--phrase-score words ${words_onnx:+--words-onnx "$words_onnx" --jobs "$jobs"}) ;;
  clip) ;;
  *) echo "$0: --phrase-score must be clip or words, got '$phrase'" >&2; exit 1 ;;
esac
python -m pyadml.bin.score_clips --model "$exp/final.pt" --clips "$dev/clips.tsv" \
  --out-dir "$out" "${opts[@]}"
