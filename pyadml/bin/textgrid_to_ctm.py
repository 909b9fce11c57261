"""Montreal Forced Aligner TextGrids as the word CTM that stage 1 reads beside a Kaldi data
directory (``prepare kaldi <dir> --ctm <ctm>``, or ``data/words.ctm`` of a King-ASR-066-style
corpus): one ``<utterance>.TextGrid`` per utterance anywhere under a directory (MFA writes
``<out>/<speaker>/<utterance>.TextGrid``), its word tier (``words`` or ``<speaker> - words``)
as ``<utterance> 1 <start> <duration> <word>`` lines.

Empty intervals and silence marks are gaps, not words, and are left out; unknown-word marks
(``<unk>``, ``spn``) are kept in their place, and stage 1 lets them stand for the text's word
there. ``--text``: the Kaldi text file the CTM is for; an utterance it does not name is an error,
and the utterances with no TextGrid (MFA could not align them) are counted.

  python -m pyadml.bin.textgrid_to_ctm aligned/ data/words.ctm --text data/text
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyadml.data.prepare.common import SILENCE_MARKS, CorpusError, _kaldi_table
from pyadml.data.prepare.librispeech import textgrid_words
from pyadml.fileio import write_lines_atomic


def textgrid_ctm_lines(textgrid_dir: Path,
                       utterances: set[str] | None = None) -> tuple[list[str], int]:
    """The CTM lines of every TextGrid under ``textgrid_dir`` (sorted by utterance, then time)
    and the number of TextGrids; CorpusError for two TextGrids of one utterance, none at all,
    or one for an utterance outside ``utterances``."""
    found: dict[str, Path] = {}
    for path in sorted(p for p in textgrid_dir.rglob("*") if p.suffix.lower() == ".textgrid"):
        utt = path.stem
        if utt in found:
            raise CorpusError(f"{path}: a second TextGrid of utterance {utt} "
                              f"(the first: {found[utt]})")
        if utterances is not None and utt not in utterances:
            raise CorpusError(f"{path}: utterance {utt} is not in the text file (a TextGrid is "
                              f"named after its utterance id)")
        found[utt] = path
    if not found:
        raise CorpusError(f"{textgrid_dir}: no .TextGrid files under it")
    lines = []
    for utt in sorted(found):
        for it in textgrid_words(found[utt]):
            if it.symbol.lower() in SILENCE_MARKS or not it.symbol.split():
                continue
            if len(it.symbol.split()) != 1:
                raise CorpusError(f"{found[utt]}: word interval at {it.start:.3f} s holds "
                                  f"{it.symbol!r}: a CTM word is one token")
            lines.append(f"{utt} 1 {it.start:.3f} {it.duration:.3f} {it.symbol}")
    return lines, len(found)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("textgrid_dir", help="directory holding <utterance>.TextGrid files (any depth)")
    p.add_argument("ctm", help="the CTM to write (atomically)")
    p.add_argument("--text", help="Kaldi text file: check the TextGrids' utterance ids against it")
    args = p.parse_args(argv)
    tg_dir = Path(args.textgrid_dir)
    if not tg_dir.is_dir():
        p.error(f"no such directory: {tg_dir}")
    try:
        utts = set(_kaldi_table(Path(args.text), rest=True)) if args.text else None
        lines, n = textgrid_ctm_lines(tg_dir, utts)
    except (CorpusError, OSError) as e:
        print(f"textgrid_to_ctm: {e}", file=sys.stderr)
        return 1
    write_lines_atomic(args.ctm, lines)
    missing = f"; {len(utts) - n} utterances of {args.text} have none" if utts is not None else ""
    print(f"textgrid_to_ctm: {n} TextGrids, {len(lines)} words -> {args.ctm}{missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
