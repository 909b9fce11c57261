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
help_message="Usage: $0 [options]
  --stage N           first stage to run (default $stage)
  --stop-stage M      last stage to run (default: all)
  --force true|false  redo stages that are already done (default $force)
  --nj J              parallel jobs (default $nj)
  --synth-size NAME   embedded corpus size in $synth_config (default $synth_size)
  --synth-seed S      seed of the embedded corpora (default: the config's)"
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
