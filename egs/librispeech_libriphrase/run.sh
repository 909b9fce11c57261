#!/usr/bin/env bash
# ADML open-vocabulary keyword spotting, trained on LibriSpeech word segments (from its word
# alignments) and tested on LibriPhrase (LP_E, LP_H), and on WSJ when db.sh declares it; stage 9
# spots keywords in the continuous speech of LibriSpeech test-clean.
# Corpora whose path in db.sh is empty are synthesised by stage 0. See README.md here.
# WAKEWORD_DEV in db.sh (real recordings; measured in stages 8-9, never trained on) is optional.
#   bash run.sh [--stage N] [--stop-stage M] [--nj J] [--synth-size mini|tiny] [--force true]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. ./path.sh
. ./cmd.sh
. ./db.sh

# The data: stages hand these names to the generic steps/ scripts.
# Stage 1 writes lhotse manifests <corpus>_{recordings,supervisions}_<part>.jsonl.gz; a set is
# named <corpus>_<part>.
# LibriSpeech subsets that make the training set (--train-parts). LibriPhrase's test pairs are
# cut from train-other-500, so with LibriPhrase as a test set that subset must stay out: stage 1
# fails, naming the shared speakers, when a test set in disjoint_sets shares one with training.
train_parts="train-clean-100 train-clean-360"
train_set=librispeech_train   # manifests librispeech_{recordings,supervisions}_train.jsonl.gz
dev_set=librispeech_train_dev # whole utterances held out of train_set; dev AP after each epoch
# Test sets as <set>:<protocol>. pairs: LP_E and LP_H from LibriPhrase's CSV pairs; words:
# word AP, 50 negatives per positive (the paper's WSJ protocol).
test_sets="libriphrase_test:pairs"
aug_test_sets=                # also scored as <set>_aug: one reverberant or noisy copy per cut
if declare -p WSJ > /dev/null 2>&1; then  # WSJ only when db.sh declares it
  test_sets+=" wsj_test:words"
  aug_test_sets="wsj_test"
fi
disjoint_sets="libriphrase_test"  # test sets whose speakers are LibriSpeech's: none may train
# Stage 9, keyword spotting in continuous speech: these keywords inserted at known times into
# streams of the utterances of this LibriSpeech subset (set librispeech_<subset>; its speakers
# may not train either) that say none of them. Empty (--continuous-part ""): no stage 9.
spot_keywords="alexa,computer,jarvis,smart mirror,snowboy,view glass"
continuous_part=test-clean
# Augmentation sources (recordings manifests, named like sets).
noise_set=musan_noise music_set=musan_music babble_set=musan_speech rir_set=rir_sim_rir

stage=0
stop_stage=100
force=false                 # true: redo stages even when their .done marker exists
nj=$PYADML_NPROC
synth_config=conf/synth.yaml
synth_librispeech_config=conf/synth_librispeech.yaml
synth_size=mini             # a size under "sizes:" in conf/synth.yaml
synth_seed=                 # empty: the seed in the config
train_config=conf/train_adml_nomal_mini.yaml  # conf/train_adml_mini.yaml: with MAL, as the paper
tag=                        # experiment name under exp/; empty: from the training config
nproc_per_node=1            # training processes (GPUs, or CPU processes with gloo)
help_message="Usage: $0 [options]
  --train-parts \"S ...\" LibriSpeech subsets to train on (default \"$train_parts\")
  --continuous-part S LibriSpeech subset of stage 9's continuous speech (default $continuous_part; \"\": none)
  --stage N           first stage to run (default $stage)
  --stop-stage M      last stage to run (default: all)
  --force true|false  redo stages that are already done (default $force)
  --nj J              parallel jobs (default $nj)
  --synth-config F    embedded corpora config (default $synth_config)
  --synth-librispeech-config F  its LibriSpeech stand-in (default $synth_librispeech_config)
  --synth-size NAME   embedded corpus size in $synth_config (default $synth_size)
  --synth-seed S      seed of the embedded corpora (default: the config's)
  --train-config F    training yaml (default $train_config)
  --tag NAME          experiment directory exp/NAME (default: the config's name)
  --nproc-per-node N  training processes (default $nproc_per_node)"
. utils/parse_options.sh
done_dir=data/.done
. utils/stage.sh
last_stage=9
for v in "$stage" "$stop_stage"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "$0: stage numbers must be integers, got '$v'" >&2; exit 1; }
done
if (( stage > last_stage || stage > stop_stage )); then
  echo "$0: --stage $stage --stop-stage $stop_stage runs nothing: the stages are 0-$last_stage" >&2
  exit 1
fi
# The real recordings to measure on in stage 8 (utils/wakeword_dev.sh: db.sh's WAKEWORD_DEV,
# else ../shared/data/wakeword_dev when there is one); a wrong WAKEWORD_DEV stops the run here.
wakeword_dev=
wakeword_dev_spkmean=()
(( stop_stage < 8 )) || . utils/wakeword_dev.sh
# One run at a time per data directory and per experiment.
# From stage 6 on, data/ is only read: such runs (another experiment's training) share the lock,
# and a run of stages 0-5 (which rewrite data/) is refused while one of them runs.
if (( stage > 5 )); then hold_lock data/.lock shared; else hold_lock data/.lock; fi
continuous_set=
if [ -n "$continuous_part" ]; then
  continuous_set=librispeech_${continuous_part//-/_}
  disjoint_sets+=" $continuous_set"
fi

synth_dir=data/local/synth
manifests=data/manifests
cuts=data/cuts
score_sets=   # the test sets, each followed by its augmented copy
for s in $test_sets; do
  score_sets+=" $s"
  [[ " $aug_test_sets " != *" ${s%%:*} "* ]] || score_sets+=" ${s%%:*}_aug:words"
done
fbank_sets="${train_set}_aug $dev_set"
for s in $score_sets; do fbank_sets+=" ${s%%:*}"; done

stage_inputs=db.sh run_stage 0 "synthesise embedded corpora ($synth_size) for every corpus with no path in db.sh" \
  data/log/stage0_synth.log \
  local/make_synth_corpora.sh --synth-config "$synth_config" \
    --librispeech-config "$synth_librispeech_config" --size "$synth_size" --nj "$nj" \
    --seed "$synth_seed" $synth_dir

stage_inputs=db.sh stage_input_lists=$manifests/stage1_inputs.txt run_stage 1 "lhotse manifests of every corpus in db.sh (the embedded ones where empty); speakers of $train_set ($train_parts) vs $disjoint_sets" \
  data/log/stage1_manifests.log \
  local/prepare_manifests.sh --train-parts "$train_parts" --train-set $train_set \
    --continuous-part "$continuous_part" --disjoint-sets "$disjoint_sets" $synth_dir $manifests

# The speaker check of stage 1 again, on the manifests that later stages read (cheap): a
# training set that stage 1 wrote before its check failed, or changed by hand, never trains.
if (( stage <= 6 && stop_stage >= 2 )) && [ -n "$disjoint_sets" ] && [ -f $manifests/librispeech_supervisions_${train_set#librispeech_}.jsonl.gz ]; then
  python local/check_disjoint_speakers.py $manifests $train_set $disjoint_sets || exit 1
fi

run_stage 2 "word cuts of $train_set (dev: $dev_set) and the test sets; lexicon, phones, G2P options" \
  data/log/stage2_cuts.log \
  steps/make_word_cuts.sh --data-config conf/data.yaml --dev-set $dev_set $manifests $cuts data/lang \
    $train_set $test_sets

run_stage 3 "augmentation of $train_set${aug_test_sets:+ and of $aug_test_sets}: RIRs, noise, music, babble (seeded)" \
  data/log/stage3_augment.log \
  steps/augment_cuts.sh --augment-config conf/augment.yaml --noise $noise_set --music $music_set \
    --babble $babble_set --rirs $rir_set --eval-sets "$aug_test_sets" $manifests $cuts $train_set

run_stage 4 "40-dim fbank with lhotse, $nj jobs through \$cmd" data/log/stage4_fbank.log \
  steps/make_fbank_sets.sh --nj "$nj" --cmd "$cmd" --fbank-config conf/fbank.yaml $cuts data/fbank \
    $fbank_sets

run_stage 5 "trial lists of $dev_set and the test sets" data/log/stage5_trials.log \
  python -m pyadml.bin.make_trials --config conf/data.yaml --train-set $train_set \
    --aug-sets "$aug_test_sets" $cuts $manifests data/trials $dev_set:words $test_sets

tag=${tag:-$(basename "$train_config" .yaml | sed 's/^train_//')}
exp=exp/$tag
done_dir=$exp/.done   # stages 6-9 are done per experiment, not per data directory
(( stop_stage < 6 )) || hold_lock $exp/.lock

# Stage 6 resumes: a re-run after a crash continues from the last checkpoint; a changed config
# is an error naming the keys, and --force true starts afresh (the old run moves to
# $exp/previous/). It copies the lang directory and the fbank options into $exp, which is all
# that stages 7-8 read.
run_stage 6 "train $tag with torchrun ($nproc_per_node process(es)), resuming if possible" \
  $exp/log/stage6_train.log \
  steps/train.sh --nproc-per-node "$nproc_per_node" --resume true --fresh "$force" "$train_config" $exp \
    data.train=data/fbank/${train_set}_aug.jsonl.gz data.dev=data/fbank/$dev_set.jsonl.gz \
    data.dev_trials=data/trials/$dev_set.tsv data.lang=data/lang data.fbank_config=conf/fbank.yaml

run_stage 7 "average the last checkpoints or keep a moving average of the weights (whichever gives the best dev AP) into a self-contained $exp/final.pt" \
  $exp/log/stage7_export.log \
  python -m pyadml.bin.export_model --exp-dir $exp

score_stage() {
  # A detector model (the baselines' heads) is scored by its head alone.
  local scorer
  scorer=$(python -m pyadml.bin.export_onnx --model $exp/final.pt --print-scorer)
  if [ "$scorer" != cosine ]; then
    echo "$exp/final.pt scores with its $scorer detector head: no T-norm or words back-end (they need a cosine model)"
    steps/score_sets.sh $exp "$tag" "$@"
    [ -z "$wakeword_dev" ] || local/score_wakeword_dev.sh --variant "" $exp "$wakeword_dev"
    return 0
  fi
  # The paper's protocol (the clip cosine) and, beside it, the same trials with adaptive T-norm,
  # the sets with multi-word keywords (protocol pairs) scored word by word, the words in order
  # (pyadml.score.phrase), their windows through an ONNX export of final.pt, and every set with
  # the keywords also enrolled by TTS voices (pyadml.score.enrol), and T-norm after each clip
  # loses its speaker's mean (pyadml.score.speaker_mean).
  python -m pyadml.bin.export_onnx --model $exp/final.pt --out-dir $exp/onnx \
    > $exp/log/export_onnx.log 2>&1 || { tail -5 $exp/log/export_onnx.log >&2; return 1; }
  local words=(--words-onnx $exp/onnx --jobs "$nj")
  steps/score_sets.sh --tnorm true --words true --enrol true --spkmean true "${words[@]}" $exp "$tag" "$@"
  # The real recordings (egs/wsj_librikws's local script): as recorded, with the floor, T-norm
  # and the words, and with TTS enrolment too, as score_clips and score_pairs score a user's
  # recordings by default.
  if [ -n "$wakeword_dev" ]; then
    local/score_wakeword_dev.sh "${words[@]}" --variant "" \
      --variant "--floor-db 50 --score-norm tnorm --phrase-score words" \
      --variant "--floor-db 50 --score-norm tnorm --phrase-score words --enrol tts" \
      "${wakeword_dev_spkmean[@]}" $exp "$wakeword_dev"
  fi
}
# RESULTS.md is shared by every experiment: not an input of this one's stage 8. The real
# recordings' list is: another WAKEWORD_DEV in db.sh scores again.
stage_outputs=RESULTS.md stage_inputs=${wakeword_dev:+$wakeword_dev/clips.tsv} run_stage 8 "score $score_sets${wakeword_dev:+ and the real recordings}: AP, EER, AUC, plots" \
  $exp/log/stage8_score.log score_stage $score_sets

if [ -n "$continuous_set" ]; then
  run_stage 9 "keyword spotting in continuous $continuous_set speech${wakeword_dev:+ and real recordings}: FRR at 0.5/1/2 false alarms per hour, DET, latency" \
    $exp/log/stage9_continuous.log \
    steps/eval_continuous.sh --backend onnx --onnx $exp/onnx --nj "$nj" --keywords "$spot_keywords" \
      ${wakeword_dev:+--wakeword-dev "$wakeword_dev"} $exp/final.pt $manifests $continuous_set $exp/continuous
elif (( stage <= 9 && stop_stage >= 9 )); then
  echo "Stage 9 skipped: no continuous speech to spot keywords in (--continuous-part is empty)"
fi

# The closing summary (when stage 8 or 9 was asked for): the results, where things are, and how to
# use the model just trained.
if [ "$stop_stage" -ge 8 ] && [ "$stage" -le 9 ] && [ -f $exp/results/results.md ]; then
  echo
  echo "== Results of $exp (in $PWD):"
  steps/show_scores.sh $exp "$wakeword_dev"
  if [ "$stop_stage" -ge 9 ] && [ -f $exp/continuous/results.md ]; then
    echo
    echo "== Keyword spotting in continuous speech ($exp/continuous, DET plot det.png):"
    cat $exp/continuous/results.md
  fi
  echo
  echo "== Where things are:"
  where() { printf '   %-12s %s\n' "$1" "$2"; }
  where model "$exp/final.pt (self-contained: tokenizer and fbank options inside)"
  where plots "$(cd $exp/results && ls ./*.png 2>/dev/null | sed "s|^\./|$exp/results/|" | paste -sd' ')"
  where scores "$exp/results/metrics.json, per trial $exp/results/<list>/scores.tsv, RESULTS.md ($tag)"
  where training "$exp/metrics.jsonl, $exp/log/train.rank0.log, $exp/checkpoints/"
  if [ -d $exp/tensorboard ]; then
    where tensorboard "$exp/tensorboard: tensorboard --logdir exp --host 127.0.0.1, then http://127.0.0.1:6006"
  fi
  where "stage logs" "data/log/stage[0-5]_*.log, $exp/log/stage[6-9]_*.log (progress: *.log.progress)"
  echo
  echo "== Score your own audio with this model (pairs.tsv: one 'wav<TAB>keyword' line per pair):"
  echo "   . ./path.sh"
  echo "   python -m pyadml.bin.score_pairs --model $exp/final.pt --pairs pairs.tsv --out scores.tsv"
  echo "   python -m pyadml.bin.detect --model $exp/final.pt --keywords 'computer,smart mirror' recording.wav   # where in long audio"
fi
