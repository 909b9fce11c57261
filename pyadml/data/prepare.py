"""Stage 1: corpus preparation into lhotse manifests, one ``prepare_<corpus>()`` per corpus.

Each function validates its input and returns the manifests; with ``output_dir`` it also writes
``<corpus>_{recordings,supervisions}_<part>.jsonl.gz`` there, atomically. Every problem in the
input raises :class:`CorpusError` naming the file (``file:line`` where there is a line) and what
was expected; nothing is dropped or resampled silently.

Kaldi data directories are parsed here rather than by ``lhotse.kaldi.load_kaldi_data_dir``:
that loader floors durations to milliseconds (so ``num_samples`` drifts from the file's), drops
unreadable recordings with a warning, needs ``kaldi_native_io`` for pipes and reports no line
numbers. The manifests are lhotse's own classes all the same, checked at the end by lhotse's
``validate_recordings_and_supervisions``.
"""

from __future__ import annotations

import bisect
import csv
import functools
import gzip
import io
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import soundfile as sf
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource
from lhotse.qa import validate_recordings_and_supervisions
from lhotse.supervision import AlignmentItem

from pyadml.fileio import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "CorpusError",
    "LIBRIPHRASE_COLUMNS",
    "LIBRIPHRASE_TYPES",
    "prepare_kaldi_dir",
    "prepare_king_asr_066",
    "prepare_wsj",
    "prepare_libriphrase",
    "prepare_musan",
    "prepare_rir_noise",
    "read_sphere_header",
    "write_manifest",
]

SAMPLING_RATE = 16000
TIME_TOLERANCE = 0.01  # seconds a CTM word or segment may run past the end of its audio

LIBRIPHRASE_COLUMNS = (
    "anchor", "anchor_spk", "anchor_text", "anchor_dur", "comparison", "comparison_spk",
    "comparison_text", "comparison_dur", "type", "target", "class",
)
# type -> the target it implies; LibriPhrase ships diffspk_* (samespk_* follows the same rule).
LIBRIPHRASE_TYPES = {
    f"{spk}_{kind}": int(kind == "positive")
    for spk in ("diffspk", "samespk")
    for kind in ("positive", "easyneg", "hardneg")
}


class CorpusError(ValueError):
    """A corpus input is missing or malformed; the message names the file (and line)."""


# ----------------------------------------------------------------------------------------------
# small helpers


def _where(path: str | os.PathLike, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _number(text: str, what: str, where: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise CorpusError(f"{where}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(x):
        raise CorpusError(f"{where}: {what} must be finite, got {text!r}")
    return x


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers."""
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e})") from None


def _kaldi_table(
    path: Path, fields: int | None = None, rest: bool = False,
) -> dict[str, tuple[list[str] | str, int]]:
    """A Kaldi ``<key> <value...>`` file as {key: (value, line)}.

    ``rest``: the value is the rest of the line (wav.scp, text); otherwise ``fields`` is the
    exact field count including the key.
    """
    table: dict[str, tuple[list[str] | str, int]] = {}
    for n, line in _lines(path):
        if rest:
            parts = line.strip().split(maxsplit=1)
            value: list[str] | str = parts[1] if len(parts) > 1 else ""
        else:
            parts = line.split()
            if fields is not None and len(parts) != fields:
                raise CorpusError(
                    f"{_where(path, n)}: expected {fields} fields, found {len(parts)}: {line.strip()!r}")
            value = parts[1:]
        key = parts[0]
        if key in table:
            raise CorpusError(f"{_where(path, n)}: {key!r} repeats line {table[key][1]}")
        table[key] = (value, n)
    return table


def write_manifest(path: str | os.PathLike, items: Iterable) -> Path:
    """Write lhotse manifest items (or plain dicts) as gzipped JSON lines, atomically.

    The gzip header carries no timestamp or name, so the same manifest gives the same bytes.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
            with io.TextIOWrapper(gz, encoding="utf-8") as f:
                for item in items:
                    d = item if isinstance(item, dict) else item.to_dict()
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def _write_pair(output_dir, corpus: str, part: str, recordings, supervisions) -> None:
    if output_dir is None:
        return
    out = Path(output_dir)
    write_manifest(out / f"{corpus}_recordings_{part}.jsonl.gz", recordings)
    write_manifest(out / f"{corpus}_supervisions_{part}.jsonl.gz", supervisions)


def _lhotse_validate(recordings, supervisions, where: str) -> None:
    try:
        validate_recordings_and_supervisions(recordings, supervisions)
    except AssertionError as e:
        raise CorpusError(f"{where}: lhotse validation failed: {e}") from None


# ----------------------------------------------------------------------------------------------
# audio probing


def read_sphere_header(path: str | os.PathLike) -> dict[str, int | float | str]:
    """The fields of a NIST SPHERE header (``name -i 1``, ``-r 1.0``, ``-sN text``)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(b"NIST_1A"):
            raise CorpusError(f"{path}: not a NIST SPHERE file (no NIST_1A magic)")
        lines = head.split(b"\n")
        try:
            size = int(lines[1])
        except (IndexError, ValueError):
            raise CorpusError(f"{path}: SPHERE header size is not a number") from None
        if size > len(head):
            head += f.read(size - len(head))
    fields: dict[str, int | float | str] = {}
    for raw in head[:size].split(b"\n")[2:]:
        line = raw.decode("ascii", "replace").strip()
        if line == "end_head":
            return fields
        parts = line.split(maxsplit=2)
        if len(parts) < 3:
            continue
        name, kind, value = parts
        try:
            fields[name] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
        except ValueError:
            raise CorpusError(f"{path}: SPHERE header field {name} has a bad value {value!r}") from None
    raise CorpusError(f"{path}: SPHERE header has no end_head within {size} bytes")


@dataclass
class _Audio:
    source: AudioSource
    sampling_rate: int
    num_samples: int
    num_channels: int

    def recording(self, rec_id: str) -> Recording:
        return Recording(
            id=rec_id, sources=[self.source], sampling_rate=self.sampling_rate,
            num_samples=self.num_samples, duration=self.num_samples / self.sampling_rate,
            channel_ids=list(range(self.num_channels)),
        )


@functools.lru_cache(maxsize=64)
def _which(name: str, path_env: str | None) -> str | None:
    return shutil.which(name, path=path_env)


def _on_path(name: str) -> bool:
    # Cached per PATH value: a wav.scp may name the same decoder on every line.
    return _which(name, os.environ.get("PATH")) is not None


def _sphere_pipe(path: str, where: str) -> _Audio:
    """A sph2pipe command source for a SPHERE file soundfile cannot decode (shorten)."""
    hdr = read_sphere_header(path)
    if not _on_path("sph2pipe"):
        raise CorpusError(f"{where}: {path} is shorten-compressed SPHERE "
                          f"(sample_coding {hdr.get('sample_coding')}); put sph2pipe on PATH to read it")
    missing = [k for k in ("sample_count", "sample_rate", "channel_count") if k not in hdr]
    if missing:
        raise CorpusError(f"{where}: {path}: SPHERE header lacks {', '.join(missing)}")
    # The name, not sph2pipe's absolute path, keeps the manifest usable on another machine.
    cmd = f"sph2pipe -f wav {shlex.quote(path)}"
    n_ch = int(hdr["channel_count"])
    return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                  int(hdr["sample_rate"]), int(hdr["sample_count"]), n_ch)


def _is_shorten(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            if f.read(7) != b"NIST_1A":
                return False
        return "shorten" in str(read_sphere_header(path).get("sample_coding", ""))
    except (OSError, CorpusError):
        return False


def _probe_file(path: str, where: str) -> _Audio:
    try:
        info = sf.info(path)
    except Exception as e:  # libsndfile raises several types for unreadable input
        if not os.path.isfile(path):
            raise CorpusError(f"{where}: audio file {path} does not exist") from None
        if _is_shorten(path):
            return _sphere_pipe(path, where)
        raise CorpusError(f"{where}: {path} is not readable audio ({e})") from None
    return _Audio(AudioSource(type="file", channels=list(range(info.channels)), source=path),
                  int(info.samplerate), int(info.frames), int(info.channels))


_SPH2PIPE_VALUED = {"-h", "-f", "-c", "-t", "-s"}


def _probe_pipe(cmd: str, where: str) -> _Audio:
    """A Kaldi ``... |`` command; sph2pipe of one file is sized from its SPHERE header,
    anything else is run once and its wav output inspected."""
    try:
        tokens = shlex.split(cmd)
    except ValueError as e:
        raise CorpusError(f"{where}: cannot parse the command {cmd!r} ({e})") from None
    if not tokens:
        raise CorpusError(f"{where}: empty command before '|'")
    if not _on_path(tokens[0]):
        raise CorpusError(f"{where}: command {tokens[0]!r} is not on PATH")
    source = AudioSource(type="command", channels=[0], source=cmd)
    simple = not any(c in cmd for c in "|;&<>`$")
    if simple and os.path.basename(tokens[0]) == "sph2pipe":
        opts, files, i = {}, [], 1
        while i < len(tokens):
            if tokens[i] in _SPH2PIPE_VALUED and i + 1 < len(tokens):
                opts[tokens[i]] = tokens[i + 1]
                i += 2
            else:
                if not tokens[i].startswith("-"):
                    files.append(tokens[i])
                i += 1
        if len(files) == 1 and not ({"-t", "-s"} & opts.keys()):
            if not os.path.isfile(files[0]):
                raise CorpusError(f"{where}: audio file {files[0]} does not exist")
            hdr = read_sphere_header(files[0])
            n_ch = 1 if "-c" in opts else int(hdr.get("channel_count", 1))
            try:
                return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                              int(hdr["sample_rate"]), int(hdr["sample_count"]), n_ch)
            except KeyError as e:
                raise CorpusError(f"{where}: {files[0]}: SPHERE header lacks {e}") from None
    proc = subprocess.run(cmd, shell=True, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        tail = proc.stderr.decode(errors="replace").strip()[-300:]
        raise CorpusError(f"{where}: command {cmd!r} failed (exit {proc.returncode}): {tail}")
    try:
        info = sf.info(io.BytesIO(proc.stdout))
    except Exception as e:
        raise CorpusError(f"{where}: output of {cmd!r} is not readable audio ({e})") from None
    source.channels = list(range(info.channels))
    return _Audio(source, int(info.samplerate), int(info.frames), int(info.channels))


def _probe(spec: str, where: str, sampling_rate: int) -> _Audio:
    """Check one wav.scp-style entry: exists, readable, non-empty, at the expected rate."""
    spec = spec.strip()
    if spec.endswith("|"):
        audio = _probe_pipe(spec[:-1].strip(), where)
        name = spec
    else:
        name = spec if os.path.isabs(spec) else os.path.abspath(spec)
        audio = _probe_file(name, where)
    if audio.num_samples <= 0:
        raise CorpusError(f"{where}: {name} is empty (0 samples)")
    if audio.sampling_rate != sampling_rate:
        raise CorpusError(f"{where}: {name} has sample rate {audio.sampling_rate} Hz; expected "
                          f"{sampling_rate} Hz (resample the corpus first; it is not done silently)")
    return audio


# ----------------------------------------------------------------------------------------------
# utterances and CTM alignments


@dataclass
class _Utt:
    id: str
    recording: Recording
    start: float  # in the recording
    duration: float
    words: list[str]
    where: str  # the text line
    speaker: str | None = None
    gender: str | None = None
    aligned: list[AlignmentItem] = field(default_factory=list)


@dataclass
class _CtmWord:
    key: str
    start: float
    duration: float
    word: str
    line: int


def _parse_ctm(path: Path) -> list[_CtmWord]:
    """CTM lines ``<utt> <channel> <start> <duration> <word> [<confidence>]`` (syntax only)."""
    if not path.is_file():
        raise CorpusError(f"{path}: CTM file does not exist")
    words = []
    for n, line in _lines(path):
        parts = line.split()
        try:  # the common case, without building an error location per line
            start, dur = float(parts[2]), float(parts[3])
            ok = len(parts) in (5, 6) and math.isfinite(start) and math.isfinite(dur) and dur > 0
        except (ValueError, IndexError):
            ok = False
        if not ok:
            where = _where(path, n)
            if len(parts) not in (5, 6):
                raise CorpusError(f"{where}: expected 5 or 6 fields "
                                  f"'<utt> <channel> <start> <duration> <word> [<conf>]', found "
                                  f"{len(parts)}: {line.strip()!r}")
            _number(parts[2], "start", where)
            if _number(parts[3], "duration", where) <= 0:
                raise CorpusError(f"{where}: duration must be positive, got {parts[3]}")
        words.append(_CtmWord(parts[0], start, dur, parts[4], n))
    return words


def _attach_ctm(
    path: Path, words: list[_CtmWord], utts: dict[str, _Utt], skip_keys: set[str] = frozenset(),
    aliases: dict[str, list[str]] | None = None,
) -> None:
    """Check CTM words against utterances and store them in ``utt.aligned`` (recording times).

    A CTM key is an utterance id (times relative to the utterance, i.e. to its segment), or,
    with segments, a recording id (times relative to the recording; each word goes to the
    segment that holds it). ``skip_keys``: keys whose lines are ignored; ``aliases``: a key
    naming several utterances (one per microphone).
    """
    by_rec: dict[str, list[_Utt]] = defaultdict(list)
    for u in utts.values():
        by_rec[u.recording.id].append(u)
    for us in by_rec.values():
        us.sort(key=lambda u: u.start)
    starts = {r: [u.start for u in us] for r, us in by_rec.items()}
    segmented = any(u.id != u.recording.id for u in utts.values())
    per_utt: dict[str, list[_CtmWord]] = defaultdict(list)

    for w in words:
        targets = aliases.get(w.key, [w.key]) if aliases else [w.key]
        if all(t in utts for t in targets):
            for t in targets:
                u = utts[t]
                end = w.start + w.duration
                if w.start < 0 or w.start >= u.duration or end > u.duration + TIME_TOLERANCE:
                    raise CorpusError(
                        f"{_where(path, w.line)}: word {w.word!r} at {w.start:.3f}-{end:.3f} s lies "
                        f"outside utterance {t} (0-{u.duration:.3f} s)")
                per_utt[t].append(_CtmWord(t, u.start + w.start, w.duration, w.word, w.line))
        elif segmented and w.key in by_rec:
            # Recording-keyed CTM over a segmented directory: find the holding segment.
            us = by_rec[w.key]
            i = bisect.bisect_right(starts[w.key], w.start + TIME_TOLERANCE) - 1
            end = w.start + w.duration
            seg_end = us[i].start + us[i].duration if i >= 0 else 0.0
            if w.start < 0 or i < 0 or w.start >= seg_end or end > seg_end + TIME_TOLERANCE:
                raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} at {w.start:.3f}-{end:.3f} s of "
                                  f"recording {w.key} lies in none of its segments")
            per_utt[us[i].id].append(_CtmWord(us[i].id, max(w.start, us[i].start), w.duration,
                                              w.word, w.line))
        elif w.key in skip_keys:
            continue
        else:
            raise CorpusError(f"{_where(path, w.line)}: utterance {w.key!r} is not in the corpus (no such "
                              f"utterance id in its text/transcripts)")

    for u in utts.values():
        got = sorted(per_utt.get(u.id, []), key=lambda w: w.start)
        for k, w in enumerate(got):
            if k >= len(u.words):
                raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} is word {k + 1} of "
                                  f"utterance {u.id}, whose text ({u.where}) has only {len(u.words)}")
            if w.word.lower() != u.words[k].lower():
                raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} does not match word "
                                  f"{k + 1} {u.words[k]!r} of utterance {u.id} in {u.where}")
        if len(got) < len(u.words):
            raise CorpusError(f"{u.where}: utterance {u.id} has {len(u.words)} words but {path} "
                              f"aligns {len(got)} of them")
        end = u.start + u.duration
        # Within the tolerance a word may overhang; clip it so cuts stay inside the audio.
        u.aligned = [AlignmentItem(symbol=w.word.lower(), start=round(w.start, 6),
                                   duration=round(min(w.duration, end - w.start), 6)) for w in got]


def _supervisions(utts: Iterable[_Utt], with_alignment: bool) -> SupervisionSet:
    return SupervisionSet.from_segments(
        SupervisionSegment(
            id=u.id, recording_id=u.recording.id, start=round(u.start, 6),
            duration=round(u.duration, 6), channel=0, text=" ".join(u.words).lower(),
            speaker=u.speaker, gender=u.gender,
            alignment={"word": u.aligned} if with_alignment else None,
        )
        for u in utts
    )


# ----------------------------------------------------------------------------------------------
# Kaldi data directories


def _need_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CorpusError(f"{path}: missing {what}")
    return path


def prepare_kaldi_dir(
    data_dir: str | os.PathLike,
    ctm: str | os.PathLike | None = None,
    corpus: str = "kaldi",
    part: str = "train",
    output_dir: str | os.PathLike | None = None,
    sampling_rate: int = SAMPLING_RATE,
) -> dict:
    """A Kaldi data directory (wav.scp, text, utt2spk, optional segments and spk2gender) plus
    an optional word CTM, as ``dict(recordings=RecordingSet, supervisions=SupervisionSet)``.

    wav.scp entries are file paths (relative ones are taken from the current directory, as in
    Kaldi, and stored absolute) or commands ending in ``|``. Every recording is opened and must
    be non-empty at ``sampling_rate``. Supervision text is lower-cased; with a CTM each
    supervision carries ``alignment["word"]`` with times relative to the recording, and the CTM
    words of each utterance must spell its text (case-insensitively). The CTM may be keyed by
    utterance (segment) ids, times relative to the segment, or by recording ids.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CorpusError(f"{data_dir}: Kaldi data directory does not exist")
    wav_scp = _need_file(data_dir / "wav.scp", "wav.scp (<recording-id> <path or command |>)")
    text_f = _need_file(data_dir / "text", "text (<utterance-id> <words>)")
    utt2spk_f = _need_file(data_dir / "utt2spk", "utt2spk (<utterance-id> <speaker>)")
    wavs = _kaldi_table(wav_scp, rest=True)
    texts = _kaldi_table(text_f, rest=True)
    spks = _kaldi_table(utt2spk_f, fields=2)
    genders = {}
    if (data_dir / "spk2gender").is_file():
        genders = {s: g[0] for s, (g, _) in _kaldi_table(data_dir / "spk2gender", fields=2).items()}

    for utt, (_, n) in texts.items():
        if utt not in spks:
            raise CorpusError(f"{_where(text_f, n)}: utterance {utt} has no speaker in {utt2spk_f}")
    for utt, (_, n) in spks.items():
        if utt not in texts:
            raise CorpusError(f"{_where(utt2spk_f, n)}: utterance {utt} has no line in {text_f}")

    recordings: dict[str, Recording] = {}
    for rec, (spec, n) in wavs.items():
        if not spec:
            raise CorpusError(f"{_where(wav_scp, n)}: expected '<recording-id> <path>', got no path")
        recordings[rec] = _probe(spec, _where(wav_scp, n), sampling_rate).recording(rec)

    segments_f = data_dir / "segments"
    spans: dict[str, tuple[str, float, float]] = {}
    if segments_f.is_file():
        for utt, (f, n) in _kaldi_table(segments_f, fields=4).items():
            where = _where(segments_f, n)
            rec, start, end = f[0], _number(f[1], "start", where), _number(f[2], "end", where)
            if rec not in recordings:
                raise CorpusError(f"{where}: recording {rec} is not in {wav_scp}")
            if utt not in texts:
                raise CorpusError(f"{where}: segment {utt} has no line in {text_f}")
            rec_dur = recordings[rec].duration
            end = rec_dur if end == -1 else end
            if start < 0 or end <= start:
                raise CorpusError(f"{where}: segment {utt} has start {f[1]}, end {f[2]}; expected "
                                  f"0 <= start < end (or end -1)")
            if end > rec_dur + TIME_TOLERANCE:
                raise CorpusError(f"{where}: segment {utt} ends at {end} s, after the end of "
                                  f"recording {rec} ({rec_dur:.3f} s)")
            spans[utt] = (rec, start, min(end, rec_dur))
        for utt, (_, n) in texts.items():
            if utt not in spans:
                raise CorpusError(f"{_where(text_f, n)}: utterance {utt} is not in {segments_f}")
    else:
        for utt, (_, n) in texts.items():
            if utt not in recordings:
                raise CorpusError(f"{_where(text_f, n)}: utterance {utt} is not in {wav_scp} "
                                  f"(without a segments file utterance ids are recording ids)")
            spans[utt] = (utt, 0.0, recordings[utt].duration)

    utts = {}
    for utt, (words, n) in texts.items():
        rec, start, end = spans[utt]
        spk = spks[utt][0][0]
        utts[utt] = _Utt(utt, recordings[rec], start, end - start, words.split(),
                         _where(text_f, n), speaker=spk, gender=genders.get(spk))
    if ctm is not None:
        _attach_ctm(Path(ctm), _parse_ctm(Path(ctm)), utts)
    rec_set = RecordingSet.from_recordings(recordings.values())
    sup_set = _supervisions(utts.values(), ctm is not None)
    _lhotse_validate(rec_set, sup_set, str(data_dir))
    _write_pair(output_dir, corpus, part, rec_set, sup_set)
    return {"recordings": rec_set, "supervisions": sup_set}


def prepare_king_asr_066(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """King-ASR-066 (or any corpus in its place): ``data/`` Kaldi directory + ``data/words.ctm``."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: King-ASR-066 corpus directory does not exist")
    return prepare_kaldi_dir(corpus_dir / "data", ctm=corpus_dir / "data" / "words.ctm",
                             corpus="king_asr_066", part="train", output_dir=output_dir)


# ----------------------------------------------------------------------------------------------
# WSJ


_DOT_LINE = re.compile(r"^(.*)\(([^()\s]+)\)\s*$")


def normalise_wsj_text(text: str) -> list[str]:
    """LDC transcript words: noise and markup tokens ([...], <...>) dropped, then only letters
    and apostrophes kept, lower-cased (``\\.PERIOD`` -> ``period``, ``*WORD*`` -> ``word``)."""
    words = []
    for tok in text.split():
        if tok[0] in "[<" or tok[-1] in "]>":
            continue
        w = re.sub(r"[^a-z']", "", tok.lower()).strip("'")
        if w:
            words.append(w)
    return words


def _find_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` by lower-cased suffix, sorted; unlike Path.rglob this follows
    symlinked directories, as corpus trees are often assembled from links to LDC discs."""
    suffixes = set(suffixes)
    found = []
    for d, _, names in os.walk(root, followlinks=True):
        found += [Path(d, n) for n in names if os.path.splitext(n)[1].lower() in suffixes]
    return sorted(found)


def _read_dots(dots: list[Path]) -> dict[str, tuple[list[str], str]]:
    transcripts: dict[str, tuple[list[str], str]] = {}
    for dot in dots:
        for n, line in _lines(dot):
            m = _DOT_LINE.match(line.strip())
            if not m:
                raise CorpusError(f"{_where(dot, n)}: expected 'WORDS ... (utterance-id)', "
                                  f"got {line.strip()!r}")
            utt, words = m.group(2).lower(), normalise_wsj_text(m.group(1))
            if utt in transcripts and transcripts[utt][0] != words:
                raise CorpusError(f"{_where(dot, n)}: utterance {utt} has another transcript "
                                  f"in {transcripts[utt][1]}")
            transcripts.setdefault(utt, (words, _where(dot, n)))
    return transcripts


def prepare_wsj(
    corpus_dir: str | os.PathLike,
    output_dir=None,
    ctm: str | os.PathLike | None = None,
    part: str = "test",
    channels: Sequence[str] = ("wv1",),
    sampling_rate: int = SAMPLING_RATE,
) -> dict:
    """WSJ, from ``data/`` (a Kaldi directory, CTM default ``data/words.ctm``) when it holds a
    wav.scp, else from the LDC tree.

    LDC mode: every ``*.<channel>`` file under ``corpus_dir`` is an utterance (id = the file
    stem in lower case, speaker = its directory), with its transcript from the ``.dot`` files.
    The CTM is required and selects the utterances: those it does not name, and those without a
    transcript, are skipped with a warning. With more than one channel, ids become
    ``<stem>_<channel>``. Shorten-compressed SPHERE is read through ``sph2pipe``.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: WSJ corpus directory does not exist")
    if (corpus_dir / "data" / "wav.scp").is_file():
        return prepare_kaldi_dir(corpus_dir / "data", ctm=ctm or corpus_dir / "data" / "words.ctm",
                                 corpus="wsj", part=part, output_dir=output_dir,
                                 sampling_rate=sampling_rate)
    if ctm is None:
        raise CorpusError(f"{corpus_dir}: no data/wav.scp, so this is read as an LDC tree, which "
                          f"needs a word CTM (--ctm)")
    ctm = Path(ctm)
    ctm_words = _parse_ctm(ctm)
    wanted = {w.key for w in ctm_words}
    suffixes = {f".{c.lower().lstrip('.')}": c.lower().lstrip(".") for c in channels}
    files = _find_files(corpus_dir, set(suffixes) | {".dot"})
    transcripts = _read_dots([p for p in files if p.suffix.lower() == ".dot"])
    found: dict[str, Path] = {}
    skipped_ctm, no_text = 0, set()
    for path in (p for p in files if p.suffix.lower() in suffixes):
        stem = path.stem.lower()
        if stem not in wanted:
            skipped_ctm += 1
            continue
        if stem not in transcripts:
            no_text.add(stem)
            continue
        rec_id = stem if len(suffixes) == 1 else f"{stem}_{suffixes[path.suffix.lower()]}"
        if rec_id in found:
            raise CorpusError(f"{path}: utterance {rec_id} also at {found[rec_id]}")
        found[rec_id] = path
    if skipped_ctm:
        log.warning("wsj: %d audio files under %s are not in %s; skipped", skipped_ctm, corpus_dir, ctm)
    if no_text:
        log.warning("wsj: %d utterances have no .dot transcript; skipped (e.g. %s)",
                    len(no_text), sorted(no_text)[0])
    if not found:
        raise CorpusError(f"{corpus_dir}: no {'/'.join(suffixes)} file that has a .dot transcript "
                          f"is named in {ctm}")

    utts, aliases = {}, defaultdict(list)
    for rec_id, path in found.items():
        stem = path.stem.lower()
        rec = _probe(str(path.absolute()), str(path), sampling_rate).recording(rec_id)
        words, where = transcripts[stem]
        utts[rec_id] = _Utt(rec_id, rec, 0.0, rec.duration, words, where, speaker=path.parent.name)
        aliases[stem].append(rec_id)
    _attach_ctm(ctm, ctm_words, utts, skip_keys=no_text, aliases=aliases)
    rec_set = RecordingSet.from_recordings(u.recording for u in utts.values())
    sup_set = _supervisions(utts.values(), True)
    _lhotse_validate(rec_set, sup_set, str(corpus_dir))
    _write_pair(output_dir, "wsj", part, rec_set, sup_set)
    return {"recordings": rec_set, "supervisions": sup_set}


# ----------------------------------------------------------------------------------------------
# LibriPhrase


def prepare_libriphrase(
    corpus_dir: str | os.PathLike, output_dir=None, part: str = "test",
    sampling_rate: int = SAMPLING_RATE,
) -> dict:
    """LibriPhrase from ``data/libriphrase_diffspk_all_{1,2,3,4}word.csv`` (those present).

    One recording per distinct wav (paths relative to ``corpus_dir``) with id = the file stem,
    which must be unique; one supervision over the whole recording, text = the phrase lower-
    cased, speaker = the spk column. Returns ``dict(recordings, supervisions, rows)``: rows are
    the CSV rows as dicts (``target`` int, durations float, the rest strings) plus
    ``anchor_id``, ``comparison_id``, ``file`` and ``line`` (the header is line 1); they are
    also written to ``libriphrase_pairs_<part>.jsonl.gz``.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: LibriPhrase corpus directory does not exist")
    csvs = [corpus_dir / "data" / f"libriphrase_diffspk_all_{n}word.csv" for n in (1, 2, 3, 4)]
    csvs = [p for p in csvs if p.is_file()]
    if not csvs:
        raise CorpusError(f"{corpus_dir / 'data'}: no libriphrase_diffspk_all_{{1,2,3,4}}word.csv")

    rows: list[dict] = []
    wavs: dict[str, dict] = {}  # relative path -> id, text, speaker, where
    stems: dict[str, str] = {}  # id -> relative path
    for path in csvs:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise CorpusError(f"{path}: empty file; expected a header {','.join(LIBRIPHRASE_COLUMNS)}")
            header = [h.strip() for h in header]
            for col in LIBRIPHRASE_COLUMNS:
                if col not in header:
                    raise CorpusError(f"{path}:1: header lacks column {col!r} (has {header})")
            for fields in reader:
                where = _where(path, reader.line_num)
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise CorpusError(f"{where}: expected {len(header)} fields, found {len(fields)}")
                row = dict(zip(header, (x.strip() for x in fields)))
                for col in LIBRIPHRASE_COLUMNS:
                    if not row[col]:
                        raise CorpusError(f"{where}: empty field {col!r}")
                if row["type"] not in LIBRIPHRASE_TYPES:
                    raise CorpusError(f"{where}: unknown type {row['type']!r}; expected one of "
                                      f"{', '.join(LIBRIPHRASE_TYPES)}")
                if row["target"] not in ("0", "1"):
                    raise CorpusError(f"{where}: target must be 0 or 1, got {row['target']!r}")
                row["target"] = int(row["target"])
                if row["target"] != LIBRIPHRASE_TYPES[row["type"]]:
                    raise CorpusError(f"{where}: target {row['target']} contradicts type "
                                      f"{row['type']} (positive pairs are 1, negatives 0)")
                for side in ("anchor", "comparison"):
                    dur = _number(row[f"{side}_dur"], f"{side}_dur", where)
                    if dur <= 0:
                        raise CorpusError(f"{where}: {side}_dur must be positive, got {dur}")
                    row[f"{side}_dur"] = dur
                    rel = os.path.normpath(row[side])
                    text, spk = row[f"{side}_text"].lower(), row[f"{side}_spk"]
                    if rel not in wavs:
                        rec_id = Path(rel).stem
                        if rec_id in stems:
                            raise CorpusError(f"{where}: {rel} and {stems[rec_id]} (first in "
                                              f"{wavs[stems[rec_id]]['where']}) share the file "
                                              f"name {rec_id!r}, used as the recording id")
                        stems[rec_id] = rel
                        wavs[rel] = {"id": rec_id, "text": text, "speaker": spk, "where": where}
                    w = wavs[rel]
                    if w["text"] != text:
                        raise CorpusError(f"{where}: {rel} has text {text!r} but {w['text']!r} "
                                          f"in {w['where']}")
                    if w["speaker"] != spk:
                        raise CorpusError(f"{where}: {rel} has speaker {spk!r} but "
                                          f"{w['speaker']!r} in {w['where']}")
                    row[f"{side}_id"] = w["id"]
                row["file"], row["line"] = str(path), reader.line_num
                rows.append(row)

    recordings, sups = [], []
    for rel, w in wavs.items():
        rec = _probe(str((corpus_dir / rel).absolute()), w["where"], sampling_rate).recording(w["id"])
        recordings.append(rec)
        sups.append(SupervisionSegment(id=w["id"], recording_id=w["id"], start=0.0,
                                       duration=rec.duration, channel=0, text=w["text"],
                                       speaker=w["speaker"]))
    rec_set = RecordingSet.from_recordings(recordings)
    sup_set = SupervisionSet.from_segments(sups)
    _lhotse_validate(rec_set, sup_set, str(corpus_dir))
    if output_dir is not None:
        _write_pair(output_dir, "libriphrase", part, rec_set, sup_set)
        write_manifest(Path(output_dir) / f"libriphrase_pairs_{part}.jsonl.gz", rows)
    return {"recordings": rec_set, "supervisions": sup_set, "rows": rows}


# ----------------------------------------------------------------------------------------------
# MUSAN and RIRS_NOISES


def _has_wav(d: Path) -> bool:
    return d.is_dir() and next(d.rglob("*.wav"), None) is not None


def prepare_musan(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """lhotse's MUSAN recipe over the parts (music, noise, speech) that hold wavs; writes
    ``musan_recordings_<part>.jsonl.gz`` (and ``musan_supervisions_music.jsonl.gz``)."""
    from lhotse.recipes import prepare_musan as lhotse_prepare_musan

    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: MUSAN directory does not exist")
    parts = [p for p in ("music", "noise", "speech") if _has_wav(corpus_dir / p)]
    if not parts:
        raise CorpusError(f"{corpus_dir}: no wavs under music/, noise/ or speech/")
    try:
        manifests = lhotse_prepare_musan(corpus_dir, parts=parts)
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CorpusError(f"{corpus_dir}: lhotse could not prepare MUSAN: {e}") from None
    if output_dir is not None:
        for part, ms in manifests.items():
            for key, m in ms.items():
                write_manifest(Path(output_dir) / f"musan_{key}_{part}.jsonl.gz", m)
    return manifests


# Our part name -> the RIRS_NOISES directory lhotse reads it from.
RIR_PARTS = {
    "sim_rir": "simulated_rirs",
    "real_rir": "real_rirs_isotropic_noises",
    "iso_noise": "real_rirs_isotropic_noises",
    "point_noise": "pointsource_noises",
}


def prepare_rir_noise(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """lhotse's RIRS_NOISES recipe over the parts whose directories exist; writes
    ``rir_recordings_<part>.jsonl.gz`` (lhotse itself would write ``sim-rir_recordings_all``)."""
    from lhotse.recipes import prepare_rir_noise as lhotse_prepare_rir_noise

    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: RIRS_NOISES directory does not exist")
    parts = [p for p, d in RIR_PARTS.items() if _has_wav(corpus_dir / d)]
    if not parts:
        raise CorpusError(f"{corpus_dir}: no wavs under {', '.join(sorted(set(RIR_PARTS.values())))}")
    try:
        manifests = lhotse_prepare_rir_noise(corpus_dir, parts=parts)
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CorpusError(f"{corpus_dir}: lhotse could not prepare RIRS_NOISES: {e}") from None
    # real_rir and iso_noise share a directory; keep only those that found files.
    manifests = {p: m for p, m in manifests.items() if len(m["recordings"])}
    if not manifests:
        raise CorpusError(f"{corpus_dir}: lhotse found no RIR or noise wavs")
    if output_dir is not None:
        for part, ms in manifests.items():
            write_manifest(Path(output_dir) / f"rir_recordings_{part}.jsonl.gz", ms["recordings"])
    return dict(manifests)
