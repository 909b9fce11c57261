"""Continuous-speech evaluation of the keyword spotter, in the field's terms.

Streams: every held-out-voice utterance of a test set (a Kaldi dir: wav.scp, text) that does
not contain an enrolled keyword, concatenated with short pauses; keyword occurrences are
inserted into the pauses at known times. Two kinds of occurrence, each in its own stream:
``synth`` (the keywords spoken by the recipe's held-out TTS voices) and ``real`` (the
recordings of a wakeword_dev directory: clips.tsv + audio/, trimmed to the spoken part).

Scoring: the stream is run through ``KeywordSpotter.stream`` in 100 ms chunks at a very low
threshold (``replay_stream``: the detections and emission times of that run, with the windows
embedded in batches); a detection of keyword k that overlaps an inserted occurrence of k is a
hit (the best-scoring one per occurrence; any further one is a false alarm), every other
detection is a false alarm. Sweeping the threshold gives the miss rate (FRR) against false
alarms per hour per keyword (FA/h = false alarms / (background hours x keywords)); reported:
FRR at 0.5, 1 and 2 FA/h, a DET plot, and the latency (emission time after the occurrence's end)
at each operating point, each FRR with a 95% bootstrap interval over the stream's background
utterances (pyadml.spot.bootstrap). The sweep is exact: the stream is searched once for every
peak (no threshold, no refractory time) and each threshold's detections are those the spotter
would emit at it, refractory time included (``emitted``). With ``--wakeword-dev`` the spotter
also scores each real clip as recorded (``real_clips``: its best detection per keyword; AP, EER,
AUC, top-1).

    python -m pyadml.spot.evaluate --model exp/<tag>/final.pt --data data/manifests \
        --set <corpus>_<part> --wakeword-dev /path/to/wakeword_dev --out-dir exp/<tag>/continuous
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyadml.data.manifests import SetNotFound
from pyadml.fileio import write_lines_atomic, write_text_atomic
from pyadml.score.floor import add_floor_args
from pyadml.score.enrol import DETECT_ENROL, add_enrol_args

from .audio import SpotError, as_mono, load_audio
from .bootstrap import StreamRun, intervals
from .spotter import Detection, KeywordSpotter

RATE = 16000
KEYWORDS = ["alexa", "computer", "jarvis", "smart mirror", "snowboy", "view glass"]
TARGETS = (0.5, 1.0, 2.0)
HELDOUT_VOICES = ["flite:awb", "flite:slt", "flite:kal", "festival:kal_diphone",
                  "festival:cmu_us_slt_arctic_hts", "espeak:en-us+m7", "espeak:en-gb+f5",
                  "kokoro:jf_tebukuro"]


@dataclass
class Occurrence:
    keyword: str
    start: float
    end: float
    source: str


def _kaldi_map(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def _says_keyword(text: str, kw_words, tokenizer) -> bool:
    words = tokenizer.words(text) if text else []
    return any(words[i : i + len(k)] == k for k in kw_words for i in range(len(words)))


def background_utterances(data_dir, keywords, tokenizer) -> list[str]:
    """wav paths of the utterances whose transcript contains no enrolled keyword phrase."""
    data_dir = Path(data_dir)
    wavs, texts = _kaldi_map(data_dir / "wav.scp"), _kaldi_map(data_dir / "text")
    kw_words = [tokenizer.words(k) for k in keywords]
    return [wav for utt, wav in wavs.items()
            if not _says_keyword(texts.get(utt, ""), kw_words, tokenizer)]


@dataclass
class _Segment:
    """One supervision's audio, loaded through lhotse (any source a manifest names)."""
    recording: object
    start: float
    duration: float

    def load(self) -> np.ndarray:
        x = self.recording.load_audio(offset=self.start, duration=self.duration)
        return as_mono(x.T, self.recording.sampling_rate, RATE, f"recording {self.recording.id}")


def background_segments(manifest_dir, set_name, keywords, tokenizer) -> list[_Segment]:
    """The supervisions of a stage-1 set (``<corpus>_<part>``) that say no enrolled keyword."""
    from pyadml.data.manifests import load_set_manifests

    recs, sups = load_set_manifests(manifest_dir, set_name)
    kw_words = [tokenizer.words(k) for k in keywords]
    return [_Segment(recs[s.recording_id], s.start, s.duration) for s in sups
            if not _says_keyword(s.text or "", kw_words, tokenizer)]


def _load(item) -> np.ndarray:
    return item.load() if isinstance(item, _Segment) else load_audio(item, RATE)


from pyadml.score.vad import trim  # noqa: E402  the scoring front end's rule, shared


def synth_occurrences(keywords, reps: int = 2, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    from pyadml.synth.voices import Prosody, Voice, synthesize

    rng = np.random.default_rng(seed)
    out = []
    for spec in HELDOUT_VOICES:
        voice = Voice.parse(spec)
        texts = [k for k in keywords for _ in range(reps)]
        pros = [Prosody(speed=float(rng.uniform(0.9, 1.1))) for _ in texts]
        out += list(zip(texts, synthesize(voice, texts, pros)))
    return out


def real_occurrences(wakeword_dir, keywords) -> list[tuple[str, np.ndarray]]:
    out = []
    for path, kw in clip_rows(wakeword_dir, keywords):  # a speaker column is allowed
        x = load_audio(path, RATE)
        a, b = trim(x)
        out.append((kw, x[max(0, a - 800) : b + 800]))
    return out


def _inserted_after(n: int, utterances: int, occurrences: int) -> int:
    """How many occurrences the stream holds after the pause that follows background utterance
    n: one after every ``utterances // occurrences``-th utterance, or, with more occurrences
    than utterances, as many per pause as spreads them all evenly (none is left out)."""
    if utterances >= occurrences:
        return min(occurrences, (n + 1) // max(1, utterances // max(1, occurrences)))
    return round((n + 1) * occurrences / utterances)


def build_stream(background: list[str], occurrences, source: str, seed: int = 0):
    """Background utterances in a seeded order with 0.3-1.0 s pauses; the occurrences go into
    the pauses, spread evenly (several to a pause when there are more of them than utterances),
    each followed by a pause of its own. Returns (audio, occurrences with times, background
    seconds, blocks): ``blocks`` is (utterances, 2), each background utterance's start and
    length in seconds, in stream order; a block runs from its start to the next one's, with
    its pause and the occurrences after it (pyadml.spot.bootstrap resamples them)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(background))
    occ_order = rng.permutation(len(occurrences))
    parts, truth, blocks, t, bg_samples, k = [], [], [], 0, 0, 0
    for n, i in enumerate(order):
        x = _load(background[i])
        parts.append(x)
        blocks.append((t / RATE, x.size / RATE))
        t += x.size
        bg_samples += x.size
        gap = np.zeros(int(rng.uniform(0.3, 1.0) * RATE), np.float32)
        parts.append(gap)
        t += gap.size
        while k < _inserted_after(n, len(order), len(occurrences)):
            kw, clip = occurrences[occ_order[k]]
            a, b = trim(clip)
            truth.append(Occurrence(kw, (t + a) / RATE, (t + b) / RATE, source))
            parts += [clip.astype(np.float32), gap]
            t += clip.size + gap.size
            k += 1
    return (np.concatenate(parts), truth, bg_samples / RATE,
            np.array(blocks, dtype=np.float64).reshape(-1, 2))


@contextmanager
def every_peak(spotter: KeywordSpotter):
    """The spotter without a refractory time, for searches at threshold -1 whose detections are
    every peak: what it emits at any threshold is a subset of these (``emitted``)."""
    refractory, spotter.refractory = spotter.refractory, 0.0
    try:
        yield spotter
    finally:
        spotter.refractory = refractory


def run_stream(spotter: KeywordSpotter, audio: np.ndarray, chunk: float = 0.1) -> list[Detection]:
    """Every peak of every keyword in a stream fed in ``chunk``-second pieces, in time order."""
    n = int(chunk * RATE)
    with every_peak(spotter):
        return spotter.replay_stream((audio[i : i + n] for i in range(0, audio.size, n)), threshold=-1.0)


def emitted(peaks: list[Detection], threshold: float, refractory: dict[str, float]) -> list[Detection]:
    """The detections the spotter emits at ``threshold``, from its peaks (``run_stream``): a peak
    fires when its score reaches the threshold and it starts at least ``refractory[keyword]``
    seconds after the last detection of its keyword that fired (pyadml.spot.spotter's rule)."""
    above = [i for i, d in enumerate(peaks) if d.score >= threshold]
    return [peaks[i] for i in emitted_indices(peaks, above, refractory)]


def overlaps(dets: list[Detection], truth: list[Occurrence]) -> list[list[int]]:
    """For each detection, the occurrences of its keyword it overlaps (usually none or one)."""
    return [[j for j, o in enumerate(truth) if o.keyword == d.keyword and d.start < o.end
             and d.end > o.start] for d in dets]


def best_per_occurrence(fired, dets: list[Detection], over: list[list[int]]) -> dict[int, int]:
    """occurrence -> index of its hit among the ``fired`` detection indices (ascending): the
    highest-scoring one that overlaps it, the later one on a tie."""
    best: dict[int, int] = {}
    for i in fired:
        for j in over[i]:
            if j not in best or dets[i].score >= dets[best[j]].score:
                best[j] = i
    return best


def match(dets: list[Detection], truth: list[Occurrence]):
    """(hit detection per occurrence or None, false-alarm scores): an occurrence's hit is the best
    detection of its keyword overlapping it; every other detection is a false alarm."""
    best = best_per_occurrence(range(len(dets)), dets, overlaps(dets, truth))
    used = set(best.values())
    return ([dets[best[j]] if j in best else None for j in range(len(truth))],
            np.array([d.score for i, d in enumerate(dets) if i not in used]))


def sweep(peaks: list[Detection], truth: list[Occurrence], hours: float, num_keywords: int,
          refractory: dict[str, float], max_thresholds: int = 4000):
    """Thresholds (descending: 1.01, then the highest ``max_thresholds`` distinct peak scores)
    with the miss rate and FA/h per keyword of the detections emitted at each. Each threshold's
    refractory suppression is its own (a peak below it suppresses nothing), as in a run of the
    spotter at that threshold."""
    thr, hits, fa = sweep_counts(peaks, truth, refractory, max_thresholds=max_thresholds)
    return (thr, *rates(hits, fa, hours, num_keywords))


def rates(hits: np.ndarray, fa: np.ndarray, hours: float, num_keywords: int):
    """(miss rate, FA/h per keyword) at each threshold from ``sweep_counts``' hits and false
    alarms."""
    return (1.0 - hits.sum(axis=1) / max(hits.shape[1], 1),
            fa.sum(axis=1) / (hours * num_keywords))


def sweep_counts(peaks: list[Detection], truth: list[Occurrence], refractory: dict[str, float],
                 peak_block=None, num_blocks: int = 1, max_thresholds: int = 4000):
    """``sweep``'s thresholds with, at each, which occurrences are hit ((T, occurrences) bool)
    and the false alarms in each block ((T, num_blocks) counts; ``peak_block``: each peak's
    block, all in block 0 by default)."""
    by_score = sorted(range(len(peaks)), key=lambda i: -peaks[i].score)
    thr = np.unique([peaks[i].score for i in by_score[: max_thresholds]])[::-1]
    over = overlaps(peaks, truth)  # computed once for every threshold
    block = np.zeros(len(peaks), np.int64) if peak_block is None else np.asarray(peak_block)
    hits = np.zeros((thr.size + 1, len(truth)), bool)
    fa = np.zeros((thr.size + 1, num_blocks), np.int32)
    above, n = [], 0  # indices of the peaks above the threshold, in time order
    for row, t in enumerate(thr, start=1):
        while n < len(by_score) and peaks[by_score[n]].score >= t:
            bisect.insort(above, by_score[n])
            n += 1
        fired = emitted_indices(peaks, above, refractory)
        best = best_per_occurrence(fired, peaks, over)
        hits[row, list(best)] = True
        used = set(best.values())
        fa[row] = np.bincount(block[[i for i in fired if i not in used]], minlength=num_blocks)
    return np.r_[1.01, thr], hits, fa


def emitted_indices(peaks: list[Detection], order: list[int], refractory: dict[str, float]) -> list[int]:
    """``emitted`` over ``peaks[i] for i in order`` (the peaks above the threshold, each keyword's
    in time order), as indices."""
    out, last = [], {}
    for i in order:
        d = peaks[i]
        if d.start - last.get(d.keyword, -np.inf) >= refractory[d.keyword] - 1e-9:
            last[d.keyword] = d.start
            out.append(i)
    return out


def operating_points(thr, miss, fah, peaks, truth, refractory):
    """At each FA/h target: the lowest threshold before FA/h first exceeds it, its FRR and the
    latency of its hits (emission time after the occurrence's end)."""
    rows = []
    for target in TARGETS:
        over = np.flatnonzero(fah > target)
        i = (over[0] if over.size else len(thr)) - 1
        best, _ = match(emitted(peaks, thr[i], refractory), truth)
        lat = [b.emitted - o.end for b, o in zip(best, truth) if b is not None]
        rows.append({"fa_per_hour": target, "threshold": float(thr[i]), "frr": float(miss[i]),
                     "fa_per_hour_actual": float(fah[i]),
                     "latency_median_s": float(np.median(lat)) if lat else None,
                     "latency_p90_s": float(np.quantile(lat, 0.9)) if lat else None,
                     "missed": [j for j, b in enumerate(best) if b is None]})
    return rows


def clip_rows(wakeword_dir, keywords) -> list[tuple[Path, str]]:
    """(audio path, enrolled keyword) of each clip of the development set whose keyword is
    enrolled: the same normalised words, so that --keywords Alexa finds the clips of 'alexa'
    (the exact text found none, and the real set silently had no occurrences)."""
    from pyadml.score.clips import read_clips  # imports torch: only when asked
    from pyadml.text import KeywordError, normalize_text

    enrolled = {tuple(normalize_text(k)): k for k in keywords}
    rows = []
    for path, kw, _ in read_clips(Path(wakeword_dir) / "clips.tsv"):
        try:
            k = enrolled.get(tuple(normalize_text(kw)))
        except KeywordError:
            continue  # no words: no enrolled keyword has them
        if k is not None:
            rows.append((path, k))
    return rows


def clip_peaks(spotter: KeywordSpotter, rows) -> np.ndarray:
    """(clips, keywords): each clip's highest peak per enrolled keyword, -1 without one."""
    scores = np.full((len(rows), len(spotter.keywords)), -1.0)
    col = {k: c for c, k in enumerate(spotter.keywords)}
    for r, (path, _) in enumerate(rows):
        with every_peak(spotter):
            dets = spotter.detect((load_audio(path, RATE), RATE), threshold=-1.0)
        for det in dets:
            scores[r, col[det.keyword]] = max(scores[r, col[det.keyword]], det.score)
    return scores


def _clip_metrics(rows, keywords, scores) -> dict:
    from pyadml.score.clips import clip_metrics

    col = {k: c for c, k in enumerate(keywords)}
    labels = np.zeros(scores.shape, np.int64)
    for r, (_, kw) in enumerate(rows):
        labels[r, col[kw]] = 1
    return clip_metrics(scores, labels)


def clip_scores(spotter: KeywordSpotter, wakeword_dir) -> dict:
    """The spotter on each real clip as recorded (silence and room sound included), every clip
    against every enrolled keyword: its highest peak per keyword (-1 without one), the score at
    which the keyword is first detected in the clip (nothing above that peak can suppress it);
    then the development set's protocol (AP, EER, AUC, top-1; pyadml.score.clips)."""
    rows = clip_rows(wakeword_dir, spotter.keywords)
    return _clip_metrics(rows, spotter.keywords, clip_peaks(spotter, rows))


_LOADED: dict[str, KeywordSpotter] = {}  # a worker process's spotter, loaded once


def _spotter(spec) -> KeywordSpotter:
    """A job's spotter: the caller's own (in this process), or loaded from (model, backend,
    keywords, options) in a worker process."""
    if isinstance(spec, KeywordSpotter):
        return spec
    if repr(spec) not in _LOADED:
        model, backend, keywords, options = spec
        _LOADED[repr(spec)] = KeywordSpotter.load(model, backend=backend, num_threads=1,
                                                  **options).enroll(list(keywords))
    return _LOADED[repr(spec)]


def _search_job(spec, background, occurrences, name, seed):
    """One stream built and searched."""
    audio, truth, bg_seconds, blocks = build_stream(background, occurrences, name, seed)
    return run_stream(_spotter(spec), audio), truth, bg_seconds, audio.size / RATE, blocks


def _clips_job(spec, rows):
    return clip_peaks(_spotter(spec), rows)


class _InProcess:
    """The executor interface, running each job at once in this process (``jobs`` 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        fut = Future()
        fut.set_result(fn(*args))
        return fut


def evaluate(model, data_dir, out_dir, keywords=KEYWORDS, wakeword_dev=None, backend=None,
             synth_reps: int = 2, seed: int = 0, log=sys.stdout, set_name=None,
             cohort: int = 0, cohort_top: int = 20, hop: float = 0.1, jobs: int = 1,
             **spotter_options) -> dict:
    """``data_dir``: a Kaldi dir (wav.scp, text), or with ``set_name`` a stage-1 manifest dir.
    ``spotter_options``: further KeywordSpotter options (window_scale, refractory). ``jobs`` > 1
    searches the streams and the real clips in that many processes (one thread each; the
    results are the same)."""
    out_dir = Path(out_dir)
    # The spotter enrols a keyword given twice once, but FA/h is false alarms per hour per
    # keyword of this list: a repeated one would divide them by one keyword too many.
    for i, k in enumerate(keywords):
        if k in keywords[:i]:
            raise SpotError(f"keyword {k!r} is given twice in the keywords ({','.join(keywords)}); "
                            "give each once (false alarms per hour are counted per keyword)")
    options = {"cohort": cohort, "cohort_top": cohort_top, "hop": hop, **spotter_options}
    spotter = _spotter((model, backend, keywords, options))
    if set_name:
        background = background_segments(data_dir, set_name, keywords, spotter.tokenizer)
    else:
        background = background_utterances(data_dir, keywords, spotter.tokenizer)
    if not background:
        raise SpotError(f"{data_dir}{' ' + set_name if set_name else ''}: no utterance without "
                        "an enrolled keyword")
    sets = {"synth": synth_occurrences(keywords, synth_reps, seed)}
    if wakeword_dev:
        sets["real"] = real_occurrences(wakeword_dev, keywords)
    refractory = {k: spotter.refractory_of(k) for k in keywords}
    report = {"keywords": list(keywords), "window_scale": spotter.window_scale,
              "enrol": "tts" if spotter.enrolment is not None else "none",
              "refractory_s": refractory, "floor_db": spotter.floor_db, "sets": {}}
    curves = {}
    if jobs > 1:
        # Spawned, not forked: the parent may hold onnxruntime sessions (the TTS voices).
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        spec = (model, backend, list(keywords), options)
    else:
        pool, spec = _InProcess(), spotter
    with pool:
        searched = {name: pool.submit(_search_job, spec, background, occ, name, seed)
                    for name, occ in sets.items()}
        # The clips in 2 x jobs parts after the streams: each process takes parts as it frees.
        rows = clip_rows(wakeword_dev, spotter.keywords) if wakeword_dev else []
        parts = np.array_split(np.arange(len(rows)), 2 * jobs if jobs > 1 else 1)
        peaks = [pool.submit(_clips_job, spec, [rows[i] for i in p]) for p in parts if p.size]
        searched = {name: f.result() for name, f in searched.items()}
        clips = (_clip_metrics(rows, spotter.keywords, np.concatenate([f.result() for f in peaks]))
                 if wakeword_dev else None)
    for name, (peaks, truth, bg_seconds, audio_seconds, blocks) in searched.items():
        hours = bg_seconds / 3600
        run = StreamRun(peaks, truth, blocks, refractory, len(keywords))
        thr, miss, fah = run.curve()
        curves[name] = (miss, fah)
        ops = operating_points(thr, miss, fah, peaks, truth, refractory)
        for r, ci in zip(ops, intervals(run, TARGETS)):
            r["frr_ci95"] = list(ci)
            r["false_alarms"] = int(round(r["fa_per_hour_actual"] * hours * len(keywords)))
        per_kw = {}
        for k in keywords:
            idx = [j for j, o in enumerate(truth) if o.keyword == k]
            per_kw[k] = {"occurrences": len(idx), "frr_at_1fa": float(np.mean(
                [j in ops[1]["missed"] for j in idx])) if idx else None}
        for r in ops:
            del r["missed"]
        report["sets"][name] = {"occurrences": len(truth), "stream_hours": audio_seconds / 3600,
                                "background_hours": hours, "operating_points": ops,
                                "per_keyword": per_kw}
        write_lines_atomic(out_dir / f"truth_{name}.tsv",
                           [f"{o.keyword}\t{o.start:.3f}\t{o.end:.3f}" for o in truth])
        write_lines_atomic(out_dir / f"blocks_{name}.tsv",
                           [f"{a:.5f}\t{h:.5f}" for a, h in blocks])
        write_lines_atomic(out_dir / f"peaks_{name}.tsv",
                           [f"{d.keyword}\t{d.start:.2f}\t{d.end:.2f}\t{d.score:.4f}\t{d.emitted:.2f}"
                            for d in peaks])
        print(f"{name}: {len(truth)} occurrences in {audio_seconds / 3600:.2f} h "
              f"({hours:.2f} h background): " + "; ".join(
                  f"FRR {100 * r['frr']:.1f}% at {r['fa_per_hour']} FA/h" for r in ops), file=log)
    if clips:
        m = report["real_clips"] = clips
        print(f"real clips as recorded ({m['clips']}, each against every keyword): AP "
              f"{100 * m['AP']:.2f}% EER {100 * m['EER']:.2f}% AUC {100 * m['AUC']:.2f}% "
              f"top-1 {100 * m['top1']:.1f}%", file=log)
    _plot(curves, out_dir / "det.png")
    write_text_atomic(out_dir / "metrics.json", json.dumps(report, indent=1) + "\n")
    write_text_atomic(out_dir / "results.md", results_md(report))
    return report


def results_md(report) -> str:
    lines = ["| set | occurrences | background h | FRR @0.5 FA/h | FRR @1 FA/h | FRR @2 FA/h |",
             "|---|---|---|---|---|---|"]
    for name, s in report["sets"].items():
        ops = s["operating_points"]
        lines.append(f"| {name} | {s['occurrences']} | {s['background_hours']:.2f} | "
                     + " | ".join(f"{100 * r['frr']:.1f}%" + _ci(r) for r in ops) + " |")
    if any("frr_ci95" in r for s in report["sets"].values() for r in s["operating_points"]):
        lines += ["", "In brackets: the 95% interval over the streams' background utterances "
                  "(pyadml.spot.bootstrap). False alarms that set each operating point: "
                  + "; ".join(f"{name} " + " / ".join(str(r.get("false_alarms", "-"))
                                                        for r in s["operating_points"])
                              for name, s in report["sets"].items()) + "."]
    lines += ["", "Latency after the keyword's end (hits at the operating point), median / p90:", "",
              "| set | @0.5 FA/h | @1 FA/h | @2 FA/h |", "|---|---|---|---|"]
    for name, s in report["sets"].items():
        cells = []
        for r in s["operating_points"]:
            cells.append("-" if r["latency_median_s"] is None else
                         f"{1000 * r['latency_median_s']:.0f} / {1000 * r['latency_p90_s']:.0f} ms")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    m = report.get("real_clips")
    if m:
        lines += ["", f"The spotter on each real clip as recorded ({m['clips']} clips, each against "
                  "every keyword; its best detection's score): AP "
                  f"{100 * m['AP']:.2f}%, EER {100 * m['EER']:.2f}%, AUC {100 * m['AUC']:.2f}%, "
                  f"top-1 {100 * m['top1']:.1f}%."]
    lines += ["", f"Window scale {report['window_scale']:g}; refractory time "
              + ", ".join(f"{k} {v:.2f} s" for k, v in report["refractory_s"].items()) + "."
              + (f" Features floored {report['floor_db']:g} dB below each window's loudest."
                 if report.get("floor_db") else "")
              + (" Keywords enrolled by their text and TTS voices (--enrol tts)."
                 if report.get("enrol") == "tts" else " Keywords enrolled by their text alone.")]
    return "\n".join(lines) + "\n"


def _ci(r) -> str:
    if "frr_ci95" not in r:
        return ""
    lo, hi = r["frr_ci95"]
    return f" ({100 * lo:.1f}-{100 * hi:.1f})"


def _plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyadml.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (miss, fah) in curves.items():
        ax.step(np.maximum(fah, 1e-2), 100 * miss, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour per keyword")
    ax.set_ylabel("miss rate (%)")
    ax.set_xlim(1e-2, 1e3)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--backend", choices=("torch", "onnx"))
    p.add_argument("--data", required=True, help="Kaldi dir of held-out-voice utterances, or "
                   "with --set the stage-1 manifest dir")
    p.add_argument("--set", help="background set <corpus>_<part> in the --data manifest dir")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--keywords", default=",".join(KEYWORDS))
    p.add_argument("--wakeword-dev", help="real recordings (clips.tsv + audio/); measure only")
    p.add_argument("--synth-reps", type=int, default=2)
    p.add_argument("--cohort", type=int, default=0, help="cohort score normalisation: the "
                   "number of cohort words (KeywordSpotter's cohort; 0: off)")
    p.add_argument("--cohort-top", type=int, default=20, help="cohort cosines averaged per window")
    p.add_argument("--hop", type=float, default=0.1, help="window hop in seconds")
    p.add_argument("--window-scale", type=float, help="KeywordSpotter's window_scale (default its own)")
    p.add_argument("--refractory", type=float, help="seconds (default: each keyword's window length)")
    add_floor_args(p)
    add_enrol_args(p, default=DETECT_ENROL)
    p.add_argument("--jobs", type=int, default=1, help="processes for the streams and the clips "
                   "(one thread each; the same results)")
    args = p.parse_args(argv)
    from pyadml.score.pairs import PairsError

    try:
        evaluate(args.model, args.data, args.out_dir, [k.strip() for k in args.keywords.split(",")],
                 args.wakeword_dev, args.backend, args.synth_reps, set_name=args.set,
                 cohort=args.cohort, cohort_top=args.cohort_top, hop=args.hop,
                 refractory=args.refractory, window_scale=args.window_scale, jobs=args.jobs,
                 floor_db=args.floor_db, enrol=args.enrol, enrol_voices=args.enrol_voices,
                 enrol_weight=args.enrol_weight)
    except (SpotError, SetNotFound, PairsError) as e:
        print(f"eval_continuous: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
