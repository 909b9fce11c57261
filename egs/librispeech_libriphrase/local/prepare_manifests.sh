#!/usr/bin/env bash
# Stage 1: lhotse manifests of this recipe's corpora, from the paths in db.sh; a corpus whose
# path is empty is read from the embedded stand-in that stage 0 wrote under <synth-dir>. Ends
# with the train/test speaker check: the training set must share no speaker with the
# LibriPhrase test (whose pairs come from LibriSpeech train-other-500), nor with the continuous
# speech of stage 9 (--continuous-part, one subset: set librispeech_<subset>, read without its
# word alignments, which stage 9 does not need).
#   local/prepare_manifests.sh [--train-parts "train-clean-100 train-clean-360"] \
#       [--train-set librispeech_train] [--continuous-part test-clean] \
#       [--disjoint-sets "libriphrase_test librispeech_test_clean"] <synth-dir> <manifest-dir>
set -euo pipefail
train_parts="train-clean-100 train-clean-360"
train_set=librispeech_train
continuous_part=
disjoint_sets=libriphrase_test
help_message="Usage: $0 [--train-parts \"SUBSET ...\"] [--train-set NAME] [--continuous-part SUBSET] [--disjoint-sets \"SET ...\"] <synth-dir> <manifest-dir>"
. utils/parse_options.sh
[ $# -eq 2 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
synth=$1
out=$2
. ./db.sh
[[ $train_set == librispeech_* ]] || { echo "$0: --train-set must be librispeech_<part>, got $train_set" >&2; exit 1; }
# Each corpus is one "prepare <corpus> <dir> <out> [options]" line; they are all prepared in one
# Python process at the end (prepare_all), in order, the first that fails stopping the stage.
corpora=()
prepare() { corpora+=(--- "$@"); }
# The corpus files the preparers read are listed for run.sh: stage 1's marker hashes them, so
# editing a corpus (its text, CTM, wav.scp) reruns stage 1.
prepare_all() {
  python -m pyadml.bin.prepare_manifests "${corpora[@]:1}" --inputs-list "$out/stage1_inputs.txt"
}
ls_dir=${LIBRISPEECH:-$synth/librispeech/LibriSpeech}
# The training subsets make one set, librispeech_{recordings,supervisions}_<part>.jsonl.gz.
prepare librispeech "$ls_dir" "$out" --part "${train_set#librispeech_}=$(echo $train_parts | tr ' ' ,)" \
  ${LIBRISPEECH_ALIGNMENTS:+--ctm "$LIBRISPEECH_ALIGNMENTS"}
# A LibriSpeech with none of the training subsets (a wrong path in db.sh: the preparer names
# what it expected) is not told to add the continuous one.
has_subset() { [ -d "$ls_dir/$1" ] || [ -d "$ls_dir/LibriSpeech/$1" ]; }
has_training=false
for p in $train_parts; do ! has_subset "$p" || has_training=true; done
if [ -n "$continuous_part" ] && $has_training; then
  if ! has_subset "$continuous_part"; then
    echo "$0: $ls_dir has no $continuous_part/ for stage 9's continuous speech: add that subset" \
      "(openslr.org/12), name another with run.sh --continuous-part, or run without stage 9:" \
      "--continuous-part \"\"" >&2
    exit 1
  fi
  prepare librispeech "$ls_dir" "$out" --part "$continuous_part" --ctm none
fi
if declare -p WSJ > /dev/null 2>&1; then
  prepare wsj "${WSJ:-$synth/wsj}" "$out" ${WSJ_CTM:+--ctm "$WSJ_CTM"}
fi
prepare libriphrase "${LIBRIPHRASE:-$synth/libriphrase}" "$out"
prepare musan "${MUSAN:-$synth/musan}" "$out"
prepare rirs_noises "${RIRS_NOISES:-$synth/rirs_noises}" "$out"
prepare_all
if [ -n "$disjoint_sets" ]; then
  python local/check_disjoint_speakers.py "$out" "$train_set" $disjoint_sets
fi
