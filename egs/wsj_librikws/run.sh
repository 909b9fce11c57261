#!/usr/bin/env bash
# ADML open-vocabulary keyword spotting, trained on King-ASR-066 and tested on WSJ and
# LibriPhrase. Corpora whose path in db.sh is empty are synthesised by stage 0.
#   bash run.sh [--stage N] [--stop-stage M] [--nj J] [--synth-size mini|tiny] [--force true]
# WAKEWORD_DEV in db.sh (real recordings; measured in stages 8-9, never trained on) is optional.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. ./path.sh
. ./cmd.sh
. ./db.sh

# The data: stages hand these names to the generic steps/ scripts.
# Stage 1 writes lhotse manifests <corpus>_{recordings,supervisions}_<part>.jsonl.gz; a set is
# named <corpus>_<part>.
train_set=king_asr_066_train  # word cuts from its CTM train the model
dev_set=king_asr_066_dev      # whole utterances held out of train_set; dev AP after each epoch
# Test sets as <set>:<protocol>. words: word AP, 50 negatives per positive (the paper's WSJ
# protocol); pairs: LP_E and LP_H from LibriPhrase-style CSV pairs.
test_sets="wsj_test:words libriphrase_test:pairs"
aug_test_sets="wsj_test"      # also scored as <set>_aug: one reverberant or noisy copy per cut
# Augmentation sources (recordings manifests, named like sets).
noise_set=musan_noise music_set=musan_music babble_set=musan_speech rir_set=rir_sim_rir
# Stage 9, keyword spotting in continuous speech: these keywords inserted at known times into
# streams of continuous_set's utterances that say none of them.
spot_keywords="alexa,computer,jarvis,smart mirror,snowboy,view glass"
continuous_set=wsj_test

stage=0
stop_stage=100
force=false                 # true: redo stages even when their .done marker exists
nj=$PYADML_NPROC
synth_config=conf/synth.yaml
synth_size=mini             # a size under "sizes:" in conf/synth.yaml
synth_seed=                 # empty: the seed in the config
# ADML+SF2 without MAL: of the paper's configurations measured with two seeds on the mini
# corpora, the best (WSJ-like AP 89.1 against 82.1 with MAL, means of two seeds; RESULTS.md,
# "The paper's claims with seeds"). conf/train_adml_mini.yaml is the full ADML.
train_config=conf/train_adml_nomal_mini.yaml
tag=                        # experiment name under exp/; empty: from the training config
nproc_per_node=1            # training processes (GPUs, or CPU processes with gloo)
help_message="Usage: $0 [options]
  --stage N           first stage to run (default $stage)
  --stop-stage M      last stage to run (default: all)
  --force true|false  redo stages that are already done (default $force)
  --nj J              parallel jobs (default $nj)
  --synth-config F    embedded corpora config (default $synth_config)
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

synth_dir=data/local/synth
manifests=data/manifests
cuts=data/cuts
score_sets=   # the test sets, each followed by its augmented copy
for s in $test_sets; do
  score_sets+=" $s"
  [[ " $aug_test_sets " != *" ${s%%:*} "* ]] || score_sets+=" ${s%%:*}_aug:words"
done
score_sets=${score_sets# }
fbank_sets="${train_set}_aug $dev_set"
for s in $score_sets; do fbank_sets+=" ${s%%:*}"; done

stage_inputs=db.sh run_stage 0 "synthesise embedded corpora ($synth_size) for every corpus with no path in db.sh" \
  data/log/stage0_synth.log \
  local/make_synth_corpora.sh --synth-config "$synth_config" --size "$synth_size" --nj "$nj" \
    --seed "$synth_seed" $synth_dir

stage_inputs=db.sh stage_input_lists=$manifests/stage1_inputs.txt run_stage 1 "lhotse manifests of every corpus in db.sh (the embedded ones where empty)" \
  data/log/stage1_manifests.log \
  local/prepare_manifests.sh $synth_dir $manifests

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
  # The back-ends beside the paper's protocol need a cosine model; a detector model (the
  # baselines' heads) is scored by its head alone.
  local scorer
  scorer=$(python -m pyadml.bin.export_onnx --model $exp/final.pt --print-scorer)
  if [ "$scorer" != cosine ]; then
    echo "$exp/final.pt scores with its $scorer detector head: no T-norm or words back-end (they need a cosine model)"
    steps/score_sets.sh $exp "$tag" "$@"
    if [ -n "$wakeword_dev" ]; then
      local/score_wakeword_dev.sh --variant "" --variant "--vad true" $exp "$wakeword_dev"
    fi
    return 0
  fi
  # The words back-end's windows go through an ONNX export of final.pt in $nj processes (the
  # same scores to float rounding, about twice torch's speed on 2 cores).
  python -m pyadml.bin.export_onnx --model $exp/final.pt --out-dir $exp/onnx \
    > $exp/log/export_onnx.log 2>&1 || { tail -5 $exp/log/export_onnx.log >&2; return 1; }
  tail -1 $exp/log/export_onnx.log
  local words=(--words-onnx $exp/onnx --jobs "$nj")
  local real_log=$exp/log/score_wakeword_dev.log real_pid= status=0
  if [ -n "$wakeword_dev" ]; then
    # In one process: as recorded; with the energy VAD front end; T-norm; the words back-end;
    # the level-relative floor on the features (pyadml.score.floor, 50 dB), alone and with
    # T-norm; all of floor, words and T-norm; and these with TTS enrolment, what score_pairs and
    # score_clips give a user's recordings by default (and with the speaker mean, where the list
    # names the speakers: utils/wakeword_dev.sh). In the background, beside the test sets: either alone
    # leaves part of the cores idle (RESULTS.md, "Benchmark"), and the two write no file in
    # common (results/wakeword_dev*/ here; RESULTS.md and the results*/ tables there).
    local/score_wakeword_dev.sh "${words[@]}" --variant "" --variant "--vad true" \
      --variant "--score-norm tnorm" --variant "--phrase-score words" \
      --variant "--floor-db 50" --variant "--floor-db 50 --score-norm tnorm" \
      --variant "--floor-db 50 --score-norm tnorm --phrase-score words" \
      --variant "--floor-db 50 --score-norm tnorm --phrase-score words --enrol tts" \
      "${wakeword_dev_spkmean[@]}" $exp "$wakeword_dev" > "$real_log" 2>&1 &
    real_pid=$!
  fi
  # The cosine, the same trials with adaptive T-norm, the phrase sets word by word, and every
  # set with the keywords also enrolled by TTS voices; and T-norm after each clip loses its
  # speaker's mean.
  steps/score_sets.sh --tnorm true --words true --enrol true --spkmean true "${words[@]}" $exp "$tag" "$@" || status=$?
  if [ -n "$real_pid" ]; then
    # Waited for even when the test sets failed: nothing is left running.
    if wait "$real_pid"; then
      cat "$real_log"
    else
      echo "scoring the real recordings failed ($real_log):" >&2
      tail -5 "$real_log" >&2
      status=1
    fi
  fi
  return $status
}
# RESULTS.md is shared by every experiment: not an input of this one's stage 8. The real
# recordings' list is: another WAKEWORD_DEV in db.sh scores again.
stage_outputs=RESULTS.md stage_inputs=${wakeword_dev:+$wakeword_dev/clips.tsv} run_stage 8 "score $score_sets${wakeword_dev:+ and the real recordings}: AP, EER, AUC, plots" \
  $exp/log/stage8_score.log score_stage $score_sets

run_stage 9 "keyword spotting in continuous $continuous_set speech${wakeword_dev:+ and real recordings}: FRR at 0.5/1/2 false alarms per hour, DET, latency" \
  $exp/log/stage9_continuous.log \
  steps/eval_continuous.sh --backend onnx --onnx $exp/onnx --nj "$nj" --keywords "$spot_keywords" \
    ${wakeword_dev:+--wakeword-dev "$wakeword_dev"} $exp/final.pt data/manifests $continuous_set $exp/continuous

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
