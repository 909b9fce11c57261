#!/usr/bin/env bash
# The test command: set up if needed, then run the whole test suite. Extra args go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/utils/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -q "$@"
