#!/usr/bin/env bash
# The CUDA path in one run, on a machine with an NVIDIA GPU and a CUDA build of torch (the
# project's .venv holds the CPU wheel, so this uses the python3 on PATH unless PYTHON is set):
#   1. every loss under CUDA bf16 autocast against float32 (pyadml.bin.loss_precision);
#   2. the training step's throughput, fp32 and bf16 autocast, at the mini and the paper's
#      sizes (pyadml.bin.benchmark --device cuda);
#   3. the recipe's training (steps/train.sh, torchrun) on the GPU with amp none and bf16, same
#      seed, and their dev AP per epoch.
# Run from a recipe directory (egs/wsj_librikws) after stage 5, or name the files:
#   bash utils/gpu_check.sh [--epochs 3] [--config conf/train_adml_nomal_mini.yaml] \
#     [--train data/fbank/king_asr_066_train_aug.jsonl.gz] [--dev data/fbank/king_asr_066_dev.jsonl.gz] \
#     [--dev-trials data/trials/king_asr_066_dev.tsv] [--lang data/lang] [--fbank-config conf/fbank.yaml] \
#     <out-dir> [key=value ...]
# The key=value overrides go to both trainings. Each part's log is under <out-dir>.
set -euo pipefail

epochs=3
config=conf/train_adml_nomal_mini.yaml
train=data/fbank/king_asr_066_train_aug.jsonl.gz
dev=data/fbank/king_asr_066_dev.jsonl.gz
dev_trials=data/trials/king_asr_066_dev.tsv
lang=data/lang
fbank_config=conf/fbank.yaml
paper_config=conf/train_adml.yaml
. utils/parse_options.sh
[ $# -ge 1 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
out=$1
shift
python=${PYTHON:-python3}
root=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# torchrun of the same interpreter first on PATH, for steps/train.sh
PATH="$(dirname "$(command -v "$python")"):$PATH"
export PATH
for f in "$config" "$paper_config" "$train" "$dev" "$dev_trials" "$fbank_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f (run from the recipe directory, or name it)" >&2; exit 1; }
done
[ -d "$lang" ] || { echo "$0: no such directory: $lang" >&2; exit 1; }
"$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' || {
  echo "$0: $python's torch ($("$python" -c 'import torch; print(torch.__version__)' 2>&1)) sees no CUDA" \
    "device; set PYTHON to an interpreter with a CUDA build of torch" >&2
  exit 1
}
mkdir -p "$out"

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
  torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())'

echo "== 1. losses under CUDA bf16 autocast"
"$python" -m pyadml.bin.loss_precision --device cuda 2>&1 | tee "$out/loss_precision.txt"

echo "== 2. training step throughput"
for cfg in "$config" "$paper_config"; do
  echo "-- $cfg"
  "$python" -m pyadml.bin.benchmark --device cuda --training-only --amp none bf16 --repeat 20 \
    --config "$cfg" 2>&1 | tee -a "$out/benchmark.txt"
done

echo "== 3. training on the GPU: amp none and bf16, same seed"
for amp in none bf16; do
  exp=$out/train_amp_$amp
  start=$(date +%s)
  steps/train.sh --fresh true "$config" "$exp" data.train="$train" data.dev="$dev" \
    data.dev_trials="$dev_trials" data.lang="$lang" data.fbank_config="$fbank_config" \
    epochs="$epochs" amp=$amp device=cuda "$@" > "$out/train_amp_$amp.log" 2>&1 \
    || { echo "$0: training with amp=$amp failed; see $out/train_amp_$amp.log" >&2; tail -n 20 "$out/train_amp_$amp.log" >&2; exit 1; }
  where=$(grep -m 1 -o "world [0-9]*, device [^,]*" "$exp/log/train.rank0.log" || true)
  [[ $where == *"device cuda"* ]] \
    || { echo "$0: the amp=$amp training did not run on CUDA (see $exp/log/train.rank0.log)" >&2; exit 1; }
  echo "amp $amp: $(( $(date +%s) - start )) s, $where"
done
"$python" - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| amp | epoch | dev AP | epoch seconds | train utt/s (mean of the logged steps) |")
print("|---|---|---|---|---|")
for amp in ("none", "bf16"):
    recs = [json.loads(l) for l in open(out / f"train_amp_{amp}" / "metrics.jsonl")]
    for r in (r for r in recs if "dev_ap" in r):
        # step records carry the 0-based epoch they ran in; a dev record the epochs finished
        speeds = [s["utt_per_s"] for s in recs if s.get("epoch") == r["epoch"] - 1 and "utt_per_s" in s]
        speed = f"{sum(speeds) / len(speeds):.0f}" if speeds else "-"
        print(f"| {amp} | {r['epoch']} | {r['dev_ap']:.4f} | {r['epoch_seconds']:.1f} | {speed} |")
EOF
