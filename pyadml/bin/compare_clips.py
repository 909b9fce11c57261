"""Two scorings of the same keyword clips side by side (pyadml.score.clips.paired_intervals):
AP, EER, AUC and top-1 of each, b - a with its 95% interval over resamples of the clips, and
the share of draws where b is better. The runs' scores.tsv, as score_clips writes them (stage
8: exp/<tag>/results/wakeword_dev*/scores.tsv), from two models or two back-ends of one.

    python -m pyadml.bin.compare_clips exp/<a>/results/wakeword_dev exp/<b>/results/wakeword_dev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from pyadml.score.clips import INTERVAL_DRAWS, paired_intervals, read_scores
    from pyadml.score.pairs import PairsError

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="scores.tsv, or the directory holding it")
    p.add_argument("b", help="the other run's, on the same clips")
    p.add_argument("--draws", type=int, default=INTERVAL_DRAWS)
    args = p.parse_args(argv)
    try:
        if args.draws < 2:
            raise PairsError(f"--draws must be >= 2, got {args.draws}")
        paths = [Path(x) / "scores.tsv" if Path(x).is_dir() else Path(x) for x in (args.a, args.b)]
        for path in paths:
            if not path.is_file():
                raise PairsError(f"no such scores file: {path}")
        (keys_a, lab_a, sc_a), (keys_b, lab_b, sc_b) = (read_scores(x) for x in paths)
        if keys_a != keys_b or not np.array_equal(lab_a, lab_b):
            first = next((i for i, (x, y) in enumerate(zip(keys_a, keys_b)) if x != y),
                         min(len(keys_a), len(keys_b)))
            raise PairsError(f"{paths[0]} and {paths[1]} score other clips or keywords (first "
                             f"difference at line {first + 1}); compare runs on the same clips")
    except PairsError as e:
        print(f"compare_clips: {e}", file=sys.stderr)
        return 1
    res = paired_intervals(sc_a, sc_b, lab_a, draws=args.draws)
    print(f"{lab_a.shape[0]} clips x {lab_a.shape[1]} keywords; a: {paths[0]}; b: {paths[1]}")
    print("| metric | a | b | b - a (95% interval) | draws where b is better |")
    print("|---|---|---|---|---|")
    for k, name in (("AP", "AP"), ("EER", "EER"), ("AUC", "AUC"), ("top1", "top-1")):
        r = res[k]
        lo, hi = r["diff_ci95"]
        print(f"| {name} | {100 * r['a']:.2f}% | {100 * r['b']:.2f}% | {100 * r['diff']:+.2f} "
              f"({100 * lo:+.2f} to {100 * hi:+.2f}) | {100 * r['b_better']:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
