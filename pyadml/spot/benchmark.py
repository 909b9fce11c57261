"""Speed and latency of the keyword spotter (``python -m pyadml.bin.benchmark_detect``).

Prints, on one thread: offline detection time and real-time factor over N minutes of audio
with the enrolled keywords, per backend and scan step; streaming latency with 100 ms chunks
(when each detection is emitted, in audio time, after the inserted keyword's end and after the
detection window's end) and compute per chunk; the audio encoder's time at batch 1, onnxruntime
against torch. Nothing here is a test: it reports.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .audio import load_audio
from .spotter import KeywordSpotter

KEYWORDS = ["computer", "alexa", "jarvis", "smart mirror", "snowboy", "view glass", "hey siri",
            "ok google", "turn on the light", "play music"]
RATE = 16000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-rate bursts of harmonic tones with a moving pitch, plus noise: a stand-in for
    speech where no recordings are given (the cost of the search does not depend on content)."""
    rng = np.random.default_rng(seed)
    out = []
    step = 60 * RATE
    for s in range(0, int(seconds * RATE), step):
        n = min(step, int(seconds * RATE) - s)
        t = (s + np.arange(n)) / RATE
        f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
        env = np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None) ** 2
        out.append((0.2 * env * voiced + 0.01 * rng.standard_normal(n)).astype(np.float32))
    return np.concatenate(out)


def background(seconds: float, scp: str | None) -> np.ndarray:
    """Recordings of a wav.scp looped to ``seconds``, else ``speechlike``."""
    if not scp:
        return speechlike(seconds)
    paths = [line.split(maxsplit=1)[1].strip() for line in Path(scp).read_text().splitlines() if line.strip()]
    parts, total, i = [], 0, 0
    while total < seconds * RATE:
        x = load_audio(paths[i % len(paths)], RATE)
        parts.append(x)
        total += x.size
        i += 1
    return np.concatenate(parts)[: int(seconds * RATE)]


def espeak(text: str) -> np.ndarray | None:
    if not shutil.which("espeak-ng"):
        return None
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "kw.wav"
        subprocess.run(["espeak-ng", "-w", str(p), text], check=True, capture_output=True)
        x = load_audio(p, RATE)
    idx = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())  # trim engine silence
    return x[idx[0] : idx[-1] + 1] if idx.size else x


def time_detect(sp: KeywordSpotter, x: np.ndarray) -> tuple[float, int, dict]:
    from .features import compute_fbank
    from .spotter import _Search

    # CPU time too: everything runs on one thread, so on a busy machine process time is the
    # time one free core would take.
    t0, c0 = time.perf_counter(), time.process_time()
    feats = compute_fbank(x, sp.backend.features)
    t1 = time.perf_counter()
    s = _Search(sp, sp._thresholds(None))
    dets = s.feed(feats) + s.finish()
    t2, c2 = time.perf_counter(), time.process_time()
    return t2 - t0, len(dets), {"fbank_s": t1 - t0, "cpu_s": c2 - c0, "embedded": s.embedded,
                                "positions": s.positions}


def encoder_batch1(sp_t: KeywordSpotter, sp_o: KeywordSpotter, frames: int = 76, runs: int = 200) -> dict:
    x = np.random.default_rng(0).standard_normal((1, frames, sp_t.feature_dim)).astype(np.float32)
    lens = np.array([frames])
    out = {}
    for name, sp in (("torch", sp_t), ("onnx", sp_o)):
        for _ in range(10):
            sp.backend.embed_audio(x, lens)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            sp.backend.embed_audio(x, lens)
            ts.append(time.perf_counter() - t)
        out[name] = 1000 * statistics.median(ts)
    return out


def latency(sp: KeywordSpotter, threshold, seconds: float = 120.0, scp: str | None = None,
            chunk: float = 0.1) -> dict:
    """Keywords (espeak-ng) inserted into background audio every ~6 s; stream in ``chunk``
    pieces and measure emission time after the keyword's end."""
    bg = background(seconds, scp) * 0.5
    rng = np.random.default_rng(1)
    truth = []
    t = 2.0
    clips = {k: espeak(k) for k in sp.keywords}
    if any(c is None for c in clips.values()):
        return {"note": "espeak-ng not installed: no keyword audio to insert"}
    while t < seconds - 3:
        k = sp.keywords[len(truth) % len(sp.keywords)]
        c = clips[k]
        i = int(t * RATE)
        bg[i : i + c.size] += c
        truth.append((k, t, t + c.size / RATE))
        t += 5 + rng.uniform(0, 2)
    n = int(chunk * RATE)
    per_chunk = []
    dets = []
    it = iter(range(0, bg.size, n))
    gen = sp.stream((_timed(bg[i : i + n], per_chunk) for i in it), threshold=threshold)
    for d in gen:
        dets.append(d)
    hits, lat, win_lat = 0, [], [d.emitted - d.end for d in dets]
    for k, a, b in truth:
        m = [d for d in dets if d.keyword == k and d.start < b + 0.3 and d.end > a - 0.3]
        if m:
            hits += 1
            lat.append(min(d.emitted for d in m) - b)
    return {"inserted": len(truth), "detected": hits, "detections": len(dets),
            "latency_after_keyword_end_s": _q(lat), "latency_after_window_end_s": _q(win_lat),
            "compute_per_chunk_ms": _q([1000 * c for c in per_chunk])}


def _timed(x, acc):
    # Compute between chunks: the time until the consumer asks for the next chunk.
    now = time.perf_counter()
    if acc and isinstance(acc[-1], tuple):
        acc[-1] = now - acc[-1][0]
    acc.append((now,))
    return x


def _q(v):
    v = [x for x in v if not isinstance(x, tuple)]
    if not v:
        return None
    a = np.asarray(v)
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.quantile(a, 0.9)), 3),
            "max": round(float(a.max()), 3), "n": int(a.size)}


def run(model: str, minutes: float = 60.0, keywords=KEYWORDS, scan_steps=(1, 2), scp=None,
        threshold: float = 0.5, onnx_dir: str | None = None, out=sys.stdout,
        window_scale: float | None = None) -> dict:
    from .onnx_export import export_onnx

    report: dict = {"minutes": minutes, "keywords": list(keywords)}
    tmp = None
    if onnx_dir is None:
        tmp = tempfile.TemporaryDirectory()
        onnx_dir = tmp.name
        export_onnx(model, onnx_dir)
    sps = {b: KeywordSpotter.load(model if b == "torch" else onnx_dir, backend=b, num_threads=1,
                                  threshold=threshold, window_scale=window_scale).enroll(list(keywords))
           for b in ("torch", "onnx")}
    sp = sps["torch"]
    windows = {k: sp.window_frames(k) for k in keywords}
    print(f"keyword windows (frames, window scale {sp.window_scale:g}): {windows}; distinct "
          f"lengths {sorted(set(windows.values()))}", file=out)
    enc = encoder_batch1(sps["torch"], sps["onnx"])
    report["encoder_batch1_ms"] = enc
    print(f"audio encoder, batch 1, 76 frames, 1 thread: torch {enc['torch']:.2f} ms, "
          f"onnxruntime {enc['onnx']:.2f} ms", file=out)
    x = background(60 * minutes, scp)
    report["offline"] = {}
    for b, s in sps.items():
        for step in scan_steps:
            s.scan_step = step
            secs, n, info = time_detect(s, x)
            rtf = secs / (60 * minutes)
            cpu_rtf = info["cpu_s"] / (60 * minutes)
            report["offline"][f"{b}/scan{step}"] = {"seconds": secs, "rtf": rtf, "cpu_rtf": cpu_rtf,
                                                    "detections": n, **info}
            print(f"offline {b:5s} scan_step {step}: {minutes:g} min of audio in {secs:.1f} s "
                  f"wall, {info['cpu_s']:.1f} s CPU (RTF {rtf:.4f} wall, {cpu_rtf:.4f} CPU; fbank {info['fbank_s']:.1f} s; {info['embedded']} windows "
                  f"embedded for {info['positions']} positions; {n} detections at threshold "
                  f"{threshold})", file=out, flush=True)
    for b, s in sps.items():
        s.scan_step = min(scan_steps)
    lat = latency(sps["onnx"], threshold, scp=scp)
    report["streaming"] = lat
    print(f"streaming (onnx, 100 ms chunks, scan_step {sps['onnx'].scan_step}): {lat}", file=out)
    print("targets:", file=out)
    for key, r in report["offline"].items():
        print(f"  offline {key}: RTF {r['rtf']:.4f} wall, {r['cpu_rtf']:.4f} CPU (target <= 0.017, "
              f"60 s per hour): {'met' if r['rtf'] <= 0.017 else 'met in CPU time' if r['cpu_rtf'] <= 0.017 else 'NOT met'}",
              file=out)
    kw_lat = lat.get("latency_after_keyword_end_s") if isinstance(lat, dict) else None
    if kw_lat:
        print(f"  streaming: detection {1000 * kw_lat['median']:.0f} ms (median), "
              f"{1000 * kw_lat['max']:.0f} ms (max) after the keyword ends (target <= 300 ms): "
              f"{'met' if kw_lat['max'] <= 0.3 else 'median met' if kw_lat['median'] <= 0.3 else 'NOT met'}",
              file=out)
    else:
        print("  streaming: no inserted keyword was detected at this threshold; see the "
              "window-end latency above", file=out)
    print(f"  onnxruntime at batch 1: {enc['onnx']:.2f} ms vs torch {enc['torch']:.2f} ms: "
          f"{'met' if enc['onnx'] <= enc['torch'] else 'NOT met'}", file=out)
    if tmp:
        tmp.cleanup()
    return report
