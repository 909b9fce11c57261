#!/usr/bin/env bash
# ADML open-vocabulary keyword spotting, trained on King-ASR-066 and tested on WSJ and
# LibriPhrase. Corpora whose path in db.sh is empty are synthesised by stage 0.
#   bash run.sh [--stage N] [--stop-stage M] [--nj J] [--synth-size mini|tiny] [--force true]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. ./path.sh
. ./cmd.sh
. ./db.sh

stage=0
stop_stage=100
force=false                 # true: redo stages even when their .done marker exists
nj=$PYADML_NPROC
synth_config=conf/synth.yaml
synth_size=mini             # a size under "sizes:" in conf/synth.yaml
synth_seed=                 # empty: the seed in the config
train_config=conf/train_adml_mini.yaml
tag=                        # experiment name under exp/; empty: from the training config
nproc_per_node=1            # training processes (GPUs, or CPU processes with gloo)
help_message="Usage: $0 [options]
  --stage N           first stage to run (default $stage)
  --stop-stage M      last stage to run (default: all)
  --force true|false  redo stages that are already done (default $force)
  --nj J              parallel jobs (default $nj)
  --synth-size NAME   embedded corpus size in $synth_config (default $synth_size)
  --synth-seed S      seed of the embedded corpora (default: the config's)
  --train-config F    training yaml (default $train_config)
  --tag NAME          experiment directory exp/NAME (default: the config's name)
  --nproc-per-node N  training processes (default $nproc_per_node)"
. utils/parse_options.sh
done_dir=data/.done
. utils/stage.sh

synth_dir=data/local/synth

run_stage 0 "synthesise embedded corpora ($synth_size) for every corpus with no path in db.sh" \
  data/log/stage0_synth.log \
  local/make_synth_corpora.sh --synth-config "$synth_config" --size "$synth_size" --nj "$nj" \
    --seed "$synth_seed" "$synth_dir"

# Corpora not given in db.sh are the embedded ones from now on.
KING_ASR_066=${KING_ASR_066:-$synth_dir/king_asr_066}
WSJ=${WSJ:-$synth_dir/wsj}
LIBRIPHRASE=${LIBRIPHRASE:-$synth_dir/libriphrase}
MUSAN=${MUSAN:-$synth_dir/musan}
RIRS_NOISES=${RIRS_NOISES:-$synth_dir/rirs_noises}
manifests=data/manifests
cuts=data/cuts

manifests_stage() {
  local/prepare_king_asr_066.sh "$KING_ASR_066" $manifests
  local/prepare_wsj.sh "$WSJ" $manifests ${WSJ_CTM:+--ctm "$WSJ_CTM"}
  local/prepare_libriphrase.sh "$LIBRIPHRASE" $manifests
  python -m pyadml.bin.prepare_manifests musan "$MUSAN" $manifests
  python -m pyadml.bin.prepare_manifests rirs_noises "$RIRS_NOISES" $manifests
}
run_stage 1 "lhotse manifests of King-ASR-066, WSJ, LibriPhrase, MUSAN, RIRS_NOISES" \
  data/log/stage1_manifests.log manifests_stage

run_stage 2 "word cuts from the CTMs, keyword ids, lexicon and phone table (offline G2P)" \
  data/log/stage2_cuts.log \
  python -m pyadml.bin.make_word_cuts --config conf/data.yaml --manifests $manifests \
    --out-dir $cuts --lang-dir data/lang

augment_stage() {
  local rirs=$manifests/rir_recordings_sim_rir.jsonl.gz
  python -m pyadml.bin.augment_cuts --config conf/augment.yaml --musan-dir $manifests \
    --rir-manifest $rirs --cuts $cuts/king_asr_066_train_words.jsonl.gz \
    --out $cuts/king_asr_066_train_words_aug.jsonl.gz
  python -m pyadml.bin.augment_cuts --config conf/augment.yaml --musan-dir $manifests \
    --rir-manifest $rirs --cuts $cuts/wsj_test_words.jsonl.gz --eval \
    --out $cuts/wsj_test_words_aug.jsonl.gz
}
run_stage 3 "augmentation: RIR reverberation and MUSAN noise, music, babble (seeded)" \
  data/log/stage3_augment.log augment_stage

fbank_stage() {
  local name
  for name in king_asr_066_train_words_aug king_asr_066_dev_words wsj_test_words \
      wsj_test_words_aug libriphrase_test; do
    steps/make_fbank.sh --nj "$nj" --cmd "$cmd" --fbank-config conf/fbank.yaml \
      $cuts/$name.jsonl.gz data/fbank data/fbank/$name.jsonl.gz
  done
}
run_stage 4 "40-dim fbank with lhotse, $nj jobs through \$cmd" data/log/stage4_fbank.log fbank_stage

run_stage 5 "trial lists: WSJ protocol (clean, augmented, dev) and LibriPhrase LP_E / LP_H" \
  data/log/stage5_trials.log \
  python -m pyadml.bin.make_trials --config conf/data.yaml --cuts-dir $cuts \
    --manifests $manifests --out-dir data/trials

tag=${tag:-$(basename "$train_config" .yaml | sed 's/^train_//')}
exp=exp/$tag
done_dir=$exp/.done   # stages 6-8 are done per experiment, not per data directory

# Stage 6 always resumes: a re-run after a crash continues from the last checkpoint.
run_stage 6 "train $tag with torchrun ($nproc_per_node process(es)), resuming if possible" \
  $exp/log/stage6_train.log \
  steps/train.sh --nproc-per-node "$nproc_per_node" --resume true "$train_config" $exp

run_stage 7 "average the last checkpoints into a self-contained $exp/final.pt" \
  $exp/log/stage7_export.log \
  python -m pyadml.bin.export_model --exp-dir $exp --lang data/lang \
    --fbank-config conf/fbank.yaml --out $exp/final.pt

run_stage 8 "score WSJ (clean, augmented) and LibriPhrase (LP_E, LP_H): AP, EER, AUC, plots" \
  $exp/log/stage8_score.log \
  python -m pyadml.bin.score --model $exp/final.pt --fbank-dir data/fbank --trials-dir data/trials \
    --out-dir $exp/results --results-md RESULTS.md --tag "$tag"
[ "$stop_stage" -lt 8 ] || [ "$stage" -gt 8 ] || cat $exp/results/results.md 2>/dev/null || true
