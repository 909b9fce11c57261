# How steps run their parallel jobs: "$cmd JOB=1:N log/name.JOB.log command ... JOB ...".
# local: N processes on this machine, at most --max-jobs-run at a time.
# The Slurm backend is described in the README ("Running on a cluster").
export cmd="utils/run_local.sh --max-jobs-run $PYADML_NPROC"
