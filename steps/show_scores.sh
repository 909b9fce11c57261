#!/usr/bin/env bash
# Stage 8's figures for the closing summary of a recipe's run.sh: the results table of
# <exp-dir>/results, the T-norm, words, TTS-enrolment and speaker-mean tables beside it, and the real recordings' rows
# (local/score_wakeword_dev.sh's summaries), each only where stage 8 wrote it.
#   steps/show_scores.sh <exp-dir> [<wakeword_dev dir>]
set -euo pipefail
usage="Usage: $0 <exp-dir> [<wakeword_dev dir>]"
case ${1:-} in -h|--help) echo "$usage"; exit 0 ;; -*) echo "$0: unknown option '$1'" >&2; echo "$usage" >&2; exit 1 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "$usage" >&2; exit 1; }
exp=$1
wakeword_dev=${2:-}
if [ ! -f "$exp/results/results.md" ]; then
  echo "$0: $exp/results/results.md does not exist: stage 8 has not scored $exp (bash run.sh --stage 8 --stop-stage 8, with the --train-config or --tag that trained it)" >&2
  exit 1
fi
cat "$exp/results/results.md"
if [ -f "$exp/results_tnorm/results.md" ]; then
  echo
  echo "The same trials with adaptive T-norm (--score-norm tnorm, $exp/results_tnorm):"
  grep '^|' "$exp/results_tnorm/results.md"
fi
if [ -f "$exp/results_words/results.md" ]; then
  echo
  echo "Multi-word keywords also scored word by word (--phrase-score words, $exp/results_words):"
  grep '^|' "$exp/results_words/results.md"
fi
if [ -f "$exp/results_enrol/results.md" ]; then
  echo
  echo "Keywords also enrolled by TTS voices (--enrol tts, $exp/results_enrol):"
  grep '^|' "$exp/results_enrol/results.md"
fi
if [ -f "$exp/results_tnorm_spkmean/results.md" ]; then
  echo
  echo "T-norm after each clip loses its speaker's mean (--score-norm tnorm --speaker-mean, $exp/results_tnorm_spkmean):"
  grep '^|' "$exp/results_tnorm_spkmean/results.md"
fi
real="$exp/results/wakeword_dev"
if [ -n "$wakeword_dev" ] && [ -f "$real/summary.txt" ]; then
  echo
  echo "Real recordings ($wakeword_dev, measured only): $(cat "$real/summary.txt")"
  while IFS='|' read -r dir what; do
    [ ! -f "${real}_$dir/summary.txt" ] || echo "  the same with $what: $(cat "${real}_$dir/summary.txt")"
  done <<'ROWS'
vad|the energy VAD front end (--vad)
tnorm|adaptive T-norm (--score-norm tnorm)
words|the two-word keywords scored word by word (--phrase-score words)
floor50|the level-relative floor (--floor-db 50)
floor50_tnorm|the floor and T-norm (--floor-db 50 --score-norm tnorm)
floor50_tnorm_words|the floor, T-norm and the words
floor50_tnorm_words_enrol|the floor, T-norm, the words and TTS enrolment (score_pairs' and score_clips' default)
floor50_tnorm_words_enrol_spkmean|the user default and each clip less its speaker's mean (--speaker-mean)
ROWS
fi
