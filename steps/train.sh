#!/usr/bin/env bash
# Train with torchrun: --standalone on one machine; with --nnodes > 1 torchrun's c10d
# rendezvous options are passed through.
#   steps/train.sh [--nproc-per-node 1] [--nnodes 1] [--node-rank 0] [--rdzv-endpoint host:port]
#                  [--resume true] [--torchrun-opts "..."] <config.yaml> <exp-dir> [key=value ...]
set -euo pipefail
nproc_per_node=1
nnodes=1
node_rank=0
rdzv_endpoint=
rdzv_id=pyadml
resume=false
torchrun_opts=
help_message="Usage: $0 [options] <config.yaml> <exp-dir> [key=value ...]
  --nproc-per-node N    processes per node (GPUs, or CPU processes with gloo)
  --nnodes N            nodes; 1 runs torchrun --standalone
  --node-rank R --rdzv-endpoint HOST:PORT --rdzv-id ID   multi-node rendezvous (c10d)
  --resume true|false   continue from the last checkpoint in <exp-dir>/checkpoints
  --torchrun-opts STR   further torchrun options, verbatim"
. utils/parse_options.sh
[ $# -ge 2 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
config=$1
exp=$2
shift 2
[ -f "$config" ] || { echo "$0: no such config: $config" >&2; exit 1; }
mkdir -p "$exp/log"

if [ "$nnodes" -eq 1 ]; then
  launch=(torchrun --standalone --nnodes 1 --nproc-per-node "$nproc_per_node")
else
  [ -n "$rdzv_endpoint" ] || { echo "$0: --nnodes $nnodes needs --rdzv-endpoint" >&2; exit 1; }
  launch=(torchrun --nnodes "$nnodes" --node-rank "$node_rank" --nproc-per-node "$nproc_per_node"
          --rdzv-backend c10d --rdzv-endpoint "$rdzv_endpoint" --rdzv-id "$rdzv_id")
fi
# shellcheck disable=SC2206
launch+=($torchrun_opts)
args=(--config "$config" --exp-dir "$exp")
$resume && args+=(--resume)
echo "$0: ${launch[*]} -m pyadml.bin.train ${args[*]} $*"
"${launch[@]}" -m pyadml.bin.train "${args[@]}" "$@"
