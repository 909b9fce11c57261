"""Stage 3: seeded audio-domain augmentation of word cuts (RIRs, MUSAN noise/music/babble,
speed perturbation, clipping, band limiting).

Everything stays lazy: an augmented cut is a lhotse ``MonoCut`` whose Recording carries
``transforms``, or a ``MixedCut`` of the speech and MUSAN tracks with per-track SNRs. Audio is
only computed by ``load_audio()``, so manifests stay small and are reproducible from the seed.

The two transforms defined here register themselves with lhotse by class name
(``AudioTransform.__init_subclass__``); a process that reads augmented manifests must import
this module before deserialising them, or lhotse fails with "Unknown transform type".
"""

from __future__ import annotations

import copy
import os
from collections import Counter
import functools
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import yaml
from lhotse import CutSet, MonoCut, Recording, RecordingSet
from lhotse.augmentation import AudioTransform
from lhotse.cut import Cut
from lhotse.cut.data import DataCut
from lhotse.utils import Seconds, compute_num_samples, fastcopy, perturb_num_samples

# scipy.signal is imported where it is used: a second of start-up that every process reading
# the dataset (training, scoring) would pay for nothing.

KINDS = ("reverb", "noise", "music", "babble")
ADDITIVE = ("noise", "music", "babble")

DEFAULT_CONFIG: dict[str, Any] = {
    "seed": 0,
    "copies": 2,
    "weights": {"reverb": 1.0, "noise": 1.0, "music": 1.0, "babble": 1.0},
    "snr": {"noise": [0.0, 15.0], "music": [5.0, 15.0], "babble": [13.0, 20.0]},
    "babble_speakers": [3, 5],
    "reverb_and_noise_prob": 0.0,
    "speed_factors": [0.9, 1.1],
    "speed_prob": 0.0,
    "bandlimit_prob": 0.0,
    "bandlimit_cutoff": 4000.0,
    # Hard clipping, as a hot microphone or a loud talker saturates it: with probability
    # clip_prob a training copy is clipped at a level drawn from clip_db (dB below its peak).
    # Off: at 0.2 it lifted the clipped real recordings on two seeds of three and lowered them
    # on the third (egs/wsj_librikws/RESULTS.md, "Recordings as devices deliver them").
    "clip_prob": 0.0,
    "clip_db": [3.0, 15.0],
    # Leading and trailing context of training copies, as users record a keyword: silence or
    # room noise around the word. prob 0 (the default here) leaves every copy as it was.
    "context": {"prob": 0.0, "max": 1.0, "snr": [15.0, 50.0]},
}

# Denominator bound of the resampling ratio: 1/100 resolution in the speed factor is plenty
# and keeps the polyphase filter short.
_MAX_SPEED_DENOMINATOR = 100


# ----------------------------------------------------------------------------------------------
# transforms


@dataclass
class SpeedPerturb(AudioTransform):
    """sox/Kaldi ``speed``: play ``factor`` times faster (tempo and pitch both change).

    Output length is ``perturb_num_samples(n, factor)`` (about ``n / factor``), the number
    lhotse's manifests predict, so perturbed Recordings and cuts stay consistent.
    """

    factor: float

    def __post_init__(self):
        self.factor = float(self.factor)
        if not (self.factor > 0 and math.isfinite(self.factor)):
            raise ValueError(f"SpeedPerturb: factor must be positive, got {self.factor!r}")

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if self.factor == 1.0:
            return samples
        # Playing f times faster = resampling by 1/f at a fixed rate: up/down = 1/f.
        ratio = Fraction(self.factor).limit_denominator(_MAX_SPEED_DENOMINATOR)
        from scipy import signal
        out = signal.resample_poly(samples, ratio.denominator, ratio.numerator, axis=-1)
        n = perturb_num_samples(samples.shape[-1], self.factor)
        if out.shape[-1] >= n:
            out = out[..., :n]
        else:
            pad = [(0, 0)] * (out.ndim - 1) + [(0, n - out.shape[-1])]
            out = np.pad(out, pad)
        return out.astype(samples.dtype, copy=False)

    def reverse_timestamps(
        self, offset: Seconds, duration: Optional[Seconds], sampling_rate: int
    ) -> tuple[Seconds, Optional[Seconds]]:
        # Map perturbed times back to the source audio (the inverse of the factor).
        start = perturb_num_samples(compute_num_samples(offset, sampling_rate), 1 / self.factor)
        if duration is None:
            return start / sampling_rate, None
        n = perturb_num_samples(compute_num_samples(duration, sampling_rate), 1 / self.factor)
        return start / sampling_rate, n / sampling_rate


@dataclass
class BandLimit(AudioTransform):
    """Telephone-like band limit: a linear-phase Kaiser FIR low-pass whose stopband
    (``attenuation_db`` down) starts at ``cutoff`` Hz; length and delay are unchanged."""

    cutoff: float = 4000.0
    transition: float = 300.0
    attenuation_db: float = 60.0

    def __post_init__(self):
        self.cutoff = float(self.cutoff)
        self.transition = float(self.transition)
        self.attenuation_db = float(self.attenuation_db)
        if not (self.cutoff > self.transition > 0):
            raise ValueError(
                f"BandLimit: need cutoff > transition > 0, got {self.cutoff}, {self.transition}"
            )

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if self.cutoff >= sampling_rate / 2:
            return samples
        taps = _lowpass_taps(int(sampling_rate), self.cutoff, self.transition, self.attenuation_db)
        taps = taps.reshape((1,) * (samples.ndim - 1) + (-1,))
        # Odd symmetric FIR with mode="same" removes its (N-1)/2 delay exactly.
        from scipy import signal
        out = signal.oaconvolve(samples, taps, mode="same", axes=-1)
        return out.astype(samples.dtype, copy=False)

    def reverse_timestamps(
        self, offset: Seconds, duration: Optional[Seconds], sampling_rate: int
    ) -> tuple[Seconds, Optional[Seconds]]:
        return offset, duration


@dataclass
class Clip(AudioTransform):
    """Hard clipping ``below_peak_db`` dB under the signal's peak: y = min(max(x, -t), t) with
    t = max|x| * 10^(-below_peak_db / 20). No gain is applied (the peak becomes t), so the
    saturation's distortion is added at any recording level; length and timing are unchanged."""

    below_peak_db: float

    def __post_init__(self):
        self.below_peak_db = float(self.below_peak_db)
        if not (0.0 <= self.below_peak_db <= 60.0):
            raise ValueError(f"Clip: below_peak_db must be in [0, 60] dB, got {self.below_peak_db!r}")

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak == 0.0 or self.below_peak_db == 0.0:
            return samples
        t = peak * 10.0 ** (-self.below_peak_db / 20.0)
        return np.clip(samples, -t, t).astype(samples.dtype, copy=False)

    def reverse_timestamps(
        self, offset: Seconds, duration: Optional[Seconds], sampling_rate: int
    ) -> tuple[Seconds, Optional[Seconds]]:
        return offset, duration


@functools.lru_cache(maxsize=16)
def _lowpass_taps(sr: int, cutoff: float, transition: float, atten_db: float) -> np.ndarray:
    from scipy import signal
    numtaps, beta = signal.kaiserord(atten_db, transition / (0.5 * sr))
    numtaps |= 1
    # firwin's cutoff is the middle of the transition band.
    return signal.firwin(numtaps, cutoff - transition / 2, window=("kaiser", beta), fs=sr)


# lhotse registers subclasses by bare class name and silently keeps the first one.
for _cls in (SpeedPerturb, BandLimit, Clip):
    if AudioTransform.KNOWN_TRANSFORMS.get(_cls.__name__) is not _cls:
        raise ImportError(f"lhotse already has a transform named {_cls.__name__}")


def perturb_speed(cut: DataCut, factor: float, affix_id: bool = True) -> DataCut:
    """``cut.perturb_speed`` with :class:`SpeedPerturb` instead of lhotse's ``Speed``.

    Same bookkeeping as lhotse's ``DataCut.perturb_speed``: recording, cut start/duration and
    supervisions (with their alignments) are rescaled through sample counts; ids get ``_sp<f>``.
    """
    if not isinstance(cut, DataCut) or not cut.has_recording:
        raise ValueError(f"perturb_speed: cut {cut.id} is not a cut with a recording")
    factor = float(factor)
    rec = cut.recording
    sr = rec.sampling_rate
    rec_n = perturb_num_samples(rec.num_samples, factor)
    rec_sp = fastcopy(
        rec,
        id=f"{rec.id}_sp{factor}" if affix_id else rec.id,
        num_samples=rec_n,
        duration=rec_n / sr,
        transforms=[*(rec.transforms or []), SpeedPerturb(factor=factor)],
    )
    sups = [s.perturb_speed(factor=factor, sampling_rate=sr, affix_id=affix_id)
            for s in cut.supervisions]
    start = perturb_num_samples(compute_num_samples(cut.start, sr), factor) / sr
    n = perturb_num_samples(cut.num_samples, factor)
    extra = {"features": None} if cut.has_features else {}  # features no longer match
    return fastcopy(
        cut,
        id=f"{cut.id}_sp{factor}" if affix_id else cut.id,
        recording=rec_sp,
        supervisions=sups,
        start=start,
        duration=n / sr,
        **extra,
    )


# ----------------------------------------------------------------------------------------------
# configuration


def check_augment_config(cfg: dict | None, where: str = "augment config") -> dict[str, Any]:
    """Merge ``cfg`` over the defaults and validate it; unknown keys raise ValueError."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected {sorted(DEFAULT_CONFIG)}")
    out = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in cfg.items():
        if key in ("weights", "snr", "context"):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key} must be a mapping, got {value!r}")
            bad = sorted(set(value) - set(out[key]))
            if bad:
                raise ValueError(f"{where}: unknown key(s) {[f'{key}.{b}' for b in bad]}; "
                                 f"expected {sorted(out[key])}")
            out[key].update(value)
        else:
            out[key] = value

    def fail(msg):
        raise ValueError(f"{where}: {msg}")

    def prob(key):
        v = out[key]
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            fail(f"{key} must be a probability in [0, 1], got {v!r}")
        out[key] = float(v)

    def pair(name, v, number=float):
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(isinstance(x, (int, float)) for x in v) or v[0] > v[1]):
            fail(f"{name} must be [low, high] with low <= high, got {v!r}")
        return [number(v[0]), number(v[1])]

    if not isinstance(out["seed"], int):
        fail(f"seed must be an integer, got {out['seed']!r}")
    if not isinstance(out["copies"], int) or out["copies"] < 1:
        fail(f"copies must be an integer >= 1, got {out['copies']!r}")
    for kind, w in out["weights"].items():
        if not isinstance(w, (int, float)) or w < 0:
            fail(f"weights.{kind} must be >= 0, got {w!r}")
        out["weights"][kind] = float(w)
    for kind, v in out["snr"].items():
        out["snr"][kind] = pair(f"snr.{kind}", v)
    out["babble_speakers"] = pair("babble_speakers", out["babble_speakers"], int)
    if out["babble_speakers"][0] < 1:
        fail(f"babble_speakers must be >= 1, got {out['babble_speakers']!r}")
    f = out["speed_factors"]
    if (not isinstance(f, (list, tuple)) or not f
            or not all(isinstance(x, (int, float)) and x > 0 for x in f)):
        fail(f"speed_factors must be a non-empty list of positive numbers, got {f!r}")
    out["speed_factors"] = [float(x) for x in f]
    for key in ("reverb_and_noise_prob", "speed_prob", "bandlimit_prob", "clip_prob"):
        prob(key)
    out["clip_db"] = pair("clip_db", out["clip_db"])
    if not 0.0 <= out["clip_db"][0] <= out["clip_db"][1] <= 60.0:
        fail(f"clip_db must be dB below the peak within [0, 60], got {out['clip_db']!r}")
    ctx = out["context"]
    if not isinstance(ctx["prob"], (int, float)) or not 0.0 <= ctx["prob"] <= 1.0:
        fail(f"context.prob must be a probability in [0, 1], got {ctx['prob']!r}")
    if not isinstance(ctx["max"], (int, float)) or not 0.0 <= ctx["max"] <= 10.0:
        fail(f"context.max must be seconds in [0, 10], got {ctx['max']!r}")
    ctx.update(prob=float(ctx["prob"]), max=float(ctx["max"]), snr=pair("context.snr", ctx["snr"]))
    c = out["bandlimit_cutoff"]
    if not isinstance(c, (int, float)) or c <= 300:
        fail(f"bandlimit_cutoff must be a frequency in Hz above 300, got {c!r}")
    out["bandlimit_cutoff"] = float(c)
    return out


def load_augment_config(path: str | Path) -> dict[str, Any]:
    """Read ``conf/augment.yaml``; missing keys take the defaults, unknown keys raise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"augment config {path} does not exist")
    raw = yaml.safe_load(path.read_text())
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return check_augment_config(raw, where=str(path))


# ----------------------------------------------------------------------------------------------
# augmentation


class _Pools:
    """Sorted recording lists per source, so choices do not depend on manifest order."""

    def __init__(self, rirs, noise, music, babble):
        def listed(recs):
            return sorted(recs, key=lambda r: r.id) if recs is not None else []

        self.rirs = listed(rirs)
        self.by_kind = {"noise": listed(noise), "music": listed(music), "babble": listed(babble)}
        self._rir_index = {r.id: r for r in self.rirs}
        self._index = {k: {r.id: r for r in v} for k, v in self.by_kind.items()}
        self._resampled: dict[tuple[str, int], Recording] = {}
        self._rirs_checked: set[str] = set()

    def rir(self, rec_id: str) -> Recording:
        rec = self._rir_index[rec_id]
        if rec_id not in self._rirs_checked:  # each RIR is read once, when a copy first uses it
            _check_rir(rec)
            self._rirs_checked.add(rec_id)
        return rec

    def source(self, kind: str, rec_id: str) -> Recording:
        return self._index[kind][rec_id]

    def available(self, kind: str) -> bool:
        return bool(self.rirs) if kind == "reverb" else bool(self.by_kind[kind])

    def at_rate(self, rec: Recording, sr: int) -> Recording:
        # Lazily resampled copy (lhotse falls back to scipy without torchaudio).
        if rec.sampling_rate == sr:
            return rec
        key = (rec.id, sr)
        if key not in self._resampled:
            self._resampled[key] = rec.resample(sr)
        return self._resampled[key]


def _check_rir(rec: Recording) -> None:
    """The channel of ``rec`` that reverberation uses (lhotse's rir_channels=[0]) must hold a
    response: an all-zero one made every copy reverberated with it digital silence, kept as a
    training example of its word (lhotse skips the energy normalisation then), and a NaN in it
    stopped stage 4 with 'cannot convert float NaN to integer', naming no file."""
    where = f"RIR {rec.id} ({rec.sources[0].source if rec.sources else 'no source'})"
    try:
        h = rec.load_audio(channels=rec.channel_ids[0])
    except Exception as e:  # lhotse, soundfile and audioread raise several types
        # lhotse's message is pages of audio backends' exceptions: an OS error's, else the first
        lines = str(e).splitlines() or [type(e).__name__]
        why = ([x[x.index("[Errno"):] for x in lines if "[Errno" in x]
               or [x.split(": ", 2)[-1] for x in lines if x.startswith("Exception #0")] or lines)
        raise ValueError(f"{where}: cannot read it ({why[0].strip()})") from None
    if h.size == 0:
        raise ValueError(f"{where}: no samples; an impulse response needs some")
    bad = ~np.isfinite(h)
    if bad.any():
        raise ValueError(f"{where}: {int(bad.sum())} sample(s) of channel {rec.channel_ids[0]} are "
                         f"NaN or infinite (the first at {int(np.argmax(bad.ravel()))}); expected "
                         f"finite values: remove it or replace it")
    if not np.any(h):
        raise ValueError(f"{where}: channel {rec.channel_ids[0]} is all zeros, so every copy "
                         f"reverberated with it would be silence; remove it or replace it")


def _noise_tracks(rec: Recording, n: int, start: int) -> list[tuple[MonoCut, int]]:
    """``n`` samples of ``rec`` from sample ``start``, wrapping round if it is shorter.

    Returns (noise cut, position in samples) pairs that tile [0, n) exactly; every piece gets
    the same SNR, so the whole noise track is at that SNR (lhotse scales each by its energy).
    """
    sr, m = rec.sampling_rate, rec.num_samples
    # A multi-channel source (REVERB's 8-channel noises) gives its first channel.
    channel = rec.channel_ids[0]
    pieces, pos = [], 0
    while pos < n:
        take = min(m - start, n - pos)
        cut = MonoCut(id=f"{rec.id}-{start}", start=start / sr, duration=take / sr,
                      channel=channel, recording=rec)
        pieces.append((cut, pos))
        pos += take
        start = 0
    return pieces


def _plan(cut: Cut, k: int, setup: "_Setup", seed: int) -> dict[str, Any]:
    """Draw one copy's recipe from its own stream (random.Random hashes a str seed with
    SHA-512, so unlike the salted hash() it is the same in every run)."""
    cfg, pools = setup.cfg, setup.pools
    rng = random.Random(f"{seed}-{cut.id}-{k}")
    kind = rng.choices(setup.kinds, weights=setup.weights)[0]
    plan: dict[str, Any] = {"kind": kind, "speed": None, "rir": None, "snr": None,
                            "sources": None, "offsets": None, "bandlimit": None}
    context = _plan_context(cut, k, setup, seed)
    if context is not None:
        plan["context"] = context
    if rng.random() < setup.speed_prob:
        plan["speed"] = rng.choice(cfg["speed_factors"])
    if kind == "reverb" or (pools.rirs and rng.random() < cfg["reverb_and_noise_prob"]):
        plan["rir"] = rng.choice(pools.rirs).id
    if kind in ADDITIVE:
        pool = pools.by_kind[kind]
        lo, hi = cfg["snr"][kind]
        count = rng.randint(*cfg["babble_speakers"]) if kind == "babble" else 1
        picked = [pool[i] for i in rng.sample(range(len(pool)), min(count, len(pool)))]
        # Babble: one SNR per speaker, as Kaldi's --bg-snrs per background noise.
        snrs = [round(rng.uniform(lo, hi), 2) for _ in picked]
        n = cut.num_samples
        if plan["speed"] is not None:
            n = perturb_num_samples(n, plan["speed"])
        if context is not None:  # the noise runs through the added context too
            n += sum(compute_num_samples(t, cut.sampling_rate) for t in context["pad"])
        starts = []
        for rec in picked:
            m = pools.at_rate(rec, cut.sampling_rate).num_samples
            starts.append(rng.randrange(m - n + 1) if m >= n else rng.randrange(m))
        plan["snr"] = snrs if kind == "babble" else snrs[0]
        plan["sources"] = [r.id for r in picked]
        plan["offsets"] = [s / cut.sampling_rate for s in starts]
    if rng.random() < setup.bandlimit_prob:
        plan["bandlimit"] = cfg["bandlimit_cutoff"]
    clip = _plan_clip(cut, k, setup, seed)
    if clip is not None:
        plan["clip"] = clip
    return plan


def _plan_clip(cut: Cut, k: int, setup: "_Setup", seed: int) -> float | None:
    """Clipping level of copy k in dB below its peak (None: not clipped), from its own stream,
    so that turning it on leaves every other draw of the copy as it was. Training copies only."""
    cfg = setup.cfg
    if not setup.training or cfg["clip_prob"] <= 0:
        return None
    rng = random.Random(f"{seed}-{cut.id}-{k}-clip")
    if rng.random() >= cfg["clip_prob"]:
        return None
    return round(rng.uniform(*cfg["clip_db"]), 2)


def _plan_context(cut: Cut, k: int, setup: "_Setup", seed: int) -> dict[str, Any] | None:
    """Leading/trailing context of copy k (None: none), from its own stream, so that turning
    it on leaves every other draw of the copy as it was.

    ``pad``: seconds of silence before and after the cut, each uniform in [0, max]; ``source``,
    ``offset``, ``snr``: the room noise (a MUSAN noise recording, looped if short) laid under
    the whole padded copy at ``snr`` dB below the speech, so that the context is never digital
    silence and the noise floor runs on under the word as in a real recording. Copies of the
    additive kinds keep their own noise through the context instead.
    """
    ctx = setup.cfg["context"]
    pool = setup.pools.by_kind["noise"]
    if not setup.training or ctx["prob"] <= 0 or not pool:
        return None
    rng = random.Random(f"{seed}-{cut.id}-{k}-context")
    if rng.random() >= ctx["prob"]:
        return None
    pad = [round(rng.uniform(0.0, ctx["max"]), 3), round(rng.uniform(0.0, ctx["max"]), 3)]
    rec = rng.choice(pool)
    m = setup.pools.at_rate(rec, cut.sampling_rate).num_samples
    return {"pad": pad, "source": rec.id, "offset": rng.randrange(m) / cut.sampling_rate,
            "snr": round(rng.uniform(*ctx["snr"]), 2)}


def _add_context(speech: Cut, plan: dict, setup: "_Setup", additive: bool) -> Cut:
    """Pad ``speech`` with the plan's silence on both sides and, unless an additive kind
    brings its own noise, lay the room noise under the whole of it."""
    ctx = plan["context"]
    lead, trail = ctx["pad"]
    sr = speech.sampling_rate
    out = speech
    if lead > 0:
        out = out.pad(num_samples=out.num_samples + compute_num_samples(lead, sr),
                      direction="left", preserve_id=True)
    if trail > 0:
        out = out.pad(num_samples=out.num_samples + compute_num_samples(trail, sr),
                      direction="right", preserve_id=True)
    if additive:
        return out
    rec = setup.pools.at_rate(setup.pools.source("noise", ctx["source"]), sr)
    # lhotse takes the SNR against the speech track (not the padding), as for the other kinds.
    for noise_cut, pos in _noise_tracks(rec, out.num_samples, compute_num_samples(ctx["offset"], sr)):
        out = out.mix(noise_cut, offset_other_by=pos / sr, snr=ctx["snr"], preserve_id="left",
                      tag="context")
    return out


def _augment_one(cut: Cut, k: int, setup: "_Setup", seed: int) -> Cut:
    plan = _plan(cut, k, setup, seed)
    pools = setup.pools
    new_id = f"{cut.id}_aug{k}"
    sr = cut.sampling_rate
    additive = plan["kind"] in ADDITIVE
    # The channel after the room: the microphone clips speech and noise together, then a
    # telephone band limits what it recorded.
    channel = []
    if plan.get("clip") is not None:
        channel.append(Clip(below_peak_db=plan["clip"]))
    if plan["bandlimit"] is not None:
        channel.append(BandLimit(cutoff=plan["bandlimit"]))

    speech = fastcopy(cut, features=None) if cut.has_features else cut
    if plan["speed"] is not None:
        speech = perturb_speed(speech, plan["speed"], affix_id=False)
    if plan["rir"] is not None:
        speech = speech.reverb_rir(pools.at_rate(pools.rir(plan["rir"]), sr), affix_id=False)
    # A copy with added context is a mix too (room noise), even when its kind is not additive.
    mixed = additive or plan.get("context") is not None
    rec = speech.recording
    if channel and not mixed:
        rec = fastcopy(rec, transforms=[*(rec.transforms or []), *channel])
    # A transformed recording is a new signal: it gets its own id.
    if plan["speed"] is not None or plan["rir"] is not None or (channel and not mixed):
        rec = fastcopy(rec, id=new_id)
    sups = [fastcopy(s, id=f"{s.id}_aug{k}", recording_id=rec.id) for s in speech.supervisions]
    speech = fastcopy(speech, id=new_id, recording=rec, supervisions=sups,
                      custom={**(cut.custom or {}), "aug": plan})
    if not mixed:
        return speech

    out: Cut = speech
    if plan.get("context") is not None:
        out = _add_context(out, plan, setup, additive)
    if additive:
        snrs = plan["snr"] if isinstance(plan["snr"], list) else [plan["snr"]]
        n = out.num_samples
        for source, offset, snr in zip(plan["sources"], plan["offsets"], snrs):
            rec = pools.at_rate(pools.source(plan["kind"], source), sr)
            for noise_cut, pos in _noise_tracks(rec, n, compute_num_samples(offset, sr)):
                out = out.mix(noise_cut, offset_other_by=pos / sr, snr=snr, preserve_id="left",
                              tag=plan["kind"])
    if channel:
        # After the mix: the channel clips and limits speech and noise alike.
        out = fastcopy(out, transforms=[*(out.transforms or []), *channel])
    return fastcopy(out, id=new_id)


def _check_input(cut: Cut) -> None:
    if not isinstance(cut, MonoCut) or not cut.has_recording:
        raise ValueError(f"augment_cuts: cut {cut.id} is not a MonoCut with a recording")


@dataclass
class _Setup:
    cfg: dict
    pools: _Pools
    kinds: list[str]
    weights: list[float]
    speed_prob: float
    bandlimit_prob: float
    training: bool = True  # training copies: context and clipping may apply (never eval)


def _setup(rirs, noise, music, babble, cfg, copies, speed) -> _Setup:
    cfg = check_augment_config(cfg)
    if not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies must be an integer >= 0, got {copies!r}")
    pools = _Pools(rirs, noise, music, babble)
    kinds = [k for k in KINDS if cfg["weights"][k] > 0 and pools.available(k)]
    if copies and not kinds:
        raise ValueError("augment_cuts: no augmentation kind has both a weight > 0 and a source")
    return _Setup(cfg, pools, kinds, [cfg["weights"][k] for k in kinds],
                  cfg["speed_prob"] if speed else 0.0,
                  cfg["bandlimit_prob"] if speed else 0.0, training=speed)


def _iter(cuts: Iterable[Cut], setup: _Setup, seed: int, copies: int,
          keep_clean: bool) -> Iterator[Cut]:
    if keep_clean:
        for cut in cuts:
            _check_input(cut)
            yield cut
    for cut in cuts if copies else ():
        _check_input(cut)
        for k in range(1, copies + 1):
            yield _augment_one(cut, k, setup, seed)


class _LazyAugmented:
    """Re-iterable view, so a lazy input gives a lazy (streamable) CutSet."""

    def __init__(self, cuts, setup, seed, copies, keep_clean):
        self.args = (cuts, setup, seed, copies, keep_clean)

    def __iter__(self):
        return _iter(*self.args)


def augment_cuts(cuts: CutSet, *, rirs: RecordingSet | None, noise: RecordingSet | None,
                 music: RecordingSet | None, babble: RecordingSet | None, cfg: dict, seed: int,
                 copies: int, keep_clean: bool, speed: bool = True) -> CutSet:
    """Seeded augmented copies of word cuts.

    Copy k of cut c is ``<c.id>_aug<k>``, drawn from ``random.Random(f"{seed}-{c.id}-{k}")``:
    one kind among reverb/noise/music/babble by ``cfg["weights"]`` (kinds without a source are
    skipped), optionally speed perturbation first, clipping and band limiting last; the recipe is
    kept in ``cut.custom["aug"]``. ``speed`` False (eval copies) turns off every training-only
    option: the speed, the context, the clipping and the band limit, and the copies' other
    draws are the same either way. Supervision texts are unchanged, their
    ids get ``_aug<k>``. Returns the clean cuts (if ``keep_clean``) followed by the copies;
    lazy if ``cuts`` is lazy. ``cfg`` may be partial (defaults fill in); its ``seed`` and
    ``copies`` are not used here.
    """
    setup = _setup(rirs, noise, music, babble, cfg, copies, speed)
    if cuts.is_lazy:
        return CutSet(_LazyAugmented(cuts, setup, seed, copies, keep_clean))
    return CutSet.from_cuts(list(_iter(cuts, setup, seed, copies, keep_clean)))


def augment_eval_cuts(cuts: CutSet, *, rirs: RecordingSet | None, noise: RecordingSet | None,
                      music: RecordingSet | None, babble: RecordingSet | None, cfg: dict,
                      seed: int) -> CutSet:
    """One augmented version per cut (the WSJ evaluation condition: RIRs and MUSAN noises).

    Speed perturbation, clipping, band-limiting and added context are training-only: the
    paper's test condition is reverberation and noise, so those options must not change it.
    """
    return augment_cuts(cuts, rirs=rirs, noise=noise, music=music, babble=babble,
                        cfg=cfg, seed=seed, copies=1,
                        keep_clean=False, speed=False)


def recipe_tags(aug: dict | None) -> list[str]:
    """Log labels of one recipe (``cut.custom.get("aug")``): its kind plus optional extras."""
    if aug is None:
        return ["clean"]
    tags = [aug["kind"]]
    if aug["kind"] in ADDITIVE and aug.get("rir"):
        tags.append("+reverb")
    if aug.get("speed") is not None:
        tags.append("+speed")
    if aug.get("clip") is not None:
        tags.append("+clip")
    if aug.get("bandlimit") is not None:
        tags.append("+bandlimit")
    if aug.get("context") is not None:
        tags.append("+context")
    return tags


def write_augmented(cuts: Iterable[Cut], out: str | os.PathLike) -> tuple[int, Counter]:
    """Stream ``cuts`` into ``out`` (.jsonl.gz) under a temporary name, renamed last; returns
    the number of cuts and a count of their recipe tags."""
    from pyadml.fileio import atomic_path

    # lhotse picks the format from the name, so the temporary name ends in .jsonl.gz too.
    # atomic_path, not a mkstemp of its own: that left the file 0600, unreadable to the other
    # users of a shared data/ (every other manifest has the umask's mode), and named no full disk.
    counts, total = Counter(), 0
    with atomic_path(out, suffix=".jsonl.gz") as tmp:
        with CutSet.open_writer(tmp) as writer:
            for cut in cuts:
                writer.write(cut)
                counts.update(recipe_tags((cut.custom or {}).get("aug")))
                total += 1
    return total, counts
