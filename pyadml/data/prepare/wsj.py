"""The WSJ corpus, from a Kaldi data directory or the LDC tree (.dot transcripts) plus a CTM."""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from lhotse import RecordingSet

from pyadml.data.prepare.audio import _probe
from pyadml.data.prepare.common import (
    SAMPLING_RATE,
    UNKNOWN_MARKS,
    CorpusError,
    _find_files,
    _lhotse_validate,
    _lines,
    _where,
    _write_pair,
)
from pyadml.data.prepare.kaldi import (
    _attach_ctm,
    _parse_ctm,
    _supervisions,
    _Utt,
    prepare_kaldi_dir,
)
from pyadml.data.prepare.registry import register_corpus

log = logging.getLogger(__name__)


_DOT_LINE = re.compile(r"^(.*)\(([^()\s]+)\)\s*$")


def _letters(tok: str) -> str:
    return re.sub(r"[^a-z']", "", tok.lower()).strip("'")


def _is_noise(tok: str) -> bool:
    """An LDC noise or event marker: [loud_breath], [<door_slam], [/phone_ring]."""
    return tok[0] == "[" or tok[-1] == "]"


def normalise_wsj_text(text: str) -> list[str]:
    """LDC transcript words as spoken: noise markers ([...]) dropped, verbal deletions (<ah>:
    said, and marked so) kept as Kaldi's WSJ recipe keeps them, then only letters and
    apostrophes, lower-cased (``\\.PERIOD`` -> ``period``, ``*WORD*`` -> ``word``, ``A:ND`` ->
    ``and``)."""
    return [w for w in map(_letters, (t for t in text.split() if not _is_noise(t))) if w]


def dot_word_optional(tok: str) -> bool:
    """A .dot token an aligner's CTM may leave out: a noise marker, a verbal deletion, or one
    with no letters (``~`` truncation, ``.`` pause)."""
    return _is_noise(tok) or (tok[0] == "<" and tok[-1] == ">") or not _letters(tok)


def dot_word_matches(tok: str, ctm_word: str) -> bool:
    """Whether a CTM word aligns a .dot token, whatever the aligner did to its spelling: the
    letters agree (``U.S.`` or ``us`` for ``U\\.S\\.``, ``"DOUBLE-QUOTE`` for
    ``\\"DOUBLE-QUOTE``, ``and`` for ``A:ND`` or ``<and>``); an OOV symbol (``<SPOKEN_NOISE>``)
    for a word; any other ``<...>``/``[...]`` symbol (Kaldi's ``<NOISE>``) for a noise marker."""
    c = ctm_word.lower()
    if _is_noise(tok):
        return c[0] in "[<" and c[-1] in "]>" and c not in UNKNOWN_MARKS
    if c in UNKNOWN_MARKS:
        return True
    letters = _letters(tok)
    return bool(letters) and letters == _letters(c)


def _read_dots(dots: list[Path]) -> dict[str, tuple[list[str], str]]:
    """utterance id -> (its .dot tokens, backslashes removed, as Kaldi's WSJ recipe reads them;
    where)."""
    transcripts: dict[str, tuple[list[str], str]] = {}
    for dot in dots:
        for n, line in _lines(dot):
            m = _DOT_LINE.match(line.strip())
            if not m:
                raise CorpusError(f"{_where(dot, n)}: expected 'WORDS ... (utterance-id)', "
                                  f"got {line.strip()!r}")
            utt, tokens = m.group(2).lower(), m.group(1).replace("\\", "").split()
            if utt in transcripts and transcripts[utt][0] != tokens:
                raise CorpusError(f"{_where(dot, n)}: utterance {utt} has another transcript "
                                  f"in {transcripts[utt][1]}")
            transcripts.setdefault(utt, (tokens, _where(dot, n)))
    return transcripts


@register_corpus("wsj")
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
    ``<stem>_<channel>``. Shorten-compressed SPHERE is read through ``sph2pipe`` when it is on PATH,
    else with the built-in decoder (``python -m pyadml.bin.sph2wav``, :mod:`pyadml.sphere`).
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
    _attach_ctm(ctm, ctm_words, utts, skip_keys=no_text, aliases=aliases,
                same=dot_word_matches, optional=dot_word_optional)
    for u in utts.values():
        u.words = normalise_wsj_text(" ".join(u.words))
    rec_set = RecordingSet.from_recordings(u.recording for u in utts.values())
    sup_set = _supervisions(utts.values(), True)
    _lhotse_validate(rec_set, sup_set, str(corpus_dir))
    _write_pair(output_dir, "wsj", part, rec_set, sup_set)
    return {"recordings": rec_set, "supervisions": sup_set}
