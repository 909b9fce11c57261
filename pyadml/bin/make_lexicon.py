"""Write a lang directory (Kaldi lexicon.txt and phones.txt, and g2p.yaml with the G2P options)
for every word in Kaldi text files or keyword lists; pyadml.text.Tokenizer reads it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyadml.text import KeywordError, Tokenizer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--text", action="append", default=[], help="Kaldi text file (repeatable)")
    p.add_argument("--keywords", action="append", default=[],
                   help="one keyword or phrase per line (repeatable)")
    p.add_argument("--strip-stress", action="store_true", help="39 phonemes instead of 69 units")
    p.add_argument("--word-boundary", default=None, help="token between words, e.g. '<wb>'")
    p.add_argument("--out-dir", required=True, help="lexicon.txt, phones.txt and g2p.yaml go here")
    args = p.parse_args(argv)
    if not args.text and not args.keywords:
        p.error("give at least one --text or --keywords file")
    for path in args.text + args.keywords:
        if not Path(path).is_file():
            p.error(f"no such file: {path}")
    options = {"strip_stress": args.strip_stress, "word_boundary": args.word_boundary}
    try:
        tokenizer = Tokenizer.build_from_files(args.text, args.keywords, options)
    except KeywordError as e:
        print(f"make_lexicon: {e}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    tokenizer.write_lang_dir(out)
    oov = sum(1 for w in tokenizer.lexicon if not tokenizer.g2p.in_dictionary(w))
    print(f"make_lexicon: {len(tokenizer.lexicon)} words ({oov} from the neural G2P), "
          f"{len(tokenizer.phone_table) - 1} phones -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
