"""Stage 4 helpers for steps/make_fbank.sh: split a cut manifest, compute fbank, merge parts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyadml.data.features import compute_fbank, merge_cuts, split_cuts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="split cuts into N contiguous parts")
    s.add_argument("--interleave", action="store_true",
                   help="cut k to part k mod N (an even share of every stretch of the manifest)")
    s.add_argument("cuts")
    s.add_argument("num_splits", type=int)
    s.add_argument("out_dir")
    c = sub.add_parser("compute", help="compute and store fbank for one part")
    c.add_argument("--config", default=None, help="conf/fbank.yaml")
    c.add_argument("--skip-existing", action="store_true",
                   help="do nothing if OUT exists (it is written last, so it marks a finished "
                        "part; steps/make_fbank.sh removes parts whose inputs changed)")
    c.add_argument("cuts")
    c.add_argument("storage", help="lilcom archive path (without extension); written under a "
                   "temporary name and renamed into place before OUT")
    c.add_argument("out")
    m = sub.add_parser("merge", help="merge parts in the order given")
    m.add_argument("--interleave", action="store_true",
                   help="one cut of each part in turn: the inverse of split --interleave")
    m.add_argument("out")
    m.add_argument("parts", nargs="+")
    args = p.parse_args(argv)

    if args.cmd == "split":
        paths = split_cuts(args.cuts, args.num_splits, args.out_dir, args.interleave)
        how = "interleaved" if args.interleave else "contiguous"
        print(f"split {args.cuts} into {len(paths)} {how} parts under {args.out_dir}")
    elif args.cmd == "compute" and args.skip_existing and Path(args.out).is_file():
        print(f"fbank: {args.out} exists, skipping")
    elif args.cmd == "compute":
        t0 = time.time()
        cuts = compute_fbank(args.cuts, args.storage, args.out, args.config)
        audio = sum(c.duration for c in cuts)
        took = time.time() - t0
        print(f"fbank: {len(cuts)} cuts, {audio / 3600:.3f} h of audio in {took:.1f} s "
              f"({audio / max(took, 1e-9):.0f}x real time)")
    else:
        try:
            n = merge_cuts(args.parts, args.out, args.interleave)
        except ValueError as e:
            print(f"fbank merge: {e}", file=sys.stderr)
            return 1
        print(f"merged {len(args.parts)} parts: {n} cuts -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
