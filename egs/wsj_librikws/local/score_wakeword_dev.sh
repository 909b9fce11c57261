#!/usr/bin/env bash
# Score a model on the real-speech wake-word development set (six keywords, crowd-sourced
# recordings; the protocol of its README: every clip against all six keywords, AP, EER, AUC,
# top-1). For measuring only: it never trains anything.
#   local/score_wakeword_dev.sh [--vad true] [--floor-db DB] [--score-norm tnorm] [--phrase-score words] [--enrol tts] [--words-onnx DIR --jobs N] <exp-dir> [<wakeword_dev dir>]
#   local/score_wakeword_dev.sh [--words-onnx DIR --jobs N] --variant "" --variant "--vad true" ... <exp-dir> [<dir>]
# The set is looked for beside the toolkit (../shared/data/wakeword_dev from its root).
# --vad true: clips cut to their speech first (energy rule of pyadml.score.vad: frames within
# 30 dB of the loudest, plus 50 ms), results in <exp-dir>/results/wakeword_dev_vad; the
# default scores the clips as recorded.
# --floor-db DB: every log-mel value more than DB dB below the clip's loudest raised to that
# level first (pyadml.score.floor: the scores no longer depend on the recording level), results
# in .../wakeword_dev_floor<DB> (after _vad when both are given). Without it the clips are
# scored with no floor (--floor-db none), so that each directory names every front end it had;
# score_clips and score_pairs alone put a 50 dB floor on a user's recordings by default.
# --score-norm tnorm: adaptive T-norm of the scores with the model's training keywords as cohort
# (pyadml.score.norm), results in .../wakeword_dev_tnorm (or wakeword_dev_vad_tnorm). Without
# it, --score-norm none (the cosines), though score_clips alone T-norms a user's recordings.
# --phrase-score words: the two-word keywords also scored word by word (pyadml.score.phrase),
# results in .../wakeword_dev_words (or wakeword_dev_vad_words). Without it, --phrase-score clip
# (the clip cosine), though score_clips alone scores a user's phrases word by word as well.
# --enrol tts: each keyword (and a phrase's word) also spoken by TTS voices, its query mixing
# their acoustic embeddings with its text's (pyadml.score.enrol), results in .../_enrol. Without
# it, --enrol none (the text alone), though score_clips alone enrols a user's keywords so.
# --speaker-mean true: each clip's embedding less the shrunk mean of its speaker's other clips
# (pyadml.score.speaker_mean), the speakers from a third column of clips.tsv (every line must
# have one), results in .../_spkmean.
# The options combine, in the order VAD, floor, T-norm, words, enrolment, speaker mean (with T-norm each
# word's window cosines are T-normed too, pyadml.score.phrase): --vad true --score-norm tnorm
# --phrase-score words gives .../wakeword_dev_vad_tnorm_words, and with --floor-db 50
# .../wakeword_dev_vad_floor50_tnorm_words; --floor-db 50 --score-norm tnorm --phrase-score
# words --enrol tts, what score_clips gives a user's recordings, .../wakeword_dev_floor50_tnorm_words_enrol.
# --words-onnx DIR --jobs N: the words' windows through that ONNX export of the model
# (python -m pyadml.bin.export_onnx) in N processes; the same scores to float rounding.
# --variant "OPTS" (repeatable): score once per variant, each with its own options (any of the
# five above, "" for the clips as recorded) and its own results directory, all in one Python
# process (pyadml.bin.score_clips --run: one start of torch instead of one per variant).
set -euo pipefail
words_onnx=
jobs=1
variants=()
given=()
usage="Usage: $0 [--vad true|false] [--floor-db DB] [--score-norm none|tnorm] [--phrase-score clip|words] [--enrol none|tts] [--speaker-mean true|false] [--words-onnx DIR --jobs N] [--variant OPTS]... <exp-dir> [<wakeword_dev dir>]"
while [ $# -gt 0 ]; do
  case $1 in
    --vad|--floor-db|--score-norm|--phrase-score|--enrol|--speaker-mean) given+=("$1" "${2?$1 needs a value}"); shift 2 ;;
    --words-onnx) words_onnx=${2:?--words-onnx needs a directory}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --variant) variants+=("${2?--variant needs its options, "" for none}"); shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "$0: unknown option '$1'" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "$usage" >&2; exit 1; }
if [ ${#variants[@]} -eq 0 ]; then
  variants=("${given[*]}")
elif [ ${#given[@]} -gt 0 ]; then
  echo "$0: give the scoring options inside each --variant, not beside them (got ${given[*]})" >&2; exit 1
fi
exp=$1
dev=${2:-$PYADML_ROOT/../shared/data/wakeword_dev}
if [ ! -f "$dev/clips.tsv" ]; then
  echo "$0: no wake-word development set at $dev (clips.tsv); nothing to score"
  exit 0
fi

# One variant's options -> its results directory in $out and score_clips options in $opts.
variant() {
  local vad=false floor_db= norm=none phrase=clip enrol=none spkmean=false
  local -; set -f   # the six options take simple values: word splitting (no globbing) is the parse
  set -- $1
  while [ $# -gt 0 ]; do
    case $1 in
      --vad) vad=${2:?--vad needs true or false}; shift 2 ;;
      --floor-db) floor_db=${2:?--floor-db needs a number of dB}; shift 2 ;;
      --score-norm) norm=${2:?--score-norm needs none or tnorm}; shift 2 ;;
      --phrase-score) phrase=${2:?--phrase-score needs clip or words}; shift 2 ;;
      --enrol) enrol=${2:?--enrol needs none or tts}; shift 2 ;;
      --speaker-mean) spkmean=${2:?--speaker-mean needs true or false}; shift 2 ;;
      *) echo "$0: unknown scoring option '$1' (expected --vad, --floor-db, --score-norm, --phrase-score, --enrol or --speaker-mean)" >&2; return 1 ;;
    esac
  done
  out=$exp/results/wakeword_dev
  opts=()
  case $vad in
    true) out=${out}_vad; opts+=(--vad) ;;
    false) ;;
    *) echo "$0: --vad must be true or false, got '$vad'" >&2; return 1 ;;
  esac
  if [ -n "$floor_db" ]; then
    case $floor_db in
      *[!0-9.]*|.|*.*.*) echo "$0: --floor-db must be a positive number of dB, got '$floor_db'" >&2; return 1 ;;
    esac
    out=${out}_floor$floor_db; opts+=(--floor-db "$floor_db")
  else
    opts+=(--floor-db none)
  fi
  case $norm in
    tnorm) out=${out}_tnorm; opts+=(--score-norm tnorm) ;;
    none) opts+=(--score-norm none) ;;
    *) echo "$0: --score-norm must be none or tnorm, got '$norm'" >&2; return 1 ;;
  esac
  case $phrase in
    words) out=${out}_words; opts+=(--phrase-score words ${words_onnx:+--words-onnx "$words_onnx" --jobs "$jobs"}) ;;
    clip) opts+=(--phrase-score clip) ;;
    *) echo "$0: --phrase-score must be clip or words, got '$phrase'" >&2; return 1 ;;
  esac
  case $enrol in
    tts) out=${out}_enrol; opts+=(--enrol tts) ;;
    none) opts+=(--enrol none) ;;
    *) echo "$0: --enrol must be none or tts, got '$enrol'" >&2; return 1 ;;
  esac
  case $spkmean in
    true) out=${out}_spkmean; opts+=(--speaker-mean) ;;
    false) ;;
    *) echo "$0: --speaker-mean must be true or false, got '$spkmean'" >&2; return 1 ;;
  esac
}

# The first variant on score_clips' command line, the others as its --run's.
args=()
for v in "${variants[@]}"; do
  variant "$v"
  if [ ${#args[@]} -eq 0 ]; then
    args=("${opts[@]}" --out-dir "$out")
  else
    printf -v run '%q ' "${opts[@]}" --out-dir "$out"
    args+=(--run "$run")
  fi
done
python -m pyadml.bin.score_clips --model "$exp/final.pt" --clips "$dev/clips.tsv" "${args[@]}"
