"""Kaldi data directories plus word CTMs, and the generic ``kaldi`` corpus built on them."""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.supervision import AlignmentItem

from pyadml.data.prepare.audio import _probe
from pyadml.data.prepare.common import (
    SAMPLING_RATE,
    SILENCE_MARKS,
    TIME_TOLERANCE,
    UNK,
    UNKNOWN_MARKS,
    CorpusError,
    _kaldi_table,
    _lhotse_validate,
    _lines,
    _need_file,
    _number,
    _where,
    _write_pair,
)
from pyadml.data.prepare.registry import register_corpus

log = logging.getLogger(__name__)

RESAMPLE_HINT = ("prepare it with --resample to have it resampled when loaded, or convert the "
                 "files")


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
    channel: str = "1"


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
        words.append(_CtmWord(parts[0], start, dur, parts[4], n, parts[1]))
    return words


def _file_and_channel_keys(path: Path, words: list[_CtmWord], recordings: dict) -> None:
    """Kaldi's get_ctm.sh keys a CTM by ``<file> <channel>`` where the data directory has a
    ``reco2file_and_channel`` (``<recording> <file> <channel>``: Switchboard's two sides of a
    call, ``sw02001-A sw02001 A``): such keys become their recording ids, in place."""
    table = {}
    for rec, (f, n) in _kaldi_table(path, fields=3).items():
        if rec not in recordings:
            raise CorpusError(f"{_where(path, n)}: recording {rec} is not in wav.scp")
        table[(f[0], f[1])] = rec
    for w in words:
        rec = table.get((w.key, w.channel))
        if rec is not None and w.key not in recordings:
            w.key = rec


def same_word(text_word: str, ctm_word: str) -> bool:
    """A Kaldi text word and its CTM word: the same but for case, or an aligner's OOV symbol
    (UNKNOWN_MARKS: it stands for the text's word at its place; stage 2 drops it, so that word
    gives no cut, and the utterance's other words keep theirs)."""
    c = ctm_word.lower()
    return c == text_word.lower() or c in UNKNOWN_MARKS


def _match_words(path: Path, u: _Utt, got: list[_CtmWord], same, optional) -> None:
    """CorpusError unless the CTM words ``got`` spell ``u.words`` in order, where each CTM word
    is ``same`` as its text word and a text word that ``optional`` accepts may have no CTM word
    (dynamic programming over (text words, CTM words) consumed; no CTM word is skipped)."""
    text, n, m = u.words, len(u.words), len(got)
    if optional is None and n == m and all(same(t, w.word) for t, w in zip(text, got)):
        return  # the common case, without the table
    opt = [optional is not None and optional(t) for t in text]
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reach[i][j] or i == n:
                continue
            if opt[i]:
                reach[i + 1][j] = True
            if j < m and same(text[i], got[j].word):
                reach[i + 1][j + 1] = True
    if reach[n][m]:
        return
    # Report the first CTM word that no way of reading the text accepts.
    j = max(jj for ii in range(n + 1) for jj in range(m + 1) if reach[ii][jj])
    if j == m:
        i = max(ii for ii in range(n + 1) if reach[ii][m])
        while opt[i]:
            i += 1  # the first word after the best reading that the CTM may not leave out
        if optional is None:
            raise CorpusError(f"{u.where}: utterance {u.id} has {n} words but {path} aligns {m} "
                              f"of them (none for word {i + 1} {text[i]!r})")
        raise CorpusError(f"{u.where}: {path} aligns {m} words to utterance {u.id}, none to "
                          f"its word {i + 1} {text[i]!r}")
    w = got[j]
    i = min(ii for ii in range(n + 1) if reach[ii][j])
    while i < n and opt[i] and not same(text[i], w.word):
        i += 1  # skippable text words before the one the CTM word fails to match
    if i >= n and optional is None:
        raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} is word {j + 1} of "
                          f"utterance {u.id}, whose text ({u.where}) has only {n}")
    if i >= n:
        raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} is word {j + 1} of "
                          f"utterance {u.id}, after every word of its text ({u.where})")
    raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} does not match word "
                      f"{i + 1} {text[i]!r} of utterance {u.id} in {u.where}")


def _attach_ctm(
    path: Path, words: list[_CtmWord], utts: dict[str, _Utt], skip_keys: set[str] = frozenset(),
    aliases: dict[str, list[str]] | None = None, same=same_word, optional=None,
) -> None:
    """Check CTM words against utterances and store them in ``utt.aligned`` (recording times).

    A CTM key is an utterance id (times relative to the utterance, i.e. to its segment), or,
    with segments, a recording id (times relative to the recording; each word goes to the
    segment that holds it). ``skip_keys``: keys whose lines are ignored; ``aliases``: a key
    naming several utterances (one per microphone). ``same(text_word, ctm_word)``: whether a CTM
    word spells its text word (default: case aside, or an OOV symbol); ``optional(text_word)``:
    a text word the CTM may leave out (default: none). The CTM's own tokens are stored,
    lower-cased, an unknown mark as <unk>. An utterance the CTM does not name at all (its
    aligner failed on it) keeps no word alignment; a CTM that names none is an error.
    """
    by_rec: dict[str, list[_Utt]] = defaultdict(list)
    for u in utts.values():
        by_rec[u.recording.id].append(u)
    for us in by_rec.values():
        us.sort(key=lambda u: u.start)
    starts = {r: [u.start for u in us] for r, us in by_rec.items()}
    # Segments may overlap (meetings: one speaker's interjection inside another's turn) or nest,
    # so the latest segment to start before a word need not hold it: the running maximum of the
    # segments' ends bounds how far back a holding segment may start.
    ends = {r: list(itertools.accumulate((u.start + u.duration for u in us), max))
            for r, us in by_rec.items()}
    segmented = any(u.id != u.recording.id for u in utts.values())
    per_utt: dict[str, list[_CtmWord]] = defaultdict(list)
    taken: dict[str, int] = defaultdict(int)  # text words matched so far, per utterance

    def next_word(u: _Utt, token: str) -> int | None:
        """The index of the text word that CTM token ``token`` spells next in ``u``, or None."""
        k = taken[u.id]
        while k < len(u.words):
            if same(u.words[k], token):
                return k
            if optional is None or not optional(u.words[k]):
                return None
            k += 1
        return None

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
            # Recording-keyed CTM over a segmented directory (what Kaldi's get_ctm.sh writes
            # when there are segments): find the holding segment.
            us, end = by_rec[w.key], w.start + w.duration
            holders = []
            i = bisect.bisect_right(starts[w.key], w.start + TIME_TOLERANCE) - 1
            while i >= 0 and ends[w.key][i] > w.start:
                u = us[i]
                if w.start < u.start + u.duration and end <= u.start + u.duration + TIME_TOLERANCE:
                    holders.append(u)
                i -= 1
            if w.start < 0 or not holders:
                raise CorpusError(f"{_where(path, w.line)}: word {w.word!r} at {w.start:.3f}-{end:.3f} s of "
                                  f"recording {w.key} lies in none of its segments")
            # Of overlapping segments, the one whose text says this word next; else the
            # latest to start (a mismatch is then reported against it).
            u = holders[0]
            if w.word.lower() not in SILENCE_MARKS:
                for h in holders:
                    k = next_word(h, w.word)
                    if k is not None:
                        u = h
                        taken[h.id] = k + 1
                        break
            # A word that starts within the tolerance before its segment is cut at the
            # segment's start; its end stays where the aligner put it.
            start = max(w.start, u.start)
            per_utt[u.id].append(_CtmWord(u.id, start, end - start, w.word, w.line))
        elif w.key in skip_keys:
            continue
        else:
            raise CorpusError(f"{_where(path, w.line)}: utterance {w.key!r} is not in the corpus (no such "
                              f"utterance id in its text/transcripts)")

    silences, unaligned = 0, []
    for u in utts.values():
        if u.id not in per_utt:
            # No CTM line at all: the aligner failed on it (Kaldi and MFA leave such utterances
            # out), or its text is empty. It stays, without word alignment; stage 2 counts it as
            # no_alignment.
            if u.words:
                unaligned.append(u.id)
            continue
        got = sorted(per_utt[u.id], key=lambda w: w.start)
        # An aligner that prints its silences (<eps>, sil, !SIL) marks gaps, not words.
        said = {t.lower() for t in u.words}
        kept = [w for w in got if w.word.lower() not in SILENCE_MARKS or w.word.lower() in said]
        silences += len(got) - len(kept)
        got = kept
        _match_words(path, u, got, same, optional)
        end = u.start + u.duration
        # Within the tolerance a word may overhang; clip it so cuts stay inside the audio.
        # Unknown marks are stored as <unk>, as the LibriSpeech preparer does: stage 2 drops it.
        u.aligned = [AlignmentItem(symbol=UNK if w.word.lower() in UNKNOWN_MARKS else w.word.lower(),
                                   start=round(w.start, 6),
                                   duration=round(min(w.duration, end - w.start), 6)) for w in got]
    with_words = sum(bool(u.words) for u in utts.values())
    if unaligned and len(unaligned) == with_words:
        raise CorpusError(f"{path}: aligns none of the {with_words} utterances (e.g. "
                          f"{sorted(unaligned)[0]!r}); its first field must be an utterance id "
                          f"(or, with segments, a recording id)")
    if unaligned:
        log.warning("%s: %d of %d transcribed utterances have no word in it (e.g. %s; the "
                    "aligner failed on them?): kept without word alignment, so they give no "
                    "word cuts", path, len(unaligned), with_words, sorted(unaligned)[0])
    if silences:
        log.info("%s: %d silence marks (%s) left out", path, silences,
                 ", ".join(sorted(SILENCE_MARKS - {""})))


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


def prepare_kaldi_dir(
    data_dir: str | os.PathLike,
    ctm: str | os.PathLike | None = None,
    corpus: str = "kaldi",
    part: str = "train",
    output_dir: str | os.PathLike | None = None,
    sampling_rate: int = SAMPLING_RATE,
    resample: bool = False,
) -> dict:
    """A Kaldi data directory (wav.scp, text, utt2spk, optional segments and spk2gender) plus
    an optional word CTM, as ``dict(recordings=RecordingSet, supervisions=SupervisionSet)``.

    wav.scp entries are file paths (relative ones are taken from the current directory, as in
    Kaldi, and stored absolute) or commands ending in ``|``. Every recording is opened and must
    be non-empty at ``sampling_rate``. Supervision text is lower-cased; with a CTM each
    supervision carries ``alignment["word"]`` with times relative to the recording, and the CTM
    words of each utterance must spell its text (case-insensitively; an aligner's OOV mark
    stands for any word, silence marks are left out). An utterance the CTM does not name (its
    aligner failed on it) keeps an empty word alignment, with a warning. The CTM may be keyed by
    utterance (segment) ids, times relative to the segment, or by recording ids, or, with a
    ``reco2file_and_channel``, by its file and channel (as Kaldi's get_ctm.sh then writes it).

    ``resample``: recordings at another rate are resampled to ``sampling_rate`` when loaded
    (lhotse's Resample in the manifest; the files stay as they are), counted in a warning;
    without it they are an error.
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
    rates: Counter[int] = Counter()  # recordings resampled, by their own rate
    for rec, (spec, n) in wavs.items():
        if not spec:
            raise CorpusError(f"{_where(wav_scp, n)}: expected '<recording-id> <path>', got no path")
        recordings[rec] = _probe(spec, _where(wav_scp, n), sampling_rate, resample=resample,
                                 hint=RESAMPLE_HINT).recording(rec)
        if recordings[rec].sampling_rate != sampling_rate:
            rates[recordings[rec].sampling_rate] += 1
            recordings[rec] = recordings[rec].resample(sampling_rate)
    multi = [r for r in recordings.values() if r.num_channels > 1]
    if multi:
        # Kaldi reads a file's first channel too; a call's other side needs its own wav.scp line.
        log.warning("%s: %d recording(s) have more than one channel (%s: %d); their utterances "
                    "are taken from channel 0 only: give each channel its own wav.scp line "
                    "(a command that writes that channel) to use the others", wav_scp,
                    len(multi), multi[0].id, multi[0].num_channels)
    for rate, count in sorted(rates.items()):
        # Upsampled audio has nothing above its old Nyquist frequency, where the model's
        # features of real 16 kHz speech have energy: worth saying.
        empty = f"; they hold nothing above {rate // 2} Hz" if rate < sampling_rate else ""
        log.warning("%s: %d recording(s) at %d Hz are resampled to %d Hz when loaded%s",
                    wav_scp, count, rate, sampling_rate, empty)

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
        words = _parse_ctm(Path(ctm))
        if (data_dir / "reco2file_and_channel").is_file():
            _file_and_channel_keys(data_dir / "reco2file_and_channel", words, recordings)
        _attach_ctm(Path(ctm), words, utts)
    rec_set = RecordingSet.from_recordings(recordings.values())
    sup_set = _supervisions(utts.values(), ctm is not None)
    _lhotse_validate(rec_set, sup_set, str(data_dir))
    _write_pair(output_dir, corpus, part, rec_set, sup_set)
    return {"recordings": rec_set, "supervisions": sup_set}



@register_corpus("kaldi")
def prepare_kaldi(
    corpus_dir: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    ctm: str | os.PathLike | None = None,
    name: str = "kaldi",
    part: str = "train",
    resample: bool = False,
) -> dict:
    """Any corpus given as a Kaldi data directory (``corpus_dir``) plus an optional word CTM;
    writes ``<name>_{recordings,supervisions}_<part>.jsonl.gz``. ``resample``: recordings at
    another rate than 16 kHz are resampled when loaded (otherwise an error)."""
    return prepare_kaldi_dir(corpus_dir, ctm=ctm, corpus=name, part=part, output_dir=output_dir,
                             resample=resample)
