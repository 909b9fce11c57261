"""Bootstrap intervals of stage 9's FRR (pyadml.spot.bootstrap): each draw's FRR against the
sweep of a stream rebuilt from the drawn blocks, a hand-worked draw, and the paired comparison."""

import json

import numpy as np
import pytest

from pyadml.spot import Detection
from pyadml.spot.bootstrap import (BootstrapError, StreamRun, block_of, compare, draw_counts,
                                   interval, intervals, main)
from pyadml.spot.evaluate import TARGETS, Occurrence, operating_points, sweep

REFRACTORY = {"a": 1.0, "b": 1.0}
BLOCK_S = 20.0  # block starts: its peaks in the first 12 s, maybe an occurrence after
BLOCK_HOURS = 0.25  # background hours a block counts for: FA/h near stage 9's targets


def random_stream(seed: int, num_blocks: int = 40):
    """Peaks and occurrences in blocks BLOCK_S apart; no refractory time reaches a neighbour.
    Each block counts BLOCK_HOURS of background."""
    rng = np.random.default_rng(seed)
    peaks, truth, blocks = [], [], []
    for j in range(num_blocks):
        t0 = j * BLOCK_S
        blocks.append((t0, 3600 * BLOCK_HOURS))
        for _ in range(rng.integers(0, 6)):  # background peaks, 1.5 s apart at least
            s = t0 + 1.5 * rng.integers(0, 8)
            peaks.append(Detection(str(rng.choice(["a", "b"])), s, s + 0.7,
                                   round(float(rng.uniform(0, 0.8)), 4), s + 0.8))
        if rng.random() < 0.6:
            kw = str(rng.choice(["a", "b"]))
            o = Occurrence(kw, t0 + 14.0, t0 + 14.6, "t")
            truth.append(o)
            for k in range(rng.integers(0, 3)):
                peaks.append(Detection(kw, o.start - 0.1 + 1.2 * k, o.start + 0.6 + 1.2 * k,
                                       round(float(rng.uniform(0.2, 1.0)), 4), o.end + 0.2))
    # every peak score distinct: ties would order a draw's peaks differently from the stream's
    scores = rng.permutation(len(peaks)) / len(peaks)
    peaks = [Detection(d.keyword, d.start, d.end, float(s), d.emitted) for d, s in zip(peaks, scores)]
    peaks.sort(key=lambda d: (d.start, d.keyword))
    return peaks, truth, np.array(blocks)


def rebuilt_frr(peaks, truth, blocks, counts_row):
    """The drawn blocks laid end to end as a stream of their own, swept as stage 9 sweeps."""
    starts = blocks[:, 0]
    pb = block_of(np.array([(d.start + d.end) / 2 for d in peaks]), starts)
    ob = block_of(np.array([o.start for o in truth]), starts)
    new_peaks, new_truth, hours, pos = [], [], 0.0, 0
    for j, c in enumerate(counts_row.astype(int)):
        for _ in range(c):
            shift = (pos - j) * BLOCK_S
            new_peaks += [Detection(d.keyword, d.start + shift, d.end + shift, d.score,
                                    d.emitted + shift) for d, b in zip(peaks, pb) if b == j]
            new_truth += [Occurrence(o.keyword, o.start + shift, o.end + shift, o.source)
                          for o, b in zip(truth, ob) if b == j]
            hours += blocks[j, 1] / 3600
            pos += 1
    new_peaks.sort(key=lambda d: (d.start, d.keyword))
    thr, miss, fah = sweep(new_peaks, new_truth, hours, 2, REFRACTORY)
    return [r["frr"] for r in operating_points(thr, miss, fah, new_peaks, new_truth, REFRACTORY)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_draw_is_the_sweep_of_the_stream_its_blocks_make(seed):
    peaks, truth, blocks = random_stream(seed)
    run = StreamRun(peaks, truth, blocks, REFRACTORY, 2)
    counts = draw_counts(len(blocks), draws=25, seed=seed)
    got = run.frr(counts, TARGETS)
    for b in range(counts.shape[0]):
        assert got[b] == pytest.approx(rebuilt_frr(peaks, truth, blocks, counts[b])), b
    # all blocks once: the stream's own figures
    thr, miss, fah = sweep(peaks, truth, blocks[:, 1].sum() / 3600, 2, REFRACTORY)
    own = [r["frr"] for r in operating_points(thr, miss, fah, peaks, truth, REFRACTORY)]
    assert run.frr(np.ones((1, len(blocks))), TARGETS)[0] == pytest.approx(own)
    assert np.allclose(run.curve()[1], miss) and np.allclose(run.curve()[2], fah)


def test_a_draw_worked_by_hand():
    """Block 0 (0.5 h): a false alarm of a at 0.6 and a hit of a at 0.9; block 1 (0.5 h): an
    occurrence of b found only at 0.3. One keyword's FA/h = false alarms / hours / 2 keywords."""
    peaks = [Detection("a", 1.0, 1.7, 0.6, 1.8), Detection("a", 5.0, 5.7, 0.9, 5.8),
             Detection("b", 100.0, 100.7, 0.3, 100.8)]
    truth = [Occurrence("a", 5.1, 5.6, "t"), Occurrence("b", 100.1, 100.6, "t")]
    run = StreamRun(peaks, truth, [(0.0, 1800.0), (50.0, 1800.0)], REFRACTORY, 2)
    # Both blocks: at 0.6 FA/h = 1 / (1 h x 2) = 0.5. Target 0.5: threshold 0.3 is allowed
    # (FA/h 0.5, not above), so both occurrences are hit: FRR 0. Target 0.4: 0.6 exceeds it,
    # the threshold stays at 0.9: b missed, FRR 1/2.
    # Block 0 twice: 2 FA in 1 h -> FA/h 1 at 0.6; both occurrences are a's, hit at 0.9: FRR 0.
    # Block 1 twice: no false alarm at all; the b occurrences hit at 0.3: FRR 0 at any target.
    counts = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    assert run.frr(counts, (0.5, 0.4)).tolist() == [[0.0, 0.5], [0.0, 0.0], [0.0, 0.0]]


def test_draw_counts_are_resamples_with_replacement():
    c = draw_counts(7, draws=500, seed=3)
    assert c.shape == (500, 7) and (c.sum(axis=1) == 7).all()
    assert c.mean() == pytest.approx(1.0) and 0 < c.std() < 2
    assert np.array_equal(c, draw_counts(7, draws=500, seed=3))
    assert block_of(np.array([-1.0, 0.0, 9.9, 10.0, 99.0]), np.array([0.0, 10.0])).tolist() == [0, 0, 0, 1, 1]
    assert interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0))


def write_run(d, peaks, truth, blocks, name="real"):
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"keywords": ["a", "b"], "refractory_s": REFRACTORY}))
    (d / f"peaks_{name}.tsv").write_text("".join(
        f"{p.keyword}\t{p.start:.2f}\t{p.end:.2f}\t{p.score:.4f}\t{p.emitted:.2f}\n" for p in peaks))
    (d / f"truth_{name}.tsv").write_text("".join(f"{o.keyword}\t{o.start:.3f}\t{o.end:.3f}\n" for o in truth))
    (d / f"blocks_{name}.tsv").write_text("".join(f"{a:.5f}\t{h:.5f}\n" for a, h in blocks))


def test_paired_comparison(tmp_path, capsys):
    peaks, truth, blocks = random_stream(4, num_blocks=60)
    write_run(tmp_path / "a", peaks, truth, blocks)
    # b: every hit's peak scores 0.3 higher (better at every threshold), false alarms as a's
    hit = [any(o.keyword == p.keyword and p.start < o.end and p.end > o.start for o in truth)
           for p in peaks]
    better = [Detection(p.keyword, p.start, p.end, p.score + 0.3 * h, p.emitted) for p, h in zip(peaks, hit)]
    write_run(tmp_path / "b", better, truth, blocks)
    same = compare(tmp_path / "a", tmp_path / "a", "real", (1.0,), draws=200)[0]
    assert same["diff"] == 0 and same["diff_ci95"] == (0.0, 0.0) and same["b_better"] == 0
    r = compare(tmp_path / "a", tmp_path / "b", "real", (1.0,), draws=200)[0]
    assert r["diff"] < 0 and r["diff_ci95"][1] <= 0 and r["b_better"] > 0.5
    # one run's interval holds its own figure
    run = StreamRun(peaks, truth, blocks, REFRACTORY, 2)
    (lo, hi), = intervals(run, (1.0,), draws=200)
    assert lo <= r["frr_a"] + 1e-9 and r["frr_a"] <= hi + 1e-9
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "| real | 0.5 |" in capsys.readouterr().out


def test_comparison_errors_name_the_file(tmp_path, capsys):
    peaks, truth, blocks = random_stream(5, num_blocks=10)
    write_run(tmp_path / "a", peaks, truth, blocks)
    write_run(tmp_path / "b", peaks, truth[1:], blocks)
    with pytest.raises(BootstrapError, match="streams differ"):
        compare(tmp_path / "a", tmp_path / "b", "real", (1.0,))
    (tmp_path / "a" / "blocks_real.tsv").unlink()
    with pytest.raises(BootstrapError, match="no blocks_real.tsv"):
        compare(tmp_path / "a", tmp_path / "b", "real", (1.0,))
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "share no stream" in capsys.readouterr().err
    (tmp_path / "b" / "peaks_real.tsv").write_text("a\t1.0\tx\t0.5\t1.1\n")
    with pytest.raises(BootstrapError, match="bad line"):
        compare(tmp_path / "b", tmp_path / "b", "real", (1.0,))
