"""Shared by the corpus preparers: CorpusError, constants, Kaldi table reading, manifest writing."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from lhotse.qa import validate_recordings_and_supervisions

from pyadml.fileio import atomic_path, not_utf8_error

SAMPLING_RATE = 16000
TIME_TOLERANCE = 0.01  # seconds a CTM word or segment may run past the end of its audio
# What aligners write for the gaps between words (dropped), and for a word their lexicon lacks
# (Kaldi's --map-oov symbol, MFA's and ESPnet's <unk>; kept in its place, standing for the
# transcript's word there, and dropped by stage 2 as a non-word).
SILENCE_MARKS = frozenset({"", "sil", "sp", "<eps>", "<sil>", "!sil"})
UNKNOWN_MARKS = frozenset({"<unk>", "spn", "<spoken_noise>", "<oov>"})
UNK = "<unk>"  # the symbol every unknown mark is stored as


class CorpusError(ValueError):
    """A corpus input is missing or malformed; the message names the file (and line)."""


# The text files the preparers of this process read (Kaldi tables, CTMs, transcripts, CSVs,
# TextGrids): stage 1 lists them (prepare_manifests --inputs-list) so that its .done marker
# covers them, and a corpus edited after stage 1 makes the stage run again. Audio is not listed
# (wav.scp names it; hashing every recording would cost as much as reading the corpus). The
# directories a preparer searched for its files are listed too: the marker covers the names of
# the files under them (utils/stage.sh), so a file added there (a chapter unpacked after an
# interrupted tar) reruns the stage as well.
_inputs: set[str] = set()


def note_input(path: str | os.PathLike) -> None:
    _inputs.add(os.path.abspath(path))


def inputs_read() -> list[str]:
    return sorted(_inputs)


def forget_inputs() -> None:
    """Start a new list (a second prepare_manifests.main in one process lists its own files)."""
    _inputs.clear()


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
    """Non-blank lines with their 1-based numbers. A byte-order mark (what Windows editors put
    before UTF-8 text) is not part of the first line."""
    note_input(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line
    except UnicodeDecodeError:
        raise CorpusError(not_utf8_error(path)) from None


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


def _need_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CorpusError(f"{path}: missing {what}")
    return path


def _find_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` by lower-cased suffix, sorted; unlike Path.rglob this follows
    symlinked directories, as corpus trees are often assembled from links to LDC discs."""
    suffixes = set(suffixes)
    found = []
    for d, _, names in os.walk(root, followlinks=True):
        found += [Path(d, n) for n in names if os.path.splitext(n)[1].lower() in suffixes]
    return sorted(found)


def _check_no_linked_wavs(root: Path, corpus: str) -> None:
    """lhotse's MUSAN and RIRS_NOISES recipes find wavs with Path.rglob, which follows no
    symlinked directory: a linked part (music/fma -> another disk) would be left out without a
    word. Named instead. So are wavs named in capitals (NOISE01.WAV, as recorders name them),
    which its "*.wav" does not match."""
    seen = set(root.rglob("*.wav"))
    found = _find_files(root, {".wav"})
    upper = [p for p in found if p.suffix != ".wav"]
    if upper:
        raise CorpusError(f"{upper[0]}: lhotse's {corpus} recipe reads only files ending in .wav "
                          f"(lower case), and would leave out this one and {len(upper) - 1} "
                          f"more; rename them (e.g. to {upper[0].stem}.wav)")
    hidden = [p for p in found if p not in seen]
    if hidden:
        link = next(parent for parent in hidden[0].parents if parent.is_symlink())
        raise CorpusError(f"{link} is a symlinked directory: lhotse's {corpus} recipe does not "
                          f"follow it, and its {len(hidden)} wav(s) would be left out; copy it "
                          f"in, or link the files rather than the directory")


def _unreadable_wav(e: Exception, corpus: str, archive: str) -> CorpusError:
    """lhotse's AudioLoadingError from its MUSAN or RIRS_NOISES recipe (pages of backends'
    exceptions, raised as a traceback) as a CorpusError that names the file and why."""
    text = str(e)
    path = re.search(r"audio from '([^']*)'", text)
    reason = re.search(r"Error opening '[^']*': ([^\n]+)", text)
    reason = reason.group(1).strip().rstrip(".") if reason else text.strip().splitlines()[0]
    return CorpusError(f"{path.group(1) if path else corpus}: cannot read it as audio ({reason}); "
                       f"expected a {corpus} wav: a file cut short (unpack {archive} again), or "
                       f"one that is not audio (macOS's ._ files: delete them)")


def _corpus_dir_hint(corpus_dir: Path, var: str, names: tuple[str, ...],
                     parts: Iterable[str]) -> str:
    """Where a corpus that holds none of ``parts`` was probably meant to point: one level down
    (``RIRS_NOISES`` set to the directory above it, as Kaldi's rir_list paths are relative to
    it; ``musan/musan`` from unpacking into a directory of that name), or up (a part itself,
    ``musan/noise``). '' if neither."""
    parts = tuple(parts)
    for name in names:
        for below in (corpus_dir / name, corpus_dir / name.lower()):
            if any(_has_wav(below / p) for p in parts):
                return f"; {below} holds them: set {var} to it"
    for up in (corpus_dir.parent, corpus_dir.parent.parent):
        if up != corpus_dir and any(corpus_dir.is_relative_to(up / p) for p in parts) and any(
                _has_wav(up / p) for p in parts):
            return f"; {corpus_dir} is inside the corpus: set {var} to {up}"
    return ""


def _check_unique_stems(part_dir: Path, corpus: str, id_prefix=None) -> None:
    """lhotse's MUSAN and RIRS_NOISES recipes name a recording by its file name without .wav
    (a simulated RIR by its room size and that): two wavs of one part with the same name (a
    user's own noises added beside MUSAN's) made MUSAN fail with 'RecordingSet has recordings
    with duplicated IDs', naming neither file, and RIRS_NOISES keep both under one id, of which
    stage 3 then used one file twice as often and never the other."""
    seen: dict[str, Path] = {}
    for wav in sorted(part_dir.rglob("*.wav")):
        key = id_prefix(wav) + wav.stem if id_prefix else wav.stem
        if key in seen:
            raise CorpusError(f"{wav} and {seen[key]} are both recording {key!r} of {corpus} "
                              f"(lhotse names a recording by its file name); rename one of them")
        seen[key] = wav


def _has_wav(d: Path) -> bool:
    return d.is_dir() and next(d.rglob("*.wav"), None) is not None
