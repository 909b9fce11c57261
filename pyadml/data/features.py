"""Stage 4: 40-dim log-mel filterbank (25 ms window, 10 ms shift) stored with lilcom.

Features are stored raw; per-utterance mean normalisation happens when they are loaded
(pyadml.data.dataset), so one archive serves any normalisation.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Sequence

import yaml

from pyadml.fileio import as_disk_full, atomic_path

# lhotse (and torch) load only where features are computed: split and merge handle manifests as
# JSON lines, so that they and the jobs of steps/make_fbank_sets.sh with nothing to do start fast.

_FBANK_KEYS = {"num_mel_bins", "frame_length", "frame_shift", "dither", "low_freq", "high_freq",
               "snip_edges", "energy_floor", "sampling_rate"}


# Keys of a model's features (final.pt, exp/<tag>/fbank.yaml) that are its front end after the
# fbank, not fbank options: per-utterance mean normalisation and the level-relative floor of
# training (pyadml.score.floor).
FRONT_END_KEYS = ("mean_norm", "floor_db")


def fbank_options(features: dict) -> dict:
    """A model's features without its front-end keys: the fbank options alone."""
    return {k: v for k, v in features.items() if k not in FRONT_END_KEYS}


def mel_range(features: dict) -> tuple[float, float]:
    """The fbank's mel range in Hz from its options: low_freq, and high_freq (<= 0 counts from
    Nyquist, as in Kaldi); lhotse's defaults 20 and -400 where not given."""
    rate = float(features.get("sampling_rate", 16000))
    low = float(features.get("low_freq", 20.0))
    high = float(features.get("high_freq", -400.0))
    return low, (high if high > 0 else rate / 2 + high)


def fbank_extractor(config: str | os.PathLike | dict | None = None):
    """lhotse Fbank from conf/fbank.yaml (or a dict); defaults are the paper's features."""
    from lhotse import Fbank, FbankConfig

    cfg = {"num_mel_bins": 40, "frame_length": 0.025, "frame_shift": 0.01, "dither": 0.0}
    if config is not None:
        given = config if isinstance(config, dict) else yaml.safe_load(Path(config).read_text())
        unknown = set(given or {}) - _FBANK_KEYS
        if unknown:
            raise ValueError(f"{config}: unknown fbank option(s) {sorted(unknown)}; "
                             f"expected some of {sorted(_FBANK_KEYS)}")
        cfg.update(given or {})
    return Fbank(FbankConfig(**cfg))


def save_cuts(cuts, path: str | os.PathLike) -> None:
    """Write a CutSet atomically; the temporary name keeps the .jsonl.gz suffix lhotse needs."""
    path = Path(path)
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + ".jsonl.gz")
        try:
            cuts.to_file(staged)
            os.replace(staged, tmp)
        finally:
            if staged.exists():
                staged.unlink()


def _read_lines(path: str | os.PathLike) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line for line in f if line.strip()]


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with atomic_path(path) as tmp:
        # mtime=0: the same cuts give the same bytes
        with gzip.GzipFile(tmp, "wb", mtime=0) as raw:
            raw.write("".join(lines).encode("utf-8"))


RUNS_FILE = "runs.txt.gz"


def _recording_key(line: str) -> str:
    cut = json.loads(line)
    rec = cut.get("recording")
    return rec["id"] if isinstance(rec, dict) and "id" in rec else cut["id"]


def split_cuts(cuts_path: str | os.PathLike, num_splits: int, out_dir: str | os.PathLike,
               interleave: bool = False) -> list[Path]:
    """``out_dir/cuts.{1..N}.jsonl.gz``, contiguous and in order, so that merging restores it.
    ``interleave``: run k of consecutive cuts of one recording goes to part k mod N instead, so
    every part gets an even share of a manifest whose parts differ in cost (stage 3 writes the
    clean cuts first and the augmented ones after: the contiguous second half took 76 s against
    48 s for the first, RESULTS.md), while a recording's word cuts stay in one part: a recording
    read through a command (sph2pipe, sph2wav, ffmpeg) is then decoded by one job, not by up to
    N. ``out_dir/runs.txt.gz`` lists each run's part and length, in order, for ``merge_cuts``."""
    lines = _read_lines(cuts_path)
    if not lines:
        raise ValueError(f"{cuts_path} holds no cuts")
    if not interleave:
        num_splits = max(1, min(num_splits, len(lines)))
        bounds = [round(i * len(lines) / num_splits) for i in range(num_splits + 1)]
        chunks = [lines[bounds[i]:bounds[i + 1]] for i in range(num_splits)]
    else:
        keys = [_recording_key(x) for x in lines]
        starts = [i for i in range(len(lines)) if i == 0 or keys[i] != keys[i - 1]]
        runs = list(zip(starts, starts[1:] + [len(lines)]))
        num_splits = max(1, min(num_splits, len(runs)))
        chunks = [[] for _ in range(num_splits)]
        for k, (a, b) in enumerate(runs):
            chunks[k % num_splits] += lines[a:b]
        _write_lines(Path(out_dir) / RUNS_FILE,
                     [f"{k % num_splits + 1} {b - a}\n" for k, (a, b) in enumerate(runs)])
    paths = []
    for i, chunk in enumerate(chunks):
        p = Path(out_dir) / f"cuts.{i + 1}.jsonl.gz"
        _write_lines(p, chunk)
        paths.append(p)
    return paths


def compute_fbank(
    cuts_path: str | os.PathLike, storage_path: str | os.PathLike, out_path: str | os.PathLike,
    config: str | os.PathLike | dict | None = None,
):
    """Compute features for every cut (augmentations are applied as the audio loads).

    The archive (``storage_path`` + ``.lca``) is written under a temporary name and renamed into
    place before the manifest, which is written atomically last: a killed job leaves no manifest,
    and never a manifest pointing at a partial archive.
    """
    import numpy as np
    from lhotse import CutSet, LilcomChunkyWriter
    from lhotse.caching import AudioCache
    from lhotse.utils import fastcopy

    import pyadml.data.augment  # noqa: F401  registers SpeedPerturb/BandLimit with lhotse

    current = []  # the cut whose features are being computed (lhotse writes under a uuid)

    class Tracked:
        def __init__(self, cuts):
            self.cuts = cuts

        def __len__(self):
            return len(self.cuts)

        def __iter__(self):
            for cut in self.cuts:
                current[:] = [cut]
                yield cut

    class FiniteWriter(LilcomChunkyWriter):
        """lilcom stopped on a NaN or an infinity with 'cannot convert float NaN to integer',
        naming no cut or file; the cut is named instead."""

        def write(self, key, value, *args, **kwargs):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            if bad:
                raise _NonFiniteFeatures(current[0] if current else None, bad)
            return super().write(key, value, *args, **kwargs)

    # A recording read through a command (sph2pipe, sph2wav) is decoded whole for every word cut
    # of it; lhotse's cache keeps the last 100 outputs (500 MB at most), so once per recording.
    AudioCache.enable()
    cuts = CutSet.from_file(cuts_path)
    storage_path = Path(storage_path).resolve()  # manifests must load from any directory
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    final = storage_path if storage_path.suffix == ".lca" else Path(f"{storage_path}.lca")
    # LilcomChunkyWriter appends ".lca": this writes <final>.tmp<pid>.lca
    staged = final.with_name(f"{final.name}.tmp{os.getpid()}.lca")
    try:
        try:
            with_feats = CutSet(Tracked(cuts)).compute_and_store_features(
                extractor=fbank_extractor(config), storage_path=str(staged), num_jobs=1,
                storage_type=FiniteWriter,
            ).to_eager()
        except _NonFiniteFeatures as e:
            raise RuntimeError(
                f"{cuts_path}: cut {e.cut.id if e.cut else '?'}: {e.count} of its fbank values "
                f"are NaN or infinite (training on them would turn the model's weights into "
                f"NaN); {_non_finite_sources(e.cut) if e.cut else ''}") from None
        with_feats = CutSet.from_cuts(
            fastcopy(c, features=fastcopy(c.features, storage_path=str(final)))
            if c.features.storage_path == str(staged) else c
            for c in with_feats)
        stray = sorted({c.features.storage_path for c in with_feats} - {str(final)})
        if stray:  # the rewrite above missed them: the manifest would point at a removed file
            raise RuntimeError(f"features stored outside {staged}: {stray}")
        # lhotse skips a cut whose audio (or an augmentation's noise) fails to load, with only a
        # warning: a set would lose cuts, or all of them, and the stage still succeed.
        lost = sorted(set(cuts.ids) - set(with_feats.ids))
        if lost:
            raise RuntimeError(
                f"{cuts_path}: {len(lost)} of {len(cuts)} cuts got no features, their audio or "
                f"an augmentation's source failed to load (lhotse's warnings above say why): "
                f"{', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}"
                f"{_load_error(next(c for c in cuts if c.id == lost[0]))}")
        os.replace(staged, final)
    except Exception as e:
        # lhotse's writer says only "[Errno 28] No space left on device", after a traceback
        full = as_disk_full(e, final, staged)
        if full is None:
            raise
        raise full from e
    finally:
        if staged.exists():
            staged.unlink()
    save_cuts(with_feats, out_path)
    return with_feats


class _NonFiniteFeatures(ValueError):
    def __init__(self, cut, count: int):
        super().__init__(f"cut {cut.id if cut else '?'}: {count} NaN or infinite fbank values")
        self.cut, self.count = cut, count


def _non_finite_sources(cut) -> str:
    """Which of the files a cut reads (its recording, and an augmentation's noise tracks and
    RIR) hold NaN or infinite samples (a float wav), or else all of them."""
    import numpy as np
    import soundfile as sf

    sources = []

    def walk(x):
        if isinstance(x, dict):
            if x.get("type") == "file" and isinstance(x.get("source"), str):
                sources.append(x["source"])
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(cut.to_dict())
    sources = list(dict.fromkeys(sources))
    bad = []
    for path in sources:
        try:
            x, _ = sf.read(path, dtype="float32", always_2d=True)
        except Exception:  # noqa: BLE001  unreadable here: it is listed below with the others
            continue
        n = int(x.size - np.count_nonzero(np.isfinite(x)))
        if n:
            bad.append(f"{path} holds {n} NaN or infinite samples")
    if bad:
        return "; ".join(bad) + ": replace or remove it"
    return f"the files it reads: {', '.join(sources) or 'none'}"


def _load_error(cut) -> str:
    """'; the first: <why>' for a cut whose audio fails to load again (the job log's last lines
    then name the missing file, not only lhotse's warning far above them), else ''."""
    try:
        cut.load_audio()
    except Exception as e:  # lhotse raises several types for a missing or unreadable source
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        # lhotse's message is pages of call chains: keep its lines that name the file and why
        keep = [x for x in lines if "Reading audio from" in x or "Errno" in x] or lines[:1]
        return f"; the first: {' '.join(x[:200] for x in keep[:3])}"
    return ""


def merge_cuts(parts: Sequence[str | os.PathLike], out_path: str | os.PathLike,
               interleave: bool = False, runs: str | os.PathLike | None = None) -> int:
    """Concatenate manifests in the order given, or with ``interleave`` take one cut of each
    part in turn (a split of single cuts), or, given the split's ``runs`` file, each run from
    its part in turn: the inverse of ``split_cuts(interleave=True)``. Returns the cut count."""
    per_part = [_read_lines(p) for p in parts]
    sizes = [len(x) for x in per_part]
    if interleave and runs is not None:
        order, taken = [], [0] * len(parts)
        for n, line in enumerate(_read_lines(runs), 1):
            try:
                part, count = (int(v) for v in line.split())
            except ValueError:
                raise ValueError(f"{runs}:{n}: expected '<part> <cuts>', got {line!r}") from None
            if not 1 <= part <= len(parts) or count < 1 or taken[part - 1] + count > sizes[part - 1]:
                raise ValueError(f"{runs}:{n}: {count} cuts of part {part} do not match parts of "
                                 f"{sizes} cuts: {', '.join(map(str, parts))}")
            order += [(part - 1, taken[part - 1] + j) for j in range(count)]
            taken[part - 1] += count
        if taken != sizes:
            raise ValueError(f"{runs} covers {taken} cuts of parts of {sizes}: "
                             f"{', '.join(map(str, parts))}")
    elif interleave:
        # split_cuts gives the first len % N parts one cut more than the others.
        if sizes and (sizes != sorted(sizes, reverse=True) or sizes[0] - sizes[-1] > 1):
            raise ValueError(f"parts of {sizes} cuts are not an interleaved split: "
                             f"{', '.join(map(str, parts))}")
        order = [(i, j) for j in range(max(sizes, default=0)) for i in range(len(parts))
                 if j < sizes[i]]
    else:
        order = [(i, j) for i in range(len(parts)) for j in range(sizes[i])]
    lines, ids = [], set()
    for i, j in order:
        line = per_part[i][j]
        cut_id = json.loads(line)["id"]
        if cut_id in ids:
            raise ValueError(f"{parts[i]}:{j + 1}: cut id {cut_id!r} appears twice across the parts")
        ids.add(cut_id)
        lines.append(line)
    _write_lines(Path(out_path), lines)
    return len(lines)
