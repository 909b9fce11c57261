#!/usr/bin/env bash
# The real-speech wake-word development set, scored as egs/wsj_librikws scores it (the same
# options; see that script): found through $PYADML_ROOT (path.sh), so a copy of this recipe
# elsewhere still finds it.
exec "${PYADML_ROOT:?source path.sh first}/egs/wsj_librikws/local/score_wakeword_dev.sh" "$@"
