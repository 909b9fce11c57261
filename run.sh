#!/usr/bin/env bash
# Newcomer entry point: set up everything if needed, then run the paper's recipe
# (egs/wsj_librikws/run.sh) with the options given, e.g. bash run.sh --stop-stage 0
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$root/utils/setup_env.sh"
cd "$root/egs/wsj_librikws"
exec bash run.sh "$@"
