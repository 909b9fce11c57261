#!/usr/bin/env bash
# Stage 1: lhotse manifests of this recipe's corpora, from the paths in db.sh; a corpus whose
# path is empty is read from the embedded stand-in that stage 0 wrote under <synth-dir>.
#   local/prepare_manifests.sh <synth-dir> <manifest-dir>
set -euo pipefail
[ $# -eq 2 ] || { echo "Usage: $0 <synth-dir> <manifest-dir>" >&2; exit 1; }
synth=$1
out=$2
. ./db.sh
# Each corpus is one "prepare <corpus> <dir> <out> [options]" line; they are all prepared in one
# Python process at the end (prepare_all), in order, the first that fails stopping the stage.
corpora=()
prepare() { corpora+=(--- "$@"); }
# The corpus files the preparers read are listed for run.sh: stage 1's marker hashes them, so
# editing a corpus (its text, CTM, wav.scp) reruns stage 1.
prepare_all() {
  python -m pyadml.bin.prepare_manifests "${corpora[@]:1}" --inputs-list "$out/stage1_inputs.txt"
}
prepare king_asr_066 "${KING_ASR_066:-$synth/king_asr_066}" "$out"
prepare wsj "${WSJ:-$synth/wsj}" "$out" ${WSJ_CTM:+--ctm "$WSJ_CTM"}
prepare libriphrase "${LIBRIPHRASE:-$synth/libriphrase}" "$out"
prepare musan "${MUSAN:-$synth/musan}" "$out"
prepare rirs_noises "${RIRS_NOISES:-$synth/rirs_noises}" "$out"
prepare_all
