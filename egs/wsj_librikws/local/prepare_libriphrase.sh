#!/usr/bin/env bash
# Stage 1: lhotse manifests of libriphrase (pyadml.data.prepare.prepare_libriphrase), validated.
#   local/prepare_libriphrase.sh <corpus-dir> <manifest-dir>
set -euo pipefail
[ $# -ge 2 ] || { echo "Usage: $0 <corpus-dir> <manifest-dir>" >&2; exit 1; }
python -m pyadml.bin.prepare_manifests libriphrase "$@"
