#!/usr/bin/env bash
# Continuous-speech keyword spotting evaluation (pyadml.spot.evaluate): held-out-voice
# utterances of the WSJ-like test set with keyword occurrences inserted at known times, from
# the held-out TTS voices and, if given, the real recordings of wakeword_dev (measure only).
# FRR at 0.5/1/2 false alarms per hour per keyword, a DET plot and a latency table.
#   local/eval_continuous.sh [--keywords "alexa,computer,..."] [--wakeword-dev DIR] \
#       [--backend torch|onnx] <model> <data-dir> <out-dir>
#   e.g. local/eval_continuous.sh --wakeword-dev ../../../shared/data/wakeword_dev \
#       exp/adml_mini/final.pt data/local/synth/wsj/data exp/adml_mini/continuous
set -euo pipefail
keywords="alexa,computer,jarvis,smart mirror,snowboy,view glass"
wakeword_dev=
backend=
help_message="Usage: $0 [--keywords 'a,b'] [--wakeword-dev DIR] [--backend torch|onnx] <model> <data-dir> <out-dir>"
. utils/parse_options.sh
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
model=$1
data=$2
dir=$3
[ -e "$model" ] || { echo "$0: no such model: $model" >&2; exit 1; }
for f in wav.scp text; do
  [ -f "$data/$f" ] || { echo "$0: no $f in $data" >&2; exit 1; }
done
opts=(--model "$model" --data "$data" --out-dir "$dir" --keywords "$keywords")
if [ -n "$wakeword_dev" ]; then
  [ -f "$wakeword_dev/clips.tsv" ] || { echo "$0: no clips.tsv in $wakeword_dev" >&2; exit 1; }
  opts+=(--wakeword-dev "$wakeword_dev")
fi
[ -z "$backend" ] || opts+=(--backend "$backend")
mkdir -p "$dir/log"
python -m pyadml.spot.evaluate "${opts[@]}" 2>&1 | tee "$dir/log/eval_continuous.log"
cat "$dir/results.md"
