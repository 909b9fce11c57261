#!/usr/bin/env bash
# Score a model on the real-speech wake-word development set (six keywords, crowd-sourced
# recordings; the protocol of its README: every clip against all six keywords, AP, EER, AUC,
# top-1). For measuring only: it never trains anything.
#   local/score_wakeword_dev.sh <exp-dir> [<wakeword_dev dir>]
# The set is looked for beside the toolkit (../shared/data/wakeword_dev from its root).
set -euo pipefail
[ $# -ge 1 ] || { echo "Usage: $0 <exp-dir> [<wakeword_dev dir>]" >&2; exit 1; }
exp=$1
dev=${2:-$PYADML_ROOT/../shared/data/wakeword_dev}
if [ ! -f "$dev/clips.tsv" ]; then
  echo "$0: no wake-word development set at $dev (clips.tsv); nothing to score"
  exit 0
fi
python -m pyadml.bin.score_clips --model "$exp/final.pt" --clips "$dev/clips.tsv" \
  --out-dir "$exp/results/wakeword_dev"
