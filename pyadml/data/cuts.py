"""Stage 2: word-level cuts from the CTM word alignments of utterance supervisions.

The paper trains and tests on word-level segments: every aligned word becomes one cut whose
single supervision is the word, padded by a little context on each side.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

from lhotse import CutSet, MonoCut, RecordingSet, SupervisionSegment, SupervisionSet

from pyadml.text.normalize import KeywordError, normalize_text

log = logging.getLogger(__name__)


# What stage 2 drops from a CTM before it cuts words, by kind; conf/data.yaml may replace
# these. Patterns are matched (re.fullmatch, case-insensitive) against the CTM token.
DEFAULT_DROP_PATTERNS = {
    "noise_marker": r"\[.*\]",                # [NOISE], [laughter], [breath]
    "unknown_or_noise_token": r"<.*>",         # <UNK>, <SPOKEN_NOISE>, <sil>
    # WSJ's spoken punctuation: ,COMMA  .PERIOD  "DOUBLE-QUOTE  'SINGLE-QUOTE  --DASH
    "verbal_punctuation": r"\\?[^a-z0-9'\s]+[a-z]+(-[a-z]+)*|'single-quote",
    "partial_word": r"-\S*|\S*-|\S*\(\S*\)\S*",   # th-  -tion  comp(uter)
    "mispronounced": r"\*\S+\*",              # *word*
}
UNPRONOUNCEABLE = "unpronounceable"  # the kind of a token whose normal form is empty


class WordFilter:
    """Decides, for one CTM token, whether it is a word, and its normal form.

    A token matching a drop pattern is dropped under that pattern's kind; otherwise it is
    normalised as the G2P normalises keywords (case, punctuation, abbreviations, numerals,
    apostrophes), and dropped as ``unpronounceable`` when nothing is left.
    """

    def __init__(self, patterns: dict[str, str] | None = None):
        patterns = DEFAULT_DROP_PATTERNS if patterns is None else patterns
        if not isinstance(patterns, dict):
            raise ValueError(f"word_cuts.drop: expected a mapping kind -> regular expression, got {patterns!r}")
        self.patterns = {}
        for kind, rx in patterns.items():
            try:
                self.patterns[str(kind)] = re.compile(str(rx), re.IGNORECASE)
            except re.error as e:
                raise ValueError(f"word_cuts.drop.{kind}: bad regular expression {rx!r}: {e}") from None

    def __call__(self, token: str) -> tuple[str | None, str | None]:
        """(normalised text, None) for a word, (None, kind) for a dropped token."""
        for kind, rx in self.patterns.items():
            if rx.fullmatch(token):
                return None, kind
        try:
            words = normalize_text(token)
        except KeywordError:
            return None, UNPRONOUNCEABLE
        return (" ".join(words), None) if words else (None, UNPRONOUNCEABLE)


@dataclass
class WordCutStats:
    kept: int = 0
    too_short: int = 0
    too_long: int = 0
    no_alignment: int = 0
    dropped: Counter = field(default_factory=Counter)  # non-words by kind
    examples: dict[str, list[str]] = field(default_factory=dict)

    def _example(self, kind: str, what: str) -> None:
        ex = self.examples.setdefault(kind, [])
        if len(ex) < 5:
            ex.append(what)

    def as_dict(self) -> dict:
        return {"kept": self.kept, "too_short": self.too_short, "too_long": self.too_long,
                "no_alignment": self.no_alignment, "dropped_non_words": dict(self.dropped),
                "examples": self.examples}

    def __str__(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return (f"kept {self.kept} word cuts; dropped {self.too_short} shorter than the minimum and "
                f"{self.too_long} longer than the maximum; non-words dropped: {drops}; "
                f"{self.no_alignment} utterances had no word alignment")


def make_word_cuts(
    recordings: RecordingSet,
    supervisions: SupervisionSet,
    *,
    pad: float = 0.05,
    min_duration: float = 0.1,
    max_duration: float = 2.0,
    word_filter: WordFilter | None = None,
) -> tuple[CutSet, WordCutStats]:
    """One cut per aligned word: [start - pad, end + pad] clipped to the recording.

    Non-words (``word_filter``) are dropped first, then ``min_duration``/``max_duration``
    apply to the word itself (without padding); every drop is counted in the returned stats.
    The cut's supervision text is the normalised word (it may be several words: "1990s" ->
    "nineteen nineties"); ``custom["word"]`` keeps the CTM token.
    """
    word_filter = word_filter or WordFilter()
    stats = WordCutStats()
    cuts = []
    for sup in supervisions:
        words = (sup.alignment or {}).get("word")
        if not words:
            stats.no_alignment += 1
            continue
        rec = recordings[sup.recording_id]
        for k, item in enumerate(words):
            text, kind = word_filter(item.symbol)
            if kind is not None:
                stats.dropped[kind] += 1
                stats._example(kind, f"{sup.id}:{item.symbol}")
                continue
            if item.duration < min_duration:
                stats.too_short += 1
                stats._example("too_short", f"{sup.id}:{item.symbol}")
                continue
            if item.duration > max_duration:
                stats.too_long += 1
                stats._example("too_long", f"{sup.id}:{item.symbol}")
                continue
            start = max(0.0, item.start - pad)
            end = min(rec.duration, item.start + item.duration + pad)
            cut_id = f"{sup.id}_{k:03d}"
            cuts.append(MonoCut(
                id=cut_id, start=round(start, 6), duration=round(end - start, 6), channel=0,
                recording=rec,
                supervisions=[SupervisionSegment(
                    id=cut_id, recording_id=rec.id, start=round(item.start - start, 6),
                    duration=round(min(item.duration, end - item.start), 6),
                    text=text, speaker=sup.speaker,
                    custom={"utt": sup.id, "word": item.symbol},
                )],
            ))
            stats.kept += 1
    return CutSet.from_cuts(cuts), stats


def make_phrase_cuts(recordings: RecordingSet, supervisions: SupervisionSet) -> CutSet:
    """Whole-recording cuts (LibriPhrase segments) whose id is the recording id, as trials name it."""
    by_rec: dict[str, list[SupervisionSegment]] = {}
    for sup in supervisions:
        by_rec.setdefault(sup.recording_id, []).append(sup)
    return CutSet.from_cuts(
        MonoCut(id=rec.id, start=0.0, duration=rec.duration, channel=0, recording=rec,
                supervisions=by_rec.get(rec.id, []))
        for rec in recordings
    )


def split_dev(cuts: CutSet, fraction: float, seed: int) -> tuple[CutSet, CutSet]:
    """Hold out whole utterances (all their words) for a dev set, chosen by a stable hash."""
    if fraction <= 0:
        return cuts, CutSet.from_cuts([])
    threshold = int(fraction * 2**32)

    def in_dev(c) -> bool:
        utt = c.supervisions[0].custom["utt"]
        return zlib.crc32(f"{seed}:{utt}".encode()) < threshold

    train, dev = [], []
    for c in cuts:
        (dev if in_dev(c) else train).append(c)
    return CutSet.from_cuts(train), CutSet.from_cuts(dev)


def keyword_counts(cuts: CutSet) -> Counter:
    return Counter(c.supervisions[0].text for c in cuts)


_WORD_CUT_KEYS = {"pad", "min_duration", "max_duration", "dev_fraction", "seed", "drop", "g2p"}
PROTOCOL_CUTS = {"words": "word cuts from the word alignments", "pairs": "whole-recording cuts"}


def make_sets(manifest_dir, out_dir, lang_dir, cfg: dict, train_set: str, dev_set: str | None,
              test_sets: list[tuple[str, str]]) -> dict:
    """Stage 2: word cuts of ``train_set`` (``dev_set`` held out of it by whole utterances),
    the cuts of each (name, protocol) test set, the training keyword ids, and the lang
    directory (lexicon over every keyword, phone table, G2P options) that the one tokenizer
    reads. Writes ``<out_dir>/<set>.jsonl.gz`` and ``<out_dir>/report.json``; returns the report.
    """
    from pathlib import Path

    from pyadml.data.dataset import write_keyword_ids
    from pyadml.data.features import save_cuts
    from pyadml.data.manifests import load_set_manifests
    from pyadml.fileio import write_text_atomic
    from pyadml.text import Tokenizer

    unknown = set(cfg) - _WORD_CUT_KEYS
    if unknown:
        raise ValueError(f"word_cuts: unknown option(s) {sorted(unknown)}; known: {sorted(_WORD_CUT_KEYS)}")
    for name, protocol in test_sets:
        if protocol not in PROTOCOL_CUTS:
            raise ValueError(f"test set {name}: unknown protocol {protocol!r}; known: {sorted(PROTOCOL_CUTS)}")
    names = [train_set] + ([dev_set] if dev_set else []) + [n for n, _ in test_sets]
    if len(set(names)) != len(names):
        raise ValueError(f"set names must differ: {names}")
    manifest_dir, out_dir, lang_dir = Path(manifest_dir), Path(out_dir), Path(lang_dir)
    opts = {k: float(cfg[k]) for k in ("pad", "min_duration", "max_duration") if k in cfg}
    word_filter = WordFilter(cfg.get("drop"))

    report: dict = {"sets": {}, "dropped": {}}
    train_all, stats = make_word_cuts(*load_set_manifests(manifest_dir, train_set),
                                      word_filter=word_filter, **opts)
    log.info("%s: %s", train_set, stats)
    report["dropped"][train_set] = stats.as_dict()
    train, dev = split_dev(train_all, float(cfg.get("dev_fraction", 0.0)), int(cfg.get("seed", 1)))
    if not len(train):
        raise ValueError(f"training set {train_set} has no word cuts left ({stats})")
    sets = {train_set: train}
    if dev_set:
        sets[dev_set] = dev
    for name, protocol in test_sets:
        recordings, supervisions = load_set_manifests(manifest_dir, name)
        if protocol == "words":
            cuts, st = make_word_cuts(recordings, supervisions, word_filter=word_filter, **opts)
            log.info("%s: %s", name, st)
            report["dropped"][name] = st.as_dict()
        else:
            cuts = make_phrase_cuts(recordings, supervisions)
        if not len(cuts):
            raise ValueError(f"test set {name} has no cuts")
        sets[name] = cuts
    for name, cuts in sets.items():
        save_cuts(cuts, out_dir / f"{name}.jsonl.gz")
        report["sets"][name] = {"cuts": len(cuts), "keywords": len(keyword_counts(cuts)),
                                "hours": round(sum(c.duration for c in cuts) / 3600, 4)}
    write_keyword_ids(lang_dir / "keywords.txt", sorted(keyword_counts(train)))
    texts = sorted({c.supervisions[0].text for cs in sets.values() for c in cs if c.supervisions})
    tokenizer = Tokenizer.build(texts, cfg.get("g2p") or {})
    tokenizer.write_lang_dir(lang_dir)
    report["lexicon_words"] = len(tokenizer.lexicon)
    report["g2p"] = tokenizer.g2p_options
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    return report
