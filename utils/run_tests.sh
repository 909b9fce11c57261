#!/usr/bin/env bash
# The test command: set up if needed, then run the whole test suite. Extra args go to pytest.
# Test files run in parallel, one pytest-xdist worker per core up to 4 (a file's tests stay on
# one worker, so a module's fixture, e.g. the tiny recipe run, is built once). Run serially the
# suite keeps about one of two cores busy; two workers took it from 12 m 33 s to 6 m 58 s.
# PYADML_TEST_JOBS=1 runs them in one process, in order.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/utils/setup_env.sh"
cd "$root"
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc alone obeys OMP_NUM_THREADS
jobs=${PYADML_TEST_JOBS:-$(( cores < 4 ? cores : 4 ))}
case $jobs in
  ''|*[!0-9]*|0) echo "run_tests: PYADML_TEST_JOBS must be a positive integer, got '$jobs'" >&2; exit 1 ;;
  1) exec "$root/.venv/bin/python" -m pytest -q "$@" ;;
  *) # Each worker starts processes that use every core; OpenMP threads that spin while they
     # wait then starve the other worker's (the tiny recipe's training beside one busy process:
     # 93 s spinning, 22 s sleeping).
     export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
     exec "$root/.venv/bin/python" -m pytest -q -n "$jobs" --dist loadfile --no-loadscope-reorder "$@" ;;
esac
