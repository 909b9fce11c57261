#!/usr/bin/env bash
# Stage 1: lhotse manifests of king_asr_066 (pyadml.data.prepare.prepare_king_asr_066), validated.
#   local/prepare_king_asr_066.sh <corpus-dir> <manifest-dir>
set -euo pipefail
[ $# -ge 2 ] || { echo "Usage: $0 <corpus-dir> <manifest-dir>" >&2; exit 1; }
python -m pyadml.bin.prepare_manifests king_asr_066 "$@"
