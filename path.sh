# Environment shared by every recipe: the venv, PYTHONPATH, thread counts, sort order.
# Sourced by egs/*/path.sh; run utils/setup_env.sh (or the root run.sh) first.
PYADML_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYADML_ROOT
if [ ! -x "$PYADML_ROOT/.venv/bin/python" ]; then
  echo "path.sh: $PYADML_ROOT/.venv is missing; run: bash $PYADML_ROOT/utils/setup_env.sh" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="$PYADML_ROOT/.venv/bin:$PATH"
export PYTHONPATH="$PYADML_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# Cores for parallel jobs and training threads, counted before OMP_NUM_THREADS is set (GNU nproc
# obeys that variable). Set PYADML_NPROC beforehand to use fewer, e.g. two runs side by side.
PYADML_NPROC=${PYADML_NPROC:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
export PYADML_NPROC
# Kaldi-style files are sorted in C order; one thread per process unless a step asks for more.
export LC_ALL=C
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
