# shellcheck shell=bash
# Sourced by the recipes' run.sh: sets wakeword_dev, the real recordings that stage 8 (and
# stage 9 where there is one) measure on, never trained on. db.sh's WAKEWORD_DEV when it is
# set, which must then hold clips.tsv (checked before any stage runs, so a wrong path stops the
# run at once, not after training); else the development set beside the toolkit
# ($PYADML_ROOT/../shared/data/wakeword_dev) when it is there; else empty, not scored.
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
