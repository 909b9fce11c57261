#!/usr/bin/env bash
# Stage 1: lhotse manifests of wsj (pyadml.data.prepare.prepare_wsj), validated.
#   local/prepare_wsj.sh <corpus-dir> <manifest-dir> [--ctm words.ctm]
set -euo pipefail
[ $# -ge 2 ] || { echo "Usage: $0 <corpus-dir> <manifest-dir>" >&2; exit 1; }
python -m pyadml.bin.prepare_manifests wsj "$@"
