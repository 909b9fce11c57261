"""How sure stage 9's figures are: bootstrap intervals for FRR at an FA/h target, one run's or
the difference of two runs' on the same streams.

At 1 FA/h over 0.74 h of background and six keywords, a stream's threshold is set by about four
false alarms, and a hit of 300 real occurrences moves FRR by a third of a point: two models, or
two seeds of one, can differ by ten points by chance. The stream is cut into blocks, one per
background utterance with the pause and the occurrences after it (``build_stream``); a draw
resamples the blocks with replacement, and FRR at each target is read off the draw's own sweep
(the lowest threshold before its FA/h first exceeds the target, as ``operating_points`` does):

    FA/h_b(t) = sum_j c_bj FA_j(t) / (K sum_j c_bj h_j),
    FRR_b(t)  = 1 - sum_o c_b,j(o) hit_o(t) / sum_o c_b,j(o)

with c_bj the times block j is drawn in draw b, FA_j(t) its false alarms at threshold t, h_j its
background hours, and hit_o(t) whether occurrence o (in block j(o)) is hit. The interval is the
2.5 and 97.5 percentiles over ``DRAWS`` draws (seeded). Two runs on the same streams take the
same draws (a paired bootstrap), so their difference's interval leaves out what the streams'
draw shares.

    python -m pyadml.spot.bootstrap exp/<a>/continuous exp/<b>/continuous [--set real]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DRAWS = 1000
SEED = 0


class BootstrapError(ValueError):
    pass


def block_of(times: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index of the block each time falls in (the last block starting at or before it; times
    before the first block belong to it)."""
    return np.maximum(np.searchsorted(starts, times, side="right") - 1, 0)


def draw_counts(num_blocks: int, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """(draws, num_blocks): how often each block is drawn in each resample of ``num_blocks``."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num_blocks, size=(draws, num_blocks))
    out = np.zeros((draws, num_blocks), np.float64)
    np.add.at(out, (np.repeat(np.arange(draws), num_blocks), picks.ravel()), 1.0)
    return out


def frr_draws(hits: np.ndarray, fa: np.ndarray, occ_block: np.ndarray, block_hours: np.ndarray,
              num_keywords: int, counts: np.ndarray, targets) -> np.ndarray:
    """(draws, targets) FRR of each draw at each FA/h target (module docstring). ``hits``: (T,
    occurrences) and ``fa``: (T, blocks) from ``sweep_counts``, thresholds descending."""
    fah = (counts @ fa.T.astype(np.float64)) / np.maximum(
        counts @ block_hours * num_keywords, 1e-12)[:, None]
    w = counts[:, occ_block]
    miss = 1.0 - (w @ hits.T.astype(np.float64)) / np.maximum(w.sum(axis=1), 1e-12)[:, None]
    out = np.empty((counts.shape[0], len(targets)))
    rows = np.arange(counts.shape[0])
    for k, target in enumerate(targets):
        over = fah > target
        first = np.where(over.any(axis=1), over.argmax(axis=1), fah.shape[1])
        out[:, k] = miss[rows, first - 1]
    return out


def interval(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


class StreamRun:
    """One run's sweep on a stream, by block: what ``frr_draws`` needs."""

    def __init__(self, peaks, truth, blocks, refractory, num_keywords: int):
        from .evaluate import sweep_counts

        blocks = np.asarray(blocks, dtype=np.float64).reshape(-1, 2)
        if blocks.shape[0] == 0:
            raise BootstrapError("a stream without background blocks")
        starts = blocks[:, 0]
        mids = np.array([(d.start + d.end) / 2 for d in peaks])
        self.thr, self.hits, self.fa = sweep_counts(
            peaks, truth, refractory, block_of(mids, starts) if len(peaks) else None, len(starts))
        self.occ_block = block_of(np.array([o.start for o in truth]), starts)
        self.block_hours = blocks[:, 1] / 3600
        self.num_keywords = int(num_keywords)

    def curve(self):
        """``sweep``'s (thresholds, miss rate, FA/h per keyword) of the whole stream."""
        from .evaluate import rates

        return (self.thr, *rates(self.hits, self.fa, self.block_hours.sum(), self.num_keywords))

    def frr(self, counts: np.ndarray, targets) -> np.ndarray:
        return frr_draws(self.hits, self.fa, self.occ_block, self.block_hours, self.num_keywords,
                         counts, targets)


def intervals(run: StreamRun, targets, draws: int = DRAWS, seed: int = SEED) -> list[tuple]:
    """95% interval of FRR at each target."""
    f = run.frr(draw_counts(run.block_hours.size, draws, seed), targets)
    return [interval(f[:, k]) for k in range(len(targets))]


def read_run(run_dir, name: str) -> tuple[StreamRun, dict]:
    """A stage-9 directory's stream ``name`` (peaks_, truth_, blocks_<name>.tsv, metrics.json)."""
    from .evaluate import Occurrence
    from .spotter import Detection

    d = Path(run_dir)
    try:
        report = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        rows = {}
        for kind in ("peaks", "truth", "blocks"):
            path = d / f"{kind}_{name}.tsv"
            rows[kind] = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
                          if line.strip()]
    except FileNotFoundError as e:
        raise BootstrapError(f"{run_dir}: no {Path(e.filename).name} (a stage 9 directory of "
                             f"this version writes blocks_{name}.tsv beside its peaks)") from None
    try:
        peaks = [Detection(k, float(a), float(b), float(s), float(e)) for k, a, b, s, e in rows["peaks"]]
        truth = [Occurrence(k, float(a), float(b), name) for k, a, b in rows["truth"]]
        blocks = [(float(a), float(h)) for a, h in rows["blocks"]]
    except ValueError as e:
        raise BootstrapError(f"{run_dir}: bad line in peaks_, truth_ or blocks_{name}.tsv: {e}") from None
    return StreamRun(peaks, truth, blocks, report["refractory_s"], len(report["keywords"])), report


def compare(dir_a, dir_b, name: str, targets, draws: int = DRAWS, seed: int = SEED) -> list[dict]:
    """Each target's FRR of run a and b on the same stream, b - a, its paired 95% interval and
    the share of draws where b misses less."""
    a, rep_a = read_run(dir_a, name)
    b, rep_b = read_run(dir_b, name)
    if not np.array_equal(a.occ_block, b.occ_block) or not np.allclose(a.block_hours, b.block_hours):
        raise BootstrapError(f"{dir_a} and {dir_b}: the {name} streams differ (their truth or "
                             "blocks files); a paired comparison needs the same stream")
    counts = draw_counts(a.block_hours.size, draws, seed)
    fa_, fb_ = a.frr(counts, targets), b.frr(counts, targets)
    one = np.ones((1, a.block_hours.size))
    pa, pb = a.frr(one, targets)[0], b.frr(one, targets)[0]
    return [{"fa_per_hour": t, "frr_a": float(pa[k]), "frr_b": float(pb[k]),
             "diff": float(pb[k] - pa[k]), "diff_ci95": interval(fb_[:, k] - fa_[:, k]),
             "b_better": float(np.mean(fb_[:, k] < fa_[:, k]))} for k, t in enumerate(targets)]


def main(argv=None) -> int:
    from .evaluate import TARGETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", help="stage 9 output directory (exp/<tag>/continuous)")
    p.add_argument("run_b", help="another, on the same streams")
    p.add_argument("--set", default=None, help="stream name (default: each the two share)")
    p.add_argument("--draws", type=int, default=DRAWS)
    args = p.parse_args(argv)
    try:
        if args.draws < 2:
            raise BootstrapError(f"--draws must be >= 2, got {args.draws}")
        names = [args.set] if args.set else sorted(
            {f.name[len("blocks_"):-4] for f in Path(args.run_a).glob("blocks_*.tsv")}
            & {f.name[len("blocks_"):-4] for f in Path(args.run_b).glob("blocks_*.tsv")})
        if not names:
            raise BootstrapError(f"{args.run_a} and {args.run_b} share no stream with a "
                                 "blocks_<set>.tsv (rerun stage 9 with this version)")
        print("| set | FA/h | FRR a | FRR b | b - a (95% interval) | draws where b misses less |")
        print("|---|---|---|---|---|---|")
        for name in names:
            for r in compare(args.run_a, args.run_b, name, TARGETS, args.draws):
                lo, hi = r["diff_ci95"]
                print(f"| {name} | {r['fa_per_hour']:g} | {100 * r['frr_a']:.1f}% | "
                      f"{100 * r['frr_b']:.1f}% | {100 * r['diff']:+.1f} ({100 * lo:+.1f} to "
                      f"{100 * hi:+.1f}) | {100 * r['b_better']:.0f}% |")
    except BootstrapError as e:
        print(f"bootstrap: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
