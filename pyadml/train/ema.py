"""Exponential moving averages of the training weights (Polyak averaging; ``ema.decays``).

After every optimiser step each average moves towards the live weights:

    shadow_t = d_t * shadow_{t-1} + (1 - d_t) * theta_t,   d_t = min(d, (1 + t) / (10 + t))

(t: updates so far; the ramp keeps the first updates from being dominated by the random
initialisation, as TensorFlow's ExponentialMovingAverage with num_updates does). Every
floating entry of the objective's state_dict is averaged, the BN running statistics with the
weights; integer entries (BN's num_batches_tracked) are the live ones. The averages are a
shadow of the run: they never feed back into training, so a run with and without them follows
the same trajectory, and one run measures the last weights against their averages.
"""

from __future__ import annotations

import torch
from torch import nn


class EmaError(ValueError):
    pass


def check_decays(decays) -> list[float]:
    out = []
    for d in decays or []:
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 < float(d) < 1.0:
            raise EmaError(f"ema.decays: each decay must be a number in (0, 1), got {d!r}")
        out.append(float(d))
    if len(set(out)) != len(out):
        raise EmaError(f"ema.decays: a decay is listed twice: {out}")
    return out


def ema_name(decay: float) -> str:
    """How an average is named in logs, metrics and final.pt's meta: ``ema0.995``."""
    return f"ema{decay:g}"


class WeightAverages:
    """One shadow state per decay of ``decays`` for ``module``'s floating state entries."""

    def __init__(self, module: nn.Module, decays):
        self.module = module
        self.decays = check_decays(decays)
        self.updates = [0 for _ in self.decays]  # per average: one may start later (resume)
        self.shadows = [self._live() for _ in self.decays]

    def _live(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()
                if v.is_floating_point()}

    def __bool__(self) -> bool:
        return bool(self.decays)

    @torch.no_grad()
    def update(self) -> None:
        if not self.decays:
            return
        live = self.module.state_dict()
        keys = list(self.shadows[0])
        cur = [live[k].detach() for k in keys]
        for i, (decay, shadow) in enumerate(zip(self.decays, self.shadows)):
            t = self.updates[i]
            torch._foreach_lerp_([shadow[k] for k in keys], cur, 1.0 - min(decay, (1 + t) / (10 + t)))
            self.updates[i] += 1

    def averaged_state(self, i: int) -> dict[str, torch.Tensor]:
        """The module's state_dict with the floating entries of average ``i``."""
        state = dict(self.module.state_dict())
        state.update(self.shadows[i])
        return state

    def state_dict(self) -> dict:
        return {"decays": list(self.decays), "updates": list(self.updates),
                "shadows": [{k: v.detach().cpu().clone() for k, v in s.items()} for s in self.shadows]}

    def load_state_dict(self, state: dict | None) -> list[float]:
        """Restore the averages of a checkpoint; a decay the checkpoint lacks starts afresh from
        the live weights (its count of updates restarts with it). Returns those decays."""
        state = state or {}
        saved = {d: (s, n) for d, s, n in zip(state.get("decays", []), state.get("shadows", []),
                                              state.get("updates", []))}
        fresh = []
        for i, d in enumerate(self.decays):
            if d in saved:
                device = next(iter(self.shadows[i].values())).device
                self.shadows[i] = {k: v.to(device) for k, v in saved[d][0].items()}
                self.updates[i] = int(saved[d][1])
            else:
                self.shadows[i], self.updates[i] = self._live(), 0
                fresh.append(d)
        return fresh


def shadow_states(checkpoint: dict) -> dict[str, dict]:
    """``ema_name(decay)`` -> the checkpoint's model state with that average's floating entries,
    for each average a training checkpoint holds (none for a run without ``ema.decays``)."""
    ema = checkpoint.get("ema") or {}
    out = {}
    for d, shadow in zip(ema.get("decays", []), ema.get("shadows", [])):
        state = dict(checkpoint["model"])
        state.update(shadow)
        out[ema_name(d)] = state
    return out
