"""Stage 1: write the lhotse manifests of one corpus and print what they hold.

    python -m pyadml.bin.prepare_manifests <corpus> <corpus_dir> <output_dir> [--ctm P] [--part N]
"""

from __future__ import annotations

import argparse
import sys

from pyadml.data.prepare import (
    CorpusError,
    prepare_king_asr_066,
    prepare_libriphrase,
    prepare_musan,
    prepare_rir_noise,
    prepare_wsj,
)

CORPORA = ("king_asr_066", "wsj", "libriphrase", "musan", "rirs_noises")


def _summary(name: str, manifests: dict) -> str:
    recs = manifests["recordings"]
    parts = [f"{len(recs)} recordings", f"{sum(r.duration for r in recs) / 3600:.3f} h"]
    sups = manifests.get("supervisions")
    if sups is not None:
        parts.insert(1, f"{len(sups)} supervisions")
        words = sum(len(s.alignment["word"]) for s in sups if s.alignment and "word" in s.alignment)
        if words:
            parts.append(f"{words} aligned words")
    if "rows" in manifests:
        parts.append(f"{len(manifests['rows'])} csv rows")
    return f"{name}: " + ", ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=CORPORA)
    p.add_argument("corpus_dir")
    p.add_argument("output_dir")
    p.add_argument("--ctm", default=None, help="word CTM (WSJ only; default <corpus_dir>/data/words.ctm)")
    p.add_argument("--part", default=None, help="part name in the manifest file names (WSJ, LibriPhrase)")
    args = p.parse_args(argv)
    if args.ctm is not None and args.corpus != "wsj":
        p.error("--ctm applies to wsj only (the other corpora have fixed layouts)")
    if args.part is not None and args.corpus not in ("wsj", "libriphrase"):
        p.error("--part applies to wsj and libriphrase only")
    part = args.part or "test"
    try:
        if args.corpus == "king_asr_066":
            lines = [_summary("king_asr_066 train", prepare_king_asr_066(args.corpus_dir, args.output_dir))]
        elif args.corpus == "wsj":
            m = prepare_wsj(args.corpus_dir, args.output_dir, ctm=args.ctm, part=part)
            lines = [_summary(f"wsj {part}", m)]
        elif args.corpus == "libriphrase":
            m = prepare_libriphrase(args.corpus_dir, args.output_dir, part=part)
            lines = [_summary(f"libriphrase {part}", m)]
        elif args.corpus == "musan":
            m = prepare_musan(args.corpus_dir, args.output_dir)
            lines = [_summary(f"musan {k}", v) for k, v in m.items()]
        else:
            m = prepare_rir_noise(args.corpus_dir, args.output_dir)
            lines = [_summary(f"rir {k}", v) for k, v in m.items()]
    except CorpusError as e:
        print(f"prepare_manifests: {e}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"prepare_manifests: manifests in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
