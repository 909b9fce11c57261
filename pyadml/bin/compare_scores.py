"""Two scorings of the same trials side by side (pyadml.score.compare): AP, EER and AUC of each
(top-1 too for keyword clips), b - a with its 95% interval over resamples of the recordings,
and the share of draws where b is better. The inputs are the runs' scores.tsv (or the
directories holding them): score_clips' (stage 8: exp/<tag>/results/wakeword_dev*) or a stage 8
trial list's (exp/<tag>/results*/<list>), from two models or two back-ends of one.

    python -m pyadml.bin.compare_scores exp/<a>/results/wakeword_dev exp/<b>/results/wakeword_dev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from pyadml.score.compare import DRAWS, paired, read_scores
    from pyadml.score.pairs import PairsError

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="scores.tsv, or the directory holding it")
    p.add_argument("b", help="the other run's, on the same trials")
    p.add_argument("--draws", type=int, default=DRAWS)
    args = p.parse_args(argv)
    paths = [Path(x) / "scores.tsv" if Path(x).is_dir() else Path(x) for x in (args.a, args.b)]
    try:
        if args.draws < 2:
            raise PairsError(f"--draws must be >= 2, got {args.draws}")
        for path in paths:
            if not path.is_file():
                raise PairsError(f"no such scores file: {path}")
        a, b = (read_scores(x) for x in paths)
        res = paired(a, b, draws=args.draws)
    except PairsError as e:
        print(f"compare_scores: {e}", file=sys.stderr)
        return 1
    print(f"{len(a.keys)} trials of {a.units} recordings; a: {paths[0]}; b: {paths[1]}")
    print("| metric | a | b | b - a (95% interval) | draws where b is better |")
    print("|---|---|---|---|---|")
    for k, r in res.items():
        lo, hi = r["diff_ci95"]
        print(f"| {'top-1' if k == 'top1' else k} | {100 * r['a']:.2f}% | {100 * r['b']:.2f}% | "
              f"{100 * r['diff']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f}) | "
              f"{100 * r['b_better']:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
