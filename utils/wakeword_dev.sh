# shellcheck shell=bash
# Sourced by the recipes' run.sh: sets wakeword_dev (and wakeword_dev_spkmean, below), the
# real recordings that stage 8 (and stage 9 where there is one) measure on, never trained on.
# db.sh's WAKEWORD_DEV when it is set, which must then hold clips.tsv (checked before any stage
# runs, so a wrong path stops the run at once, not after training); else the development set
# beside the toolkit ($PYADML_ROOT/../shared/data/wakeword_dev) when it is there; else empty,
# not scored.
if [ -n "${WAKEWORD_DEV:-}" ]; then
  if [ ! -f "$WAKEWORD_DEV/clips.tsv" ]; then
    echo "$0: db.sh sets WAKEWORD_DEV=$WAKEWORD_DEV, which has no clips.tsv (expected" \
         "'audio/<file><TAB>keyword' lines beside an audio/ directory); fix the path, or leave" \
         "it empty to use ../shared/data/wakeword_dev when there is one" >&2
    exit 1
  fi
  wakeword_dev=$WAKEWORD_DEV
else
  wakeword_dev=$PYADML_ROOT/../shared/data/wakeword_dev
  [ -f "$wakeword_dev/clips.tsv" ] || wakeword_dev=
fi
# A list that names every clip's speaker (a third column, `<audio><TAB><keyword><TAB><speaker>`)
# is also scored with the per-speaker mean on top of the user default (score_clips --speaker-mean).
# A list that names some speakers only is scored without it, and said so.
wakeword_dev_spkmean=()
if [ -n "$wakeword_dev" ]; then
  read -r _lines _named < <(awk -F'\t' '/[^[:space:]]/ { n++; if (NF == 3) k++ }
      END { print n + 0, k + 0 }' "$wakeword_dev/clips.tsv")
  if (( _named > 0 && _named == _lines )); then
    wakeword_dev_spkmean=(--variant "--floor-db 50 --score-norm tnorm --phrase-score words --enrol tts --speaker-mean true")
  elif (( _named > 0 )); then
    echo "$0: $wakeword_dev/clips.tsv names the speaker (a third column) on $_named of its" \
         "$_lines lines; stage 8 scores the speaker mean only when every line names one" >&2
  fi
  unset _lines _named
fi
