#!/usr/bin/env bash
# Keyword spotting in continuous speech (pyadml.spot.evaluate): the utterances of a test set that
# say no enrolled keyword, concatenated into long streams, with keyword occurrences inserted at
# known times: spoken by the held-out TTS voices and, with --wakeword-dev, the real recordings of
# that set (measured only, never trained on). Streamed in 100 ms chunks; FRR at 0.5/1/2 false
# alarms per hour per keyword, each with a 95% bootstrap interval over the background utterances
# (pyadml.spot.bootstrap; two runs on the same streams: python -m pyadml.spot.bootstrap <a> <b>),
# a DET plot and the latency after each keyword's end.
#   steps/eval_continuous.sh [--keywords "alexa,computer,..."] [--wakeword-dev DIR] \
#       [--backend torch|onnx] [--onnx DIR] [--enrol tts|none] [--nj N] <model> <manifest-dir> <set> <out-dir>
# --enrol: the keywords enrolled by their text and TTS voices (tts, the spotter's default for
# detect; pyadml.score.enrol) or by their text alone (none).
# --nj N: the streams and the real clips are searched in N processes (the same results).
# With --backend onnx a final.pt is first exported to <out-dir>/onnx, unless --onnx names an
# export of this very final.pt made before (stage 8's; checked by its sha256), which is used.
#   e.g. steps/eval_continuous.sh exp/adml_nomal_mini/final.pt data/manifests wsj_test exp/adml_nomal_mini/continuous
set -euo pipefail
keywords=     # empty: pyadml.spot.evaluate's (the six wake words of wakeword_dev)
wakeword_dev=
backend=
onnx=
enrol=        # empty: pyadml.spot.evaluate's (tts)
nj=1
help_message="Usage: $0 [--keywords 'a,b'] [--wakeword-dev DIR] [--backend torch|onnx] [--onnx DIR] [--enrol tts|none] [--nj N] <model> <manifest-dir> <set> <out-dir>"
. utils/parse_options.sh
[ $# -eq 4 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
model=$1
manifests=$2
set_name=$3
dir=$4
[ -e "$model" ] || { echo "$0: no such model: $model" >&2; exit 1; }
[ -d "$manifests" ] || { echo "$0: no manifest directory $manifests" >&2; exit 1; }
opts=(--model "$model" --data "$manifests" --set "$set_name" --out-dir "$dir" --jobs "$nj")
[ -z "$keywords" ] || opts+=(--keywords "$keywords")
[ -z "$enrol" ] || opts+=(--enrol "$enrol")
if [ -n "$wakeword_dev" ]; then
  [ -f "$wakeword_dev/clips.tsv" ] || { echo "$0: no clips.tsv in $wakeword_dev" >&2; exit 1; }
  opts+=(--wakeword-dev "$wakeword_dev")
fi
mkdir -p "$dir/log"
if [ "$backend" = onnx ] && [ -f "$model" ]; then
  if [ -n "$onnx" ] && python -m pyadml.bin.export_onnx --model "$model" --out-dir "$onnx" --check \
      > "$dir/log/export_onnx.log" 2>&1; then
    # An export of this very model (only cosine models have one): nothing to ask or export.
    cat "$dir/log/export_onnx.log"
    opts[1]=$onnx
  else
    # Detector models (final.pt scorer phonmatchnet|cmcd) have no ONNX export: torch scores them.
    scorer=$(python -m pyadml.bin.export_onnx --model "$model" --print-scorer)
    if [ "$scorer" != cosine ]; then
      echo "$0: $model scores with its $scorer detector head, which has no ONNX export; using --backend torch"
      backend=torch
    else
      # onnxruntime scores the windows about twice as fast as torch on CPU; the export checks
      # its own parity against torch.
      python -m pyadml.bin.export_onnx --model "$model" --out-dir "$dir/onnx" > "$dir/log/export_onnx.log" 2>&1 \
        || { echo "$0: ONNX export failed, see $dir/log/export_onnx.log" >&2; tail -5 "$dir/log/export_onnx.log" >&2; exit 1; }
      opts[1]="$dir/onnx"
    fi
  fi
fi
[ -z "$backend" ] || opts+=(--backend "$backend")
python -m pyadml.spot.evaluate "${opts[@]}" 2>&1 | tee "$dir/log/eval_continuous.log"
cat "$dir/results.md"
