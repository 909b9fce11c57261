# How steps run their parallel jobs: "$cmd JOB=1:N log/name.JOB.log command ... JOB ...".
# One variable picks the backend:  cmd_backend=slurm bash run.sh ...
#   local  N processes on this machine, at most --max-jobs-run at a time (the default);
#   slurm  one Slurm array job per call, options mapped to sbatch flags by conf/slurm.conf.
# See the README ("Running on a cluster").
cmd_backend=${cmd_backend:-local}
case $cmd_backend in
  local) export cmd="utils/run_local.sh --max-jobs-run $PYADML_NPROC" ;;
  slurm) export cmd="utils/run_slurm.sh --config conf/slurm.conf" ;;
  *) echo "cmd.sh: unknown cmd_backend '$cmd_backend' (expected local or slurm)" >&2
     return 1 2>/dev/null || exit 1 ;;
esac
