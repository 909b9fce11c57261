#!/usr/bin/env bash
# Train with torchrun: --standalone on one machine; with --nnodes > 1 torchrun's c10d
# rendezvous, either launched here on every node of a Slurm allocation (srun) or, with an
# explicit --rdzv-endpoint, by you on each node.
#   steps/train.sh [--nproc-per-node 1] [--nnodes 1] [--node-rank 0] [--rdzv-endpoint host:port]
#                  [--rdzv-host H] [--rdzv-port P] [--rdzv-timeout 30] [--local-addr A]
#                  [--resume true] [--fresh false] [--allow-config-change false]
#                  [--torchrun-opts "..."] <config.yaml> <exp-dir> [key=value ...]
#
# Multi-node under Slurm (--nnodes N > 1, SLURM_JOB_ID set, no --rdzv-endpoint), e.g. from
#   sbatch --nodes 2 --cpus-per-task 8 --wrap "steps/train.sh --nnodes 2 --nproc-per-node 2 ..."
# runs  srun --nodes N --ntasks N --ntasks-per-node 1 --kill-on-bad-exit=1 torchrun ...  so
# one torchrun agent per node, all meeting at the c10d rendezvous on the FIRST node of the
# allocation (scontrol show hostnames "$SLURM_JOB_NODELIST" | head -1), which hosts the store:
#   endpoint   <first node's IPv4>:<port>; the node's address is Slurm's NodeAddr, resolved
#              with getent (a non-loopback address preferred); --rdzv-host overrides it
#   port       --rdzv-port, default 20000 + SLURM_JOB_ID % 10000 (below Linux's ephemeral
#              range; jobs sharing a node get different ports unless their ids differ by
#              a multiple of 10000)
#   local addr torchrun --local-addr <this node's IPv4>, resolved the same way on each node
#              (torchrun hangs when a host name does not resolve)
#   threads    OMP_NUM_THREADS = cpus per task (or cpus on the node) / --nproc-per-node
# Bounded failure: --rdzv-conf join_timeout=T,read_timeout=T (T = --rdzv-timeout, 30 s) so a
# node that never arrives fails the rendezvous after T seconds instead of torchrun's 600 s;
# --max-restarts 0, and srun --kill-on-bad-exit=1 ends every node when one fails (a node lost
# during training fails its peers' gloo/nccl collectives).
# Both multi-node paths use these timeouts; --torchrun-opts comes last and can override them.
set -euo pipefail
nproc_per_node=1
nnodes=1
node_rank=0
rdzv_endpoint=
rdzv_host=
rdzv_port=
rdzv_id=
rdzv_timeout=30
local_addr=
resume=false
fresh=false
allow_config_change=false
torchrun_opts=
help_message="Usage: $0 [options] <config.yaml> <exp-dir> [key=value ...]
  --nproc-per-node N    processes per node (GPUs, or CPU processes with gloo)
  --nnodes N            nodes; 1 runs torchrun --standalone; N > 1 inside a Slurm allocation
                        runs one torchrun per node with srun (c10d rendezvous on the first node)
  --rdzv-host H         Slurm: rendezvous address (default: the first node's IPv4 address)
  --rdzv-port P         Slurm: rendezvous port (default: 20000 + SLURM_JOB_ID % 10000)
  --node-rank R --rdzv-endpoint HOST:PORT --local-addr A
                        without Slurm: launch this script on every node yourself (c10d)
  --rdzv-id ID          rendezvous id (default pyadml, or pyadml-<SLURM_JOB_ID>)
  --rdzv-timeout T      seconds to wait for every node to join and for the store (default $rdzv_timeout)
  --resume true|false   continue from the last checkpoint in <exp-dir>/checkpoints; a config
                        that differs from the checkpoint's is an error naming the keys
  --fresh true|false    move earlier checkpoints and metrics to <exp-dir>/previous/, start anew
  --allow-config-change true|false   resume with a changed config (the change is recorded)
  --torchrun-opts STR   further torchrun options, verbatim"
. utils/parse_options.sh
[ $# -ge 2 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
config=$1
exp=$2
shift 2
[ -f "$config" ] || { echo "$0: no such config: $config" >&2; exit 1; }
[[ $nnodes =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nnodes must be a positive integer, got '$nnodes'" >&2; exit 1; }
[[ $rdzv_timeout =~ ^[1-9][0-9]*$ ]] \
  || { echo "$0: --rdzv-timeout must be a positive integer, got '$rdzv_timeout'" >&2; exit 1; }
mkdir -p "$exp/log"
command -v torchrun > /dev/null || {
  echo "$0: torchrun not found: source the recipe's path.sh first (. ./path.sh), as run.sh does" >&2
  exit 1
}
rdzv_conf="join_timeout=$rdzv_timeout,read_timeout=$rdzv_timeout"

# node_addr NAME: the IPv4 address of Slurm node NAME: its NodeAddr (the node name when
# Slurm does not know it), resolved with getent, preferring a non-loopback address.
node_addr() {
  local name=$1 addr= ip=
  if command -v scontrol > /dev/null 2>&1; then
    addr=$(scontrol show node "$name" 2> /dev/null | grep -o 'NodeAddr=[^ ]*' | head -n 1) || true
    addr=${addr#NodeAddr=}
  fi
  addr=${addr:-$name}
  if [[ $addr =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "$addr"
    return 0
  fi
  ip=$(getent ahostsv4 "$addr" 2> /dev/null | awk '{print $1}' | grep -v '^127\.' | head -n 1) || true
  [ -n "$ip" ] || ip=$(getent ahostsv4 "$addr" 2> /dev/null | awk 'NR == 1 {print $1}') || true
  if [ -z "$ip" ]; then
    echo "steps/train.sh: cannot resolve node $name (address $addr) to an IPv4 address;" \
      "pass --rdzv-host (or fix its NodeAddr)" >&2
    return 1
  fi
  echo "$ip"
}

args=(--config "$config" --exp-dir "$exp")
$resume && args+=(--resume)
$fresh && args+=(--fresh)
$allow_config_change && args+=(--allow-config-change)

# torchrun's own report of a failed worker is a long block; the trainer writes the reason in
# one line to train.error, and it is said last, with the log to read.
rm -f "$exp/log/train.error"
report_failure() {
  local status=$1
  if [ -s "$exp/log/train.error" ]; then
    echo "$0: training failed: $(head -n 1 "$exp/log/train.error" | sed 's/^rank [0-9]*: //')" \
      "(log: $exp/log/train.rank0.log)" >&2
  else
    echo "$0: training failed with status $status; see $exp/log/train.rank0.log" >&2
  fi
  exit "$status"
}

if [ "$nnodes" -eq 1 ]; then
  # Threads per training process: this machine's cores shared by its processes (path.sh keeps
  # OMP_NUM_THREADS=1 for everything else).
  cores=${PYADML_NPROC:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
  threads=$(( cores / nproc_per_node ))
  export PYADML_TRAIN_THREADS=$(( threads >= 1 ? threads : 1 ))
  launch=(torchrun --standalone --nnodes 1 --nproc-per-node "$nproc_per_node")
  # shellcheck disable=SC2206
  launch+=($torchrun_opts)
  echo "$0: ${launch[*]} -m pyadml.bin.train ${args[*]} $*"
  "${launch[@]}" -m pyadml.bin.train "${args[@]}" "$@" || report_failure $?
  exit 0
fi

if [ -n "$rdzv_endpoint" ]; then
  # Without Slurm (or launching per node yourself): this node's agent only.
  launch=(torchrun --nnodes "$nnodes" --node-rank "$node_rank" --nproc-per-node "$nproc_per_node"
          --rdzv-backend c10d --rdzv-endpoint "$rdzv_endpoint" --rdzv-id "${rdzv_id:-pyadml}"
          --rdzv-conf "$rdzv_conf" --max-restarts 0 ${local_addr:+--local-addr "$local_addr"})
  # shellcheck disable=SC2206
  launch+=($torchrun_opts)
  echo "$0: ${launch[*]} -m pyadml.bin.train ${args[*]} $*"
  "${launch[@]}" -m pyadml.bin.train "${args[@]}" "$@" || report_failure $?
  exit 0
fi

# Multi-node inside a Slurm allocation: one torchrun per node through srun.
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "$0: --nnodes $nnodes needs a Slurm allocation (sbatch/salloc --nodes $nnodes) or --rdzv-endpoint" >&2
  exit 1
fi
if [ -n "${SLURM_STEP_ID:-}" ]; then
  echo "$0: already inside Slurm job step $SLURM_JOB_ID.$SLURM_STEP_ID: run this from the batch" \
    "script (it starts the srun itself), or give --rdzv-endpoint to launch per node" >&2
  exit 1
fi
job_nodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-0}}
if [ "$job_nodes" -lt "$nnodes" ]; then
  echo "$0: --nnodes $nnodes but Slurm job $SLURM_JOB_ID has $job_nodes node(s) (sbatch --nodes $nnodes)" >&2
  exit 1
fi
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
[ -n "$first" ] || { echo "$0: cannot read the nodes of $SLURM_JOB_NODELIST" >&2; exit 1; }
[ -n "$rdzv_host" ] || rdzv_host=$(node_addr "$first")
port=${rdzv_port:-$(( 20000 + SLURM_JOB_ID % 10000 ))}
launch=(torchrun --nnodes "$nnodes" --nproc-per-node "$nproc_per_node"
        --rdzv-backend c10d --rdzv-endpoint "$rdzv_host:$port" --rdzv-id "${rdzv_id:-pyadml-$SLURM_JOB_ID}"
        --max-restarts 0)
# shellcheck disable=SC2206
launch+=($torchrun_opts)
srun_opts=(--nodes "$nnodes" --ntasks "$nnodes" --ntasks-per-node 1 --kill-on-bad-exit=1
           --export=ALL --job-name "train-$(basename "$exp")")
[ -z "${SLURM_CPUS_PER_TASK:-}" ] || srun_opts+=(--cpus-per-task "$SLURM_CPUS_PER_TASK")

# Runs on every node: this node's address, threads per process, then torchrun.
node_script="$(declare -f node_addr)
$(cat <<'EOF'
set -euo pipefail
nproc=$1 conf=$2 first=$3
shift 3
name=${SLURMD_NODENAME:-$(hostname)}
addr=$(node_addr "$name")
cpus=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}
threads=$(( cpus / nproc ))
(( threads >= 1 )) || threads=1
export OMP_NUM_THREADS=$threads PYADML_TRAIN_THREADS=$threads
# The store lives on the first node: say so rather than let agents that share an address
# guess from it.
if [ "$name" = "$first" ]; then conf+=",is_host=1"; else conf+=",is_host=0"; fi
echo "steps/train.sh: node $name (SLURM_NODEID ${SLURM_NODEID:-?}): --local-addr $addr," \
  "OMP_NUM_THREADS=$threads, --rdzv-conf $conf" >&2
exec "$1" --local-addr "$addr" --rdzv-conf "$conf" "${@:2}"
EOF
)"
echo "$0: srun ${srun_opts[*]} ${launch[*]} -m pyadml.bin.train ${args[*]} $*"
srun "${srun_opts[@]}" bash -c "$node_script" train-node "$nproc_per_node" "$rdzv_conf" "$first" \
  "${launch[@]}" -m pyadml.bin.train "${args[@]}" "$@" || report_failure $?
