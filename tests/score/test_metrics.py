import itertools

import numpy as np
import pytest

from pyadml.score import metrics as M

# Hand-worked case A (no ties), scores high to low with labels:
#   0.9:1  0.8:0  0.7:1  0.6:1  0.5:0  0.4:0      P = 3, N = 3
# AP: positives at ranks 1, 3, 4 -> precisions 1, 2/3, 3/4 -> (1 + 2/3 + 3/4) / 3 = 29/36.
# AUC: pos 0.9 beats 3 negatives, 0.7 and 0.6 beat 2 each -> 7 of 9 pairs.
# EER: ROC points (fpr, fnr): (0,1) (0,2/3) (1/3,2/3) (1/3,1/3) ... -> they meet at 1/3 exactly.
A = ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 0, 1, 1, 0, 0])

# Hand-worked case B (a tie between a positive and a negative):
#   0.9:1  0.5:1  0.5:0  0.1:0
# Thresholds 0.9, 0.5, 0.1 give (tp, fp) = (1, 0), (2, 1), (2, 2).
# AP = sum (R_k - R_{k-1}) P_k = 0.5 * 1 + 0.5 * 2/3 = 5/6.
# AUC: 0.9 beats both negatives (2), 0.5 vs 0.5 tie (0.5), 0.5 beats 0.1 (1) -> 3.5/4 = 0.875.
# EER: (fpr, fnr) goes (0, 0.5) -> (0.5, 0); the straight segment crosses fpr = fnr at 0.25.
B = ([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])

# Hand-worked case C (interpolation along a vertical ROC segment):
#   0.9:0  0.8:1  0.7:0  0.6:0        P = 1, N = 3
# (fpr, fnr): (0,1) (1/3,1) (1/3,0) ...; between the 2nd and 3rd point fpr stays 1/3 while fnr
# drops from 1 to 0, so they cross at 1/3. AP = precision at rank 2 = 1/2. AUC = 2/3.
C = ([0.9, 0.8, 0.7, 0.6], [0, 1, 0, 0])


@pytest.mark.parametrize("case, ap, auc, eer", [
    (A, 29 / 36, 7 / 9, 1 / 3),
    (B, 5 / 6, 0.875, 0.25),
    (C, 0.5, 2 / 3, 1 / 3),
])
def test_hand_worked_cases(case, ap, auc, eer):
    scores, labels = case
    assert M.average_precision(scores, labels) == pytest.approx(ap)
    assert M.auc(scores, labels) == pytest.approx(auc)
    assert M.eer(scores, labels) == pytest.approx(eer)


def test_roc_curve_of_case_b():
    fpr, tpr, thr = M.roc_curve(*B)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert thr[0] == np.inf and list(thr[1:]) == [0.9, 0.5, 0.1]


def test_extremes():
    s = np.arange(10.0)
    y = (s >= 5).astype(int)
    assert M.average_precision(s, y) == 1.0 and M.auc(s, y) == 1.0 and M.eer(s, y) == 0.0
    assert M.auc(-s, y) == 0.0 and M.eer(-s, y) == 1.0
    # All scores tied: one threshold, chance level everywhere; AP is the positive rate.
    flat = np.zeros(10)
    assert M.auc(flat, y) == 0.5 and M.eer(flat, y) == 0.5
    assert M.average_precision(flat, y) == pytest.approx(0.5)


def slow_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def slow_ap_no_ties(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    precisions, hits = [], 0
    for rank, i in enumerate(order, 1):
        if labels[i]:
            hits += 1
            precisions.append(hits / rank)
    return sum(precisions) / len(precisions)


def slow_ap_thresholds(scores, labels):
    npos, ap, prev_recall = sum(labels), 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        tp = sum(1 for s, y in zip(scores, labels) if s >= t and y)
        fp = sum(1 for s, y in zip(scores, labels) if s >= t and not y)
        ap += (tp / npos - prev_recall) * tp / (tp + fp)
        prev_recall = tp / npos
    return ap


def slow_eer(scores, labels):
    npos, nneg = sum(labels), len(labels) - sum(labels)
    pts = [(0.0, 1.0)]
    for t in sorted(set(scores), reverse=True):
        far = sum(1 for s, y in zip(scores, labels) if s >= t and not y) / nneg
        frr = sum(1 for s, y in zip(scores, labels) if s < t and y) / npos
        pts.append((far, frr))
    for (f0, r0), (f1, r1) in zip(pts, pts[1:]):
        if f1 - r1 >= 0 > f0 - r0:  # crossing inside this segment
            t = (r0 - f0) / ((f1 - r1) - (f0 - r0))
            return f0 + t * (f1 - f0)
        if f0 == r0:
            return f0
    raise AssertionError("no crossing")


@pytest.mark.parametrize("seed", range(6))
def test_against_slow_references(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    labels = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    labels[:2] = [0, 1]
    cont = rng.normal(size=n) + labels  # no ties
    tied = np.round(cont * 2) / 2  # many ties
    assert M.average_precision(cont, labels) == pytest.approx(slow_ap_no_ties(cont, labels))
    for s in (cont, tied):
        assert M.auc(s, labels) == pytest.approx(slow_auc(list(s), list(labels)))
        assert M.average_precision(s, labels) == pytest.approx(slow_ap_thresholds(list(s), list(labels)))
        assert M.eer(s, labels) == pytest.approx(slow_eer(list(s), list(labels)))


def test_auc_is_the_mann_whitney_statistic():
    # sklearn-free closed form: AUC = (R_pos - P (P + 1) / 2) / (P N) with mid-ranks for ties.
    from scipy.stats import rankdata
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + labels, 1)
    ranks = rankdata(scores)
    p, n = labels.sum(), (1 - labels).sum()
    expected = (ranks[labels == 1].sum() - p * (p + 1) / 2) / (p * n)
    assert M.auc(scores, labels) == pytest.approx(expected)


def test_metrics_ignore_input_order_even_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)
    perm = rng.permutation(300)
    for f in (M.average_precision, M.auc, M.eer):
        assert f(scores, labels) == pytest.approx(f(scores[perm], labels[perm]))


def test_eer_lies_between_far_and_frr_bounds():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    scores = rng.normal(size=400) + labels
    fpr, tpr, _ = M.roc_curve(scores, labels)
    fnr = 1 - tpr
    e = M.eer(scores, labels)
    assert np.min(np.maximum(fpr, fnr)) >= e - 1e-12
    assert e >= np.max(np.minimum(fpr, fnr)) - 1e-12


def test_batched_eer():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 5000)
    scores = rng.normal(size=5000) + 2 * labels
    # One batch holding everything is the global EER.
    assert M.batched_eer(scores, labels, batch_size=10_000) == pytest.approx(M.eer(scores, labels))
    # Otherwise: the mean over the same seeded shuffle, batch by batch.
    perm = np.random.default_rng(7).permutation(5000)
    chunks = [perm[i:i + 2048] for i in range(0, 5000, 2048)]
    expected = np.mean([M.eer(scores[c], labels[c]) for c in chunks])
    assert M.batched_eer(scores, labels, 2048, seed=7) == pytest.approx(expected)
    # Batches of one trial never hold both classes: all skipped.
    assert np.isnan(M.batched_eer(scores[:10], labels[:10], batch_size=1))
    # A one-class batch is skipped, not counted as 0: seed 0 gives batches [1,0] [0,0] [1,0].
    s, y = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.4]), np.array([1, 0, 0, 1, 0, 0])
    got = M.batched_eer(s, y, batch_size=2, seed=0)
    perm = np.random.default_rng(0).permutation(6)
    vals = [M.eer(s[perm[i:i + 2]], y[perm[i:i + 2]]) for i in (0, 2, 4)
            if 0 < y[perm[i:i + 2]].sum() < 2]
    assert len(vals) == 2
    assert got == pytest.approx(np.mean(vals))


def test_precision_recall_curve():
    precision, recall, thr = M.precision_recall_curve(*B)
    np.testing.assert_allclose(precision, [1, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 1, 1])
    np.testing.assert_allclose(thr, [0.9, 0.5, 0.1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="both positive and negative"):
        M.eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels"):
        M.auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        M.average_precision([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        M.auc([np.nan, 0.2], [0, 1])
