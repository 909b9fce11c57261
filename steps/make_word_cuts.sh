#!/usr/bin/env bash
# Word cuts of a training set (its dev part held out by whole utterances) and of test sets,
# the training keyword ids, and the lang directory (lexicon.txt, phones.txt, g2p.yaml).
# CTM tokens that are not words (noise markers, <unk>, verbal punctuation, partial words: the
# patterns in the config's word_cuts.drop) are dropped and counted in <cuts-dir>/report.json.
#   steps/make_word_cuts.sh [--data-config conf/data.yaml] [--dev-set NAME] \
#       <manifest-dir> <cuts-dir> <lang-dir> <train-set> [<test-set>:<words|pairs> ...]
set -euo pipefail
data_config=conf/data.yaml   # not "config": --config is the option parser's own
dev_set=
help_message="Usage: $0 [--data-config conf/data.yaml] [--dev-set NAME] <manifest-dir> <cuts-dir> <lang-dir> <train-set> [<set>:<protocol> ...]"
. utils/parse_options.sh
[ $# -ge 4 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
python -m pyadml.bin.make_word_cuts --config "$data_config" --dev-set "$dev_set" "$@"
