"""The AdaMS scales over a long run: Adam on alpha, beta, lambda alone, with the embeddings of one
small batch held fixed (so only the scales move), for 10^5 or more steps: about 30 s of CPU per
learning rate and parametrisation at 10^5 steps (the default, two of each: about 2 minutes).

The loss and its gradient are written out in numpy (AsyP, Eq. 2, with the bounded
parametrisation of ``pyadml.losses.phoneme._ClassScales``); tests/losses/test_adams_trajectory.py
checks both against the torch module and torch's AdamW. ``--param linear`` is the parametrisation
before issue 13 (the scales themselves, clamped below), for comparison.

    python -m pyadml.bin.adams_trajectory --lr 1e-4 --steps 100000
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

BOUNDS = {"alpha_min": 1e-3, "alpha_max": 1.0, "beta_min": 0.1, "beta_max": 50.0, "lam_bound": 1.0}


def fixed_batch(num_classes: int = 4, per_class: int = 6, dim: int = 16, noise: float = 0.8,
                seed: int = 0):
    """(text, audio, labels): audio rows are their text row plus noise, all unit vectors."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    centres = rng.standard_normal((num_classes, dim))
    text = centres[labels] + 0.3 * rng.standard_normal((len(labels), dim))
    audio = text + noise * rng.standard_normal(text.shape)
    return text, audio, labels


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


class Scales:
    """raw (3, C) -> alpha, beta, lam (C,) and d(scale)/d(raw), as in _ClassScales."""

    def __init__(self, param: str = "bounded", **bounds):
        self.param = param
        b = {**BOUNDS, **bounds}
        self.la = (math.log(b["alpha_min"]), math.log(b["alpha_max"]))
        self.lb = (math.log(b["beta_min"]), math.log(b["beta_max"]))
        self.lam_bound = b["lam_bound"]

    def init_raw(self, alpha0, beta0, lam0, C):
        if self.param == "linear":
            return np.array([[alpha0] * C, [beta0] * C, [lam0] * C], dtype=np.float64)

        def logit_of(v, lo_hi):
            f = (math.log(v) - lo_hi[0]) / (lo_hi[1] - lo_hi[0])
            return math.log(f / (1 - f))
        return np.array([[logit_of(alpha0, self.la)] * C, [logit_of(beta0, self.lb)] * C,
                         [math.atanh(lam0 / self.lam_bound)] * C])

    def __call__(self, raw):
        if self.param == "linear":
            return raw[0], raw[1], raw[2], np.ones_like(raw)
        out, jac = [], []
        for r, (lo, hi) in ((raw[0], self.la), (raw[1], self.lb)):
            s = _sigmoid(r)
            v = np.exp(lo + (hi - lo) * s)
            out.append(v)
            jac.append(v * (hi - lo) * s * (1 - s))
        t = np.tanh(raw[2])
        out.append(self.lam_bound * t)
        jac.append(self.lam_bound * (1 - t * t))
        return out[0], out[1], out[2], np.stack(jac)

    def clamp(self, raw):
        if self.param == "linear":  # the old clamp_(): alpha, beta >= 1e-4, |lam| <= 1
            raw[0] = np.maximum(raw[0], 1e-4)
            raw[1] = np.maximum(raw[1], 1e-4)
            raw[2] = np.clip(raw[2], -1.0, 1.0)
        return raw


def asyp_loss_and_grad(sim, labels, alpha, beta, lam):
    """AsyP (Eq. 2) on a fixed text x audio cosine matrix sim[i, j] = S(t_i, a_j), and its
    gradient in the per-class alpha, beta, lam (each (C,)): returns (loss, (3, C) gradient)."""
    n = len(labels)
    a, b, m = alpha[labels], beta[labels], lam[labels]
    same = labels[:, None] == labels[None, :]
    x = m[:, None] - sim                                  # lam_c - S(t_i, a_j)
    z = np.where(same, a[:, None] * x, -np.inf)
    zmax = np.maximum(z.max(axis=1), 0.0)
    e = np.exp(z - zmax[:, None])
    denom = np.exp(-zmax) + e.sum(axis=1)                # (1 + sum e^z) / e^zmax
    lse = zmax + np.log(denom)
    w = e / denom[:, None]                                # softmax weights of the positives
    pos = lse / a
    d_pos_a = -lse / a**2 + (w * np.where(same, x, 0.0)).sum(axis=1) / a
    d_pos_m = w.sum(axis=1)
    y = sim.T - m[:, None]                                # S(a_i, t_k) - lam_c
    neg_mask = ~same
    cnt = np.maximum(neg_mask.sum(axis=1), 1)
    u = b[:, None] * y
    sp = np.logaddexp(0.0, u)
    sg = _sigmoid(u)
    neg = (sp * neg_mask).sum(axis=1) / cnt
    d_neg_b = (sg * y * neg_mask).sum(axis=1) / cnt
    d_neg_m = -(b[:, None] * sg * neg_mask).sum(axis=1) / cnt
    C = len(alpha)
    grad = np.stack([np.bincount(labels, d_pos_a, C), np.bincount(labels, d_neg_b, C),
                     np.bincount(labels, d_pos_m + d_neg_m, C)]) / n
    return float((pos + neg).mean()), grad


def simulate(steps: int, lr: float, param: str = "bounded", record=(), alpha0=0.01, beta0=1.5,
             lam0=0.01, betas=(0.9, 0.999), eps=1e-8, batch=None, **bounds):
    """Adam (torch's AdamW update, no weight decay) on the raw scales for ``steps`` steps.
    Returns {step: (alpha, beta, lam, loss)} for each step in ``record`` (0 = the start)."""
    text, audio, labels = batch if batch is not None else fixed_batch()
    sim = _unit(text) @ _unit(audio).T
    C = int(labels.max()) + 1
    sc = Scales(param, **bounds)
    raw = sc.init_raw(alpha0, beta0, lam0, C)
    m1, m2 = np.zeros_like(raw), np.zeros_like(raw)
    b1, b2 = betas
    want = set(record)
    out = {}
    for t in range(steps + 1):
        alpha, beta, lam, jac = sc(raw)
        loss, g = asyp_loss_and_grad(sim, labels, alpha, beta, lam)
        if t in want:
            out[t] = (alpha.copy(), beta.copy(), lam.copy(), loss)
        if t == steps:
            break
        g = g * jac
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        k = t + 1
        raw = raw - lr * (m1 / (1 - b1**k)) / (np.sqrt(m2 / (1 - b2**k)) + eps)
        raw = sc.clamp(raw)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100_000, help="Adam steps (default 100000)")
    p.add_argument("--lr", type=float, nargs="+", default=[1e-4, 2e-3],
                   help="learning rates, one trajectory each (default 1e-4 2e-3)")
    p.add_argument("--param", choices=("bounded", "linear", "both"), default="both",
                   help="parametrisation of the scales (default both)")
    args = p.parse_args(argv)
    marks = [0] + [10**k for k in range(2, 12) if 10**k <= args.steps]
    params = ("bounded", "linear") if args.param == "both" else (args.param,)
    print(f"AdaMS scales, Adam on a fixed batch (4 classes x 6 rows); bounds {BOUNDS}")
    print("| param | lr | step | alpha mean (min-max) | beta mean (min-max) | lambda mean (min-max) | loss |")
    print("|---|---|---|---|---|---|---|")
    for param in params:
        for lr in args.lr:
            for step, (a, b, m, loss) in simulate(args.steps, lr, param, marks).items():
                print(f"| {param} | {lr:g} | {step:,} | {a.mean():.4g} ({a.min():.4g}-{a.max():.4g}) | "
                      f"{b.mean():.4g} ({b.min():.4g}-{b.max():.4g}) | "
                      f"{m.mean():.4g} ({m.min():.4g}-{m.max():.4g}) | {loss:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
