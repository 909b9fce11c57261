"""LibriSpeech with its word alignments, and the train/test speaker check of a LibriSpeech recipe.

The audio and transcripts are read by lhotse's own preparer
(``lhotse.recipes.librispeech.prepare_librispeech``: ``<subset>/<spk>/<chapter>/<utt>.flac`` and
``<spk>-<chapter>.trans.txt``); word alignments come in one of two formats:

- ``<spk>-<chapter>.alignment.txt`` next to the transcripts (the LibriSpeech alignments of
  CorentinJ/librispeech-alignments, made with the Montreal Forced Aligner; a user fetches them
  beforehand, nothing here does), one line per utterance::

      103-1240-0000 ",CHAPTER,ONE,,MISSUS,RACHEL," "0.490,0.890,1.270,1.380,1.490,1.890,2.250"

  words and their END times, an empty word being silence; read as lhotse's
  ``parse_alignments`` reads them (each line is checked here first, with its line number; a
  byte-order mark and blank lines are no lines);
- Praat TextGrids as the Montreal Forced Aligner writes them, one ``<utt>.TextGrid`` per
  utterance anywhere under the alignments directory, long or short text format, the words in
  the tier named ``words`` (or ``<speaker> - words``).

What the aligner marks as silence or unknown never becomes a keyword cut. This preparer

- **drops** silence: an empty word, ``sil``, ``sp``, ``<eps>``, ``<sil>`` are the gaps between
  words, not words; they are counted in the returned ``stats`` (and the stage 1 log);
- **passes** unknown words as ``<unk>``: ``<unk>``, ``spn``, ``<spoken_noise>``, ``<oov>`` keep
  their place and times with the symbol ``<unk>``, which stage 2 drops and counts as
  ``unknown_or_noise_token`` in ``data/cuts/report.json``; it matches any transcript word.

Every other aligned word must spell the utterance's transcript in order (case aside), else a
:class:`CorpusError` names the alignment file and utterance. An utterance with no alignment
(the aligner failed on it) keeps ``alignment=None``; stage 2 counts it as ``no_alignment``. A
subset none of whose utterances has an alignment (alignments of the other subsets only) is an
error naming it.
Missing audio, a sampling rate other than 16 kHz or a malformed line is an error naming the
file, never a skipped utterance.

``ctm="none"`` reads no alignments: whole utterances only, each counted as unaligned (the
continuous speech that stage 9 spots keywords in needs its transcripts, not word times).

A set is ``<name>_<part>`` after its manifests ``<name>_{recordings,supervisions}_<part>.jsonl.gz``:
``part="train-clean-100"`` writes part ``train_clean_100``, and
``part="train=train-clean-100,train-clean-360"`` writes one set ``train`` of both subsets.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from lhotse import RecordingSet, SupervisionSet
from lhotse.supervision import AlignmentItem

from pyadml.data.prepare.common import (
    SAMPLING_RATE,
    SILENCE_MARKS,
    TIME_TOLERANCE,
    UNK,
    UNKNOWN_MARKS,
    CorpusError,
    _find_files,
    _lhotse_validate,
    _lines,
    _where,
    _write_pair,
    note_input,
)
from pyadml.data.prepare.registry import register_corpus

log = logging.getLogger(__name__)

LIBRISPEECH_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100",
                       "train-clean-360", "train-other-500", "dev-clean-2", "train-clean-5")


def part_name(subset: str) -> str:
    """The set-name-friendly part of a LibriSpeech subset: ``train-clean-100`` -> ``train_clean_100``."""
    return subset.replace("-", "_")


def parse_part(spec: str) -> tuple[str, list[str]]:
    """``"train-clean-100"`` -> (``train_clean_100``, [it]);
    ``"train=train-clean-100,train-clean-360"`` -> (``train``, both)."""
    name, sep, subsets = spec.partition("=")
    if not sep:
        subsets, name = spec, ""
    parts = [s.strip() for s in subsets.split(",") if s.strip()]
    if not parts:
        raise CorpusError(f"librispeech part {spec!r}: no subset named")
    bad = [s for s in parts if s not in LIBRISPEECH_SUBSETS]
    if bad:
        raise CorpusError(f"librispeech part {spec!r}: unknown subset(s) {', '.join(bad)}; "
                          f"LibriSpeech has {', '.join(LIBRISPEECH_SUBSETS)}")
    if len(set(parts)) != len(parts):
        raise CorpusError(f"librispeech part {spec!r}: a subset is named twice")
    if not name:
        if len(parts) > 1:
            raise CorpusError(f"librispeech part {spec!r}: several subsets make one set; name it, "
                              f"e.g. 'train={','.join(parts)}'")
        name = part_name(parts[0])
    if not re.fullmatch(r"[A-Za-z0-9][\w.]*", name):
        raise CorpusError(f"librispeech part {spec!r}: set part {name!r} must be letters, digits, "
                          f"'_' or '.'")
    return name, parts


# ----------------------------------------------------------------------------------------------
# alignment files


def check_alignment_txt(path: str | os.PathLike) -> None:
    """Check every line of a ``.alignment.txt`` file before lhotse's ``parse_alignments`` reads
    it (lhotse zips words with times, so a short list would be cut silently there)."""
    path = Path(path)
    prev_ids = {}
    for n, line in _lines(path):
        where = _where(path, n)
        parts = line.split()
        if len(parts) != 3:
            raise CorpusError(f"{where}: expected '<utt> \"<w1>,<w2>,...\" \"<end1>,<end2>,...\"' "
                              f"(3 fields), found {len(parts)}: {line.strip()!r}")
        utt, words, ends = parts
        if utt in prev_ids:
            raise CorpusError(f"{where}: utterance {utt} repeats line {prev_ids[utt]}")
        prev_ids[utt] = n
        words = words.replace('"', "").split(",")
        try:
            times = [float(t) for t in ends.replace('"', "").split(",")]
        except ValueError:
            raise CorpusError(f"{where}: end times must be numbers, got {ends!r}") from None
        if len(words) != len(times):
            raise CorpusError(f"{where}: {len(words)} words but {len(times)} end times")
        last = 0.0
        for w, t in zip(words, times):
            if t < last:
                raise CorpusError(f"{where}: end time {t} of word {w!r} precedes the previous "
                                  f"end time {last}")
            last = t


def read_alignment_txt(path: str | os.PathLike) -> dict[str, list[AlignmentItem]]:
    """utterance id -> word items (silence included, as in the file), as lhotse's
    ``parse_alignments`` makes them (the first word starts at 0, each next one where the one
    before ends), from the lines that the check read: a byte-order mark and blank lines, which
    a Windows editor may leave, are no part of them (lhotse's own reader made the first
    utterance's id start with the mark, so it was silently unaligned, and stopped at a blank line
    with a traceback)."""
    path = Path(path)
    check_alignment_txt(path)
    out = {}
    for _, line in _lines(path):
        utt, words, ends = line.split()
        times = [0.0] + [float(t) for t in ends.replace('"', "").split(",")]
        out[utt] = [AlignmentItem(symbol=w, start=a, duration=round(b - a, ndigits=8))
                    for w, a, b in zip(words.replace('"', "").split(","), times, times[1:])]
    return out


def _parse_utterance(parse_utterance):
    """lhotse's ``parse_utterance`` of a ``.trans.txt`` line, given neither a blank line (it
    raised 'not enough values to unpack') nor the byte-order mark of a file's first line (which
    became part of the utterance id, so its audio was not found)."""

    def parse(part_path, line, alignments):
        line = line.lstrip("\ufeff")
        return parse_utterance(part_path, line, alignments) if line.strip() else None

    return parse


_TG_SKIP = re.compile(r"^\s*(item|intervals|points)\s*\[\s*\d*\s*\]\s*:?\s*$")
_TG_KEY = re.compile(r"^\s*[A-Za-z][\w ?]*(:\s*size)?\s*=\s*")
_TG_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)')


def _textgrid_tokens(path: Path) -> list[str | float]:
    note_input(path)
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: TextGrid is neither UTF-8 nor UTF-16 ({e})") from None
    tokens: list[str | float] = []
    # Long format: "key = value" lines and "item [1]:" headers; short format: bare values.
    # A value may be a string that spans lines, so tokens are read from the whole remaining text.
    kept = []
    for line in text.splitlines():
        if _TG_SKIP.match(line):
            continue
        kept.append(_TG_KEY.sub("", line, count=1))
    for m in _TG_TOKEN.finditer("\n".join(kept)):
        if m.group(1) is not None:
            tokens.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            tokens.append(m.group(2))
        else:
            tokens.append(float(m.group(3)))
    return tokens


def read_textgrid(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """The interval tiers of a Praat TextGrid (long or short text format): name -> intervals
    ``(xmin, xmax, text)``. Point tiers are skipped."""
    path = Path(path)
    toks = _textgrid_tokens(path)
    pos = 0

    def take(kind, what):
        nonlocal pos
        if pos >= len(toks):
            raise CorpusError(f"{path}: TextGrid ends early, expected {what}")
        t = toks[pos]
        pos += 1
        if kind is float and not isinstance(t, float):
            raise CorpusError(f"{path}: TextGrid: expected a number for {what}, got {t!r}")
        if kind is str and not isinstance(t, str):
            raise CorpusError(f"{path}: TextGrid: expected a string for {what}, got {t!r}")
        return t

    if toks[:2] != ["ooTextFile", "TextGrid"]:
        raise CorpusError(f"{path}: not a Praat TextGrid (expected 'File type = \"ooTextFile\"' "
                          f"and 'Object class = \"TextGrid\"')")
    pos = 2
    take(float, "xmin")
    take(float, "xmax")
    if take(str, "<exists>") != "<exists>":
        return {}
    tiers: dict[str, list[tuple[float, float, str]]] = {}
    for _ in range(int(take(float, "the number of tiers"))):
        cls = take(str, "the tier class")
        name = take(str, "the tier name")
        take(float, "the tier xmin")
        take(float, "the tier xmax")
        n = int(take(float, "the number of intervals"))
        if cls == "IntervalTier":
            items = []
            for k in range(n):
                lo = take(float, f"xmin of interval {k + 1} of tier {name!r}")
                hi = take(float, f"xmax of interval {k + 1} of tier {name!r}")
                items.append((lo, hi, take(str, f"text of interval {k + 1} of tier {name!r}")))
                if hi < lo:
                    raise CorpusError(f"{path}: tier {name!r} interval {k + 1} ends ({hi}) before "
                                      f"it starts ({lo})")
            tiers[name] = items
        elif cls == "TextTier":
            for k in range(n):
                take(float, "a point time")
                take(str, "a point mark")
        else:
            raise CorpusError(f"{path}: unknown tier class {cls!r}")
    return tiers


def textgrid_words(path: str | os.PathLike) -> list[AlignmentItem]:
    """The word tier of an MFA TextGrid (``words``, or ``<speaker> - words``) as alignment
    items, silence included."""
    tiers = read_textgrid(path)
    names = [n for n in tiers if n.strip().lower() in ("words", "word")
             or n.strip().lower().endswith(" - words")]
    if len(names) != 1:
        raise CorpusError(f"{path}: expected one word tier named 'words' (or '<speaker> - words'), "
                          f"found tiers {list(tiers)}")
    return [AlignmentItem(symbol=text.strip(), start=round(lo, 6), duration=round(hi - lo, 6))
            for lo, hi, text in tiers[names[0]]]


def clean_alignment(
    items: Sequence[AlignmentItem], words: Sequence[str], where: str, utt: str, stats: Counter,
) -> list[AlignmentItem]:
    """Drop silence, write unknown marks as ``<unk>``, lower-case, and check the words spell
    the transcript ``words`` (an ``<unk>`` matches any one word). Counts go into ``stats``."""
    out = []
    for it in items:
        sym = it.symbol.strip()
        low = sym.lower()
        if low in SILENCE_MARKS:
            stats["silence"] += 1
            continue
        if low in UNKNOWN_MARKS:
            stats["unknown"] += 1
            out.append(AlignmentItem(symbol=UNK, start=it.start, duration=it.duration))
            continue
        out.append(AlignmentItem(symbol=low, start=it.start, duration=it.duration))
    if len(out) != len(words):
        raise CorpusError(f"{where}: utterance {utt}: the alignment has {len(out)} words "
                          f"({' '.join(i.symbol for i in out)!r}) but the transcript has "
                          f"{len(words)} ({' '.join(words)!r})")
    for k, (it, w) in enumerate(zip(out, words)):
        if it.symbol != UNK and it.symbol != w.lower():
            raise CorpusError(f"{where}: utterance {utt}: aligned word {k + 1} {it.symbol!r} does "
                              f"not match transcript word {w!r}")
    stats["words"] += len(out)
    return out


# ----------------------------------------------------------------------------------------------
# the corpus


def read_speakers(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """``SPEAKERS.TXT``: ``ID | SEX | SUBSET | MINUTES | NAME`` lines (``;`` comments) as
    id -> {sex, subset, minutes, name} (strings)."""
    path = Path(path)
    out = {}
    for n, line in _lines(path):
        if line.lstrip().startswith(";"):
            continue
        f = [x.strip() for x in line.split("|")]
        if len(f) < 5:
            raise CorpusError(f"{_where(path, n)}: expected 'ID | SEX | SUBSET | MINUTES | NAME', "
                              f"found {line.strip()!r}")
        out[f[0]] = {"sex": f[1], "subset": f[2], "minutes": f[3], "name": "|".join(f[4:])}
    return out


def _corpus_root(corpus_dir: Path) -> Path:
    """The directory holding the subsets: ``corpus_dir`` or its ``LibriSpeech/``."""
    if any((corpus_dir / s).is_dir() for s in LIBRISPEECH_SUBSETS):
        return corpus_dir
    if (corpus_dir / "LibriSpeech").is_dir():
        return corpus_dir / "LibriSpeech"
    return corpus_dir


def _transcripts(part_dir: Path) -> dict[str, tuple[list[str], str, Path]]:
    """utt -> (words, file:line, chapter dir) from every ``<spk>-<chapter>.trans.txt``."""
    out = {}
    for trans in (p for p in _find_files(part_dir, {".txt"}) if p.name.endswith(".trans.txt")):
        chapter = trans.name[: -len(".trans.txt")]
        for n, line in _lines(trans):
            parts = line.split(maxsplit=1)
            utt = parts[0]
            where = _where(trans, n)
            if not utt.startswith(chapter + "-"):
                raise CorpusError(f"{where}: utterance {utt} does not belong to chapter {chapter} "
                                  f"(expected ids '{chapter}-NNNN')")
            if utt in out:
                raise CorpusError(f"{where}: utterance {utt} repeats {out[utt][1]}")
            if len(parts) < 2:
                raise CorpusError(f"{where}: utterance {utt} has no transcript")
            out[utt] = (parts[1].split(), where, trans.parent)
    return out


def _find_alignments(ali_root: Path, subset: str) -> tuple[str, list[Path]]:
    """('txt' | 'textgrid', files) of one subset under the alignments directory."""
    base = ali_root / subset if (ali_root / subset).is_dir() else ali_root
    note_input(base)  # alignments added to it later rerun stage 1
    txt = [p for p in _find_files(base, {".txt"}) if p.name.endswith(".alignment.txt")]
    if txt:
        return "txt", txt
    tg = _find_files(base, {".textgrid"})
    if tg:
        return "textgrid", tg
    raise CorpusError(
        f"{base}: no word alignments for {subset}: expected <spk>-<chapter>.alignment.txt files "
        f"(librispeech-alignments, next to the transcripts) or <utterance>.TextGrid files (Montreal "
        f"Forced Aligner); name the alignments directory with --ctm (LIBRISPEECH_ALIGNMENTS in db.sh)")


def _prepare_subset(root: Path, ali_root: Path | None, subset: str, speakers: dict, nj: int,
                    sampling_rate: int, stats: Counter):
    from unittest import mock

    import lhotse.recipes.librispeech as lhotse_librispeech
    from lhotse.recipes.librispeech import prepare_librispeech as lhotse_prepare

    part_dir = root / subset
    if not part_dir.is_dir():
        have = [s for s in LIBRISPEECH_SUBSETS if (root / s).is_dir()]
        clean = [s for s in have if s.startswith("train-clean-")]
        hint = (f"; train on the subsets it has with run.sh --train-parts, e.g. --train-parts "
                f"\"{' '.join(clean)}\"" if clean and subset.startswith("train-") else "")
        if not have:
            # A wrong path in db.sh: one level too deep (a subset itself), or not LibriSpeech.
            hint = (f"; {root} holds no LibriSpeech subset: expected the LibriSpeech directory "
                    f"(SPEAKERS.TXT, train-clean-100/, ...) or the one above it")
            if root.name in LIBRISPEECH_SUBSETS:
                hint += f"; {root} is itself the subset {root.name}: name its parent, {root.parent}"
        raise CorpusError(f"{part_dir}: LibriSpeech subset {subset} does not exist "
                          f"(this corpus has: {', '.join(have) or 'none'}){hint}")
    note_input(part_dir)  # a chapter added to it later reruns stage 1
    trans = _transcripts(part_dir)
    if not trans:
        raise CorpusError(f"{part_dir}: no <spk>-<chapter>.trans.txt transcripts")
    fmt, files = _find_alignments(ali_root, subset) if ali_root is not None else (None, [])
    with tempfile.TemporaryDirectory() as empty:
        # lhotse reads .alignment.txt files itself when they lie in its alignments_dir (checked
        # line by line first); TextGrids are attached below, so lhotse then gets an empty one.
        if fmt == "txt":
            for f in files:
                check_alignment_txt(f)
        ali_dir = ali_root if fmt == "txt" and ali_root.joinpath(subset).is_dir() else empty
        if fmt == "txt" and ali_dir == empty:
            # Named a level off (above the LibriSpeech/ of the unpacked zip, or a subset itself):
            # say which directory holds the subset, when a file's path shows it.
            hint = ""
            for f in files:
                if subset in f.parts[:-1]:
                    holder = Path(*f.parts[:len(f.parts) - 1 - f.parts[::-1].index(subset)])
                    hint = f" (e.g. {f}): name {holder}, which holds {subset}/"
                    break
            raise CorpusError(f"{ali_root}: .alignment.txt files must lie in <dir>/{subset}/<spk>/"
                              f"<chapter>/, as librispeech-alignments ships them{hint}")
        # Its progress bars would flood the stage log; missing audio is reported below.
        # Its readers get the lines ours read (no byte-order mark, no blank line).
        with mock.patch.object(lhotse_librispeech, "tqdm", lambda it=None, *a, **k: it), \
                mock.patch.object(lhotse_librispeech, "parse_alignments", read_alignment_txt), \
                mock.patch.object(lhotse_librispeech, "parse_utterance",
                                  _parse_utterance(lhotse_librispeech.parse_utterance)):
            try:
                m = lhotse_prepare(root, alignments_dir=ali_dir, dataset_parts=[subset],
                                   output_dir=None, num_jobs=nj)[subset]
            except AssertionError as e:
                # It found no utterance with audio: every one is missing, or lies below a
                # symlinked directory (read below).
                if "No recordings left" not in str(e):
                    raise
                m = {"recordings": RecordingSet.from_recordings([]),
                     "supervisions": SupervisionSet.from_segments([])}
    recs: RecordingSet = m["recordings"]
    sups: SupervisionSet = m["supervisions"]
    # lhotse finds the transcripts with Path.rglob, which follows no symlinked directory below
    # the subset's (a speaker linked in from another disk): their utterances were silently
    # left out. They are read here, by lhotse's parse_utterance too.
    unseen = sorted(u for u in set(trans) - set(recs.ids) if (trans[u][2] / f"{u}.flac").is_file())
    if unseen:
        extra, ali_files = [], {}
        for u in unseen:
            words, _, chapter_dir = trans[u]
            ali = {}
            if fmt == "txt":
                f = ali_root / chapter_dir.relative_to(root) / f"{u.rsplit('-', 1)[0]}.alignment.txt"
                if f not in ali_files:
                    ali_files[f] = read_alignment_txt(f) if f.is_file() else {}
                ali = ali_files[f]
            extra.append(lhotse_librispeech.parse_utterance(part_dir, f"{u} {' '.join(words)}", ali))
        recs = RecordingSet.from_recordings(list(recs) + [r for r, _ in extra])
        sups = SupervisionSet.from_segments(list(sups) + [s for _, s in extra])
    missing = sorted(set(trans) - set(recs.ids))
    if missing:
        u = missing[0]
        raise CorpusError(f"{trans[u][1]}: no audio {trans[u][2] / (u + '.flac')} for utterance {u}"
                          f" ({len(missing)} utterance(s) of {subset} have none)")
    for r in recs:
        if r.sampling_rate != sampling_rate:
            raise CorpusError(f"{r.sources[0].source}: sampling rate {r.sampling_rate} Hz, "
                              f"expected {sampling_rate}")
    aligned: dict[str, tuple[list[AlignmentItem], str]] = {}
    if fmt == "textgrid":
        for f in files:
            utt = f.stem
            if utt in trans:
                if utt in aligned:
                    raise CorpusError(f"{f}: a second TextGrid of utterance {utt} (the first: "
                                      f"{aligned[utt][1]}); keep one of them, or name the "
                                      f"directory of one aligner run with --ctm "
                                      f"(LIBRISPEECH_ALIGNMENTS in db.sh)")
                aligned[utt] = (textgrid_words(f), str(f))
    out = []
    for s in sups:
        words, where, chapter_dir = trans[s.id]
        if fmt is None:
            items, ali_where = None, ""
        elif fmt == "txt":
            items = (s.alignment or {}).get("word")
            ali_where = str(ali_dir / chapter_dir.relative_to(root) /
                            f"{s.id.rsplit('-', 1)[0]}.alignment.txt")
        else:
            items, ali_where = aligned.get(s.id, (None, ""))
        alignment = None
        if items is None:
            stats["unaligned_utterances"] += 1
        else:
            end = s.start + s.duration
            for it in items:
                if it.start < -TIME_TOLERANCE or it.start + it.duration > end + TIME_TOLERANCE:
                    raise CorpusError(f"{ali_where}: utterance {s.id}: word {it.symbol!r} at "
                                      f"{it.start:.3f}-{it.start + it.duration:.3f} s lies outside "
                                      f"its audio (0-{end:.3f} s)")
            clean = clean_alignment(items, words, ali_where, s.id, stats)
            alignment = {"word": [AlignmentItem(symbol=i.symbol, start=round(max(0.0, i.start), 6),
                                                duration=round(min(i.duration, end - max(0.0, i.start)), 6))
                                  for i in clean]}
        spk = speakers.get(s.speaker, {})
        gender = spk.get("sex") if spk.get("sex") in ("M", "F") else None
        out.append(replace(s, text=" ".join(words).lower(), alignment=alignment, gender=gender))
    if fmt is not None and out and all(s.alignment is None for s in out):
        # Alignments of other subsets (or other utterances) only: the whole subset would train
        # on nothing, counted in the log as unaligned and easily missed.
        base = ali_root / subset if ali_root.joinpath(subset).is_dir() else ali_root
        kind = {"txt": "<spk>-<chapter>.alignment.txt", "textgrid": "<utterance>.TextGrid"}[fmt]
        raise CorpusError(f"{base}: none of the {len(out)} utterances of {subset} has an alignment "
                          f"there (the {len(files)} {kind} file(s) under it are of other utterances, e.g. "
                          f"{files[0]}); align {subset} too, or name the directory that holds its "
                          f"alignments with --ctm (LIBRISPEECH_ALIGNMENTS in db.sh)")
    stats["utterances"] += len(out)
    return recs, SupervisionSet.from_segments(out)


@register_corpus("librispeech")
def prepare_librispeech(
    corpus_dir: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    part: str = "train-clean-100",
    ctm: str | os.PathLike | None = None,
    name: str = "librispeech",
    num_jobs: int | None = None,
    sampling_rate: int = SAMPLING_RATE,
) -> dict:
    """LibriSpeech ``part`` (one subset, or ``<set>=<subset>,<subset>``) with word alignments
    from ``ctm`` (the alignments directory, as ``--ctm`` of ``pyadml.bin.prepare_manifests``;
    default: the corpus itself, where librispeech-alignments unpacks; ``"none"``: no alignments,
    whole utterances only). ``corpus_dir`` is the
    ``LibriSpeech`` directory (or its parent). Writes ``<name>_{recordings,supervisions}_<set
    part>.jsonl.gz``; returns ``dict(recordings, supervisions, stats)``."""
    corpus_dir = Path(corpus_dir).absolute()  # manifests load from any directory (a copied recipe)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: LibriSpeech directory does not exist")
    root = _corpus_root(corpus_dir)
    if str(ctm) == "none":
        ali_root = None
    else:
        ali_root = Path(ctm) if ctm is not None else root
        if not ali_root.is_dir():
            raise CorpusError(f"{ali_root}: alignments directory does not exist")
        ali_root = _corpus_root(ali_root)
    set_part, subsets = parse_part(part)
    speakers = read_speakers(root / "SPEAKERS.TXT") if (root / "SPEAKERS.TXT").is_file() else {}
    nj = int(num_jobs or os.environ.get("PYADML_NPROC") or os.cpu_count() or 1)
    stats: Counter = Counter()
    recs, sups = [], []
    for subset in subsets:
        r, s = _prepare_subset(root, ali_root, subset, speakers, nj, sampling_rate, stats)
        recs += list(r)
        sups += list(s)
    rec_set = RecordingSet.from_recordings(recs)
    sup_set = SupervisionSet.from_segments(sups)
    _lhotse_validate(rec_set, sup_set, str(root))
    _write_pair(output_dir, name, set_part, rec_set, sup_set)
    stats = {k: stats.get(k, 0) for k in ("utterances", "words", "unknown", "silence",
                                          "unaligned_utterances")}
    stats["speakers"] = len({s.speaker for s in sups})
    log.info("librispeech %s (%s): %s", set_part, ",".join(subsets), stats)
    print(f"librispeech {set_part} ({','.join(subsets)}): {stats.get('utterances', 0)} utterances of "
          f"{stats['speakers']} speakers; {stats.get('words', 0)} aligned words, of which "
          f"{stats.get('unknown', 0)} unknown (kept as {UNK}, dropped by stage 2); "
          f"{stats.get('silence', 0)} silence intervals dropped; "
          f"{stats.get('unaligned_utterances', 0)} utterances without an alignment")
    return {"recordings": rec_set, "supervisions": sup_set, "stats": stats}


# ----------------------------------------------------------------------------------------------
# train/test speaker disjointness


def _manifest_speakers(path: Path) -> set[str]:
    out = set()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            spk = json.loads(line).get("speaker")
            if spk is not None:
                out.add(str(spk))
    return out


def set_speakers(manifest_dir: str | os.PathLike, set_name: str) -> set[str]:
    """Speakers of a set: its supervisions' speakers, and for a LibriPhrase-style set also
    the ``anchor_spk``/``comparison_spk`` of its pair rows (``<corpus>_pairs_<part>``)."""
    from pyadml.data.manifests import find_set_manifest

    sup = find_set_manifest(manifest_dir, set_name, "supervisions")
    spk = _manifest_speakers(sup)
    pairs = Path(str(sup).replace("_supervisions_", "_pairs_"))
    if pairs.is_file():
        with gzip.open(pairs, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                spk.update(str(row[k]) for k in ("anchor_spk", "comparison_spk") if k in row)
    return spk


class SpeakerOverlap(CorpusError):
    """Training and test sets share speakers."""


def check_disjoint_speakers(manifest_dir: str | os.PathLike, train_set: str,
                            test_sets: Iterable[str]) -> dict[str, int]:
    """Fail (:class:`SpeakerOverlap`, naming the speakers) when a test set shares a speaker
    with the training set; returns the speaker count of every set."""
    train = set_speakers(manifest_dir, train_set)
    counts = {train_set: len(train)}
    for name in test_sets:
        test = set_speakers(manifest_dir, name)
        counts[name] = len(test)
        both = sorted(train & test, key=lambda s: (len(s), s))
        if both:
            shown = ", ".join(both[:20]) + (f", ... ({len(both)} in all)" if len(both) > 20 else "")
            if name.startswith("libriphrase"):
                why = ("LibriPhrase's test pairs are cut from LibriSpeech train-other-500: train "
                       "without that subset (run.sh --train-parts) while LibriPhrase is a test set")
            else:
                why = ("train without the subset(s) these speakers come from (run.sh "
                       "--train-parts), or test on another one")
            raise SpeakerOverlap(f"training set {train_set} and test set {name} share "
                                 f"{len(both)} speaker(s): {shown}. {why}")
    return counts


def main(argv=None) -> int:
    """``check-disjoint <manifest-dir> <train-set> <test-set> ...``: the speaker check of a
    LibriSpeech recipe (called by its local/check_disjoint_speakers.py)."""
    import argparse

    p = argparse.ArgumentParser(prog="check_disjoint_speakers",
                                description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check-disjoint", help="fail when a test set shares speakers with training")
    c.add_argument("manifest_dir")
    c.add_argument("train_set")
    c.add_argument("test_sets", nargs="+")
    args = p.parse_args(argv)
    try:
        counts = check_disjoint_speakers(args.manifest_dir, args.train_set, args.test_sets)
    except (CorpusError, FileNotFoundError, ValueError) as e:
        print(f"check-disjoint: {e}", file=sys.stderr)
        return 1
    print("check-disjoint: no speaker in common: " +
          ", ".join(f"{n} {k} speakers" for n, k in counts.items()))
    return 0
