#!/usr/bin/env bash
# A lang directory (lexicon, phone table, G2P options) by offline G2P (CMUdict, then g2p_en's neural model) for every word
# of the given Kaldi text files.
#   steps/make_lang.sh [--strip-stress false] [--word-boundary ""] <text> [<text> ...] <lang-dir>
set -euo pipefail
strip_stress=false
word_boundary=
help_message="Usage: $0 [--strip-stress true|false] [--word-boundary TOKEN] <text>... <lang-dir>"
. utils/parse_options.sh
[ $# -ge 2 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
lang=${*: -1}
args=()
for f in "${@:1:$#-1}"; do args+=(--text "$f"); done
$strip_stress && args+=(--strip-stress)
[ -z "$word_boundary" ] || args+=(--word-boundary "$word_boundary")
python -m pyadml.bin.make_lexicon "${args[@]}" --out-dir "$lang"
