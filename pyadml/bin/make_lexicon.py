"""Write a lang directory (Kaldi lexicon.txt and phones.txt, and g2p.yaml with the G2P options)
for every word in Kaldi text files or keyword lists; pyadml.text.Tokenizer reads it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyadml.text import G2P, KeywordError, PhoneTable, Tokenizer


def read_texts(kaldi_texts, keyword_lists) -> list[str]:
    texts = []
    for path in kaldi_texts:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise KeywordError(f"{path}:{n}: expected '<utt-id> <words>', got {line!r}")
            texts.append((f"{path}:{n}", parts[1]))
    for path in keyword_lists:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                raise KeywordError(f"{path}:{n}: empty keyword")
            texts.append((f"{path}:{n}", line.strip()))
    return texts


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
    g2p = G2P(strip_stress=args.strip_stress, word_boundary=args.word_boundary)
    lexicon: dict[str, list[str]] = {}
    try:
        for where, text in read_texts(args.text, args.keywords):
            try:
                for w in g2p.words(text):
                    if w not in lexicon:
                        lexicon[w] = g2p.word(w)
            except KeywordError as e:
                raise KeywordError(f"{where}: {e}") from None
    except KeywordError as e:
        print(f"make_lexicon: {e}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    Tokenizer(PhoneTable(g2p.inventory), lexicon,
              {"strip_stress": args.strip_stress, "word_boundary": args.word_boundary}).write_lang_dir(out)
    oov = sum(1 for w in lexicon if not g2p.in_dictionary(w))
    print(f"make_lexicon: {len(lexicon)} words ({oov} from the neural G2P), "
          f"{len(g2p.inventory)} phones -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
