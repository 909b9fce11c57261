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


# Stage 2's multi-word spans (conf/data.yaml word_cuts.spans); every key is optional.
DEFAULT_SPANS = {
    "share": 0.0,          # span cuts per single-word cut of the training set; 0: none
    "min_words": 2,
    "max_words": 4,
    "max_duration": 2.5,   # seconds, first word start to last word end (without padding)
    "max_gap": 0.5,        # a longer pause between two words breaks a span
}


def check_span_config(cfg: dict | None) -> dict:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_SPANS))
    if unknown:
        raise ValueError(f"word_cuts.spans: unknown option(s) {unknown}; known: {sorted(DEFAULT_SPANS)}")
    out = {**DEFAULT_SPANS, **cfg}
    try:
        out = {k: (int(v) if k.endswith("_words") else float(v)) for k, v in out.items()}
    except (TypeError, ValueError):
        raise ValueError(f"word_cuts.spans: expected numbers, got {cfg}") from None
    if out["share"] < 0 or not 2 <= out["min_words"] <= out["max_words"]:
        raise ValueError(f"word_cuts.spans: need share >= 0 and 2 <= min_words <= max_words, got {out}")
    return out


def is_span(cut) -> bool:
    """A multi-word span cut of stage 2 (``supervision.custom["span"]`` = its number of words)."""
    sups = getattr(cut, "supervisions", None)
    return bool(sups) and bool((sups[0].custom or {}).get("span"))


def homophone_classes(words, encode) -> dict[str, str]:
    """Each word -> the first, in sorted order, of the words whose phone ids (``encode``) equal
    its own: "for" and "four" become one keyword class. The text encoder cannot tell them apart,
    so as two classes they would ask the audio side for a difference no query can use."""
    first: dict[tuple, str] = {}
    out = {}
    for w in sorted(set(words)):
        out[w] = first.setdefault(tuple(encode(w)), w)
    return out


def merge_homophones(cuts, encode) -> tuple[list, dict[str, str]]:
    """The single-word cuts with each supervision's text replaced by its homophone class
    (``homophone_classes``); span cuts unchanged. Returns (cuts, {word: class} for the merged
    words only)."""
    from lhotse.utils import fastcopy

    cuts = list(cuts)
    classes = homophone_classes((c.supervisions[0].text for c in cuts if not is_span(c)), encode)
    merged = {w: k for w, k in classes.items() if w != k}
    out = []
    for c in cuts:
        sup = c.supervisions[0]
        if not is_span(c) and sup.text in merged:
            c = fastcopy(c, supervisions=[fastcopy(sup, text=merged[sup.text]), *c.supervisions[1:]])
        out.append(c)
    return out, merged


def span_candidates(supervisions: SupervisionSet, *, min_words: int = 2, max_words: int = 4,
                    max_duration: float = 2.5, max_gap: float = 0.5, max_word_duration: float = 2.0,
                    word_filter: WordFilter | None = None):
    """Every run of ``min_words``..``max_words`` consecutive CTM words of each utterance:
    yields (supervision, index of the first word, the words' (start, end, text) triples).

    A token that is not a word (``word_filter``), a word longer than ``max_word_duration``
    (a likely misalignment) or a pause longer than ``max_gap`` between two words breaks a span;
    words shorter than the single-word minimum ("a", "of") stay inside spans. A span lasts at
    most ``max_duration`` from its first word's start to its last word's end.
    """
    word_filter = word_filter or WordFilter()
    for sup in supervisions:
        items = (sup.alignment or {}).get("word") or []
        # Runs of consecutive usable words: (CTM index, start, end, text).
        runs, run = [], []
        for k, item in enumerate(items):
            text, kind = word_filter(item.symbol)
            end = item.start + item.duration
            ok = kind is None and item.duration <= max_word_duration
            if run and (not ok or item.start - run[-1][2] > max_gap):
                runs.append(run)
                run = []
            if ok:
                run.append((k, item.start, end, text))
        if run:
            runs.append(run)
        for run in runs:
            for i in range(len(run)):
                for n in range(min_words, max_words + 1):
                    if i + n > len(run):
                        break
                    words = run[i:i + n]
                    if words[-1][2] - words[0][1] > max_duration:
                        break
                    yield sup, words[0][0], [(w[1], w[2], w[3]) for w in words]


def make_span_cuts(recordings: RecordingSet, supervisions: SupervisionSet, *, count: int,
                   seed: int = 1, pad: float = 0.05, word_filter: WordFilter | None = None,
                   max_word_duration: float = 2.0, **span_opts) -> tuple[CutSet, dict]:
    """``count`` multi-word span cuts drawn (seeded, without replacement) from every candidate
    of :func:`span_candidates`, each [first start - pad, last end + pad] like a word cut.

    The supervision text is the words' normal forms joined by spaces (so the phone sequence is
    the words' phones in order, as for a LibriPhrase phrase); ``custom`` holds ``utt``, the CTM
    tokens (``word``) and ``span`` = the number of words. Returns the cuts and counts by length.
    """
    import random

    cands = list(span_candidates(supervisions, word_filter=word_filter,
                                 max_word_duration=max_word_duration, **span_opts))
    picked = sorted(random.Random(f"{seed}-spans").sample(range(len(cands)), min(count, len(cands))))
    cuts, by_len = [], Counter()
    for j in picked:
        sup, k, words = cands[j]
        rec = recordings[sup.recording_id]
        w0, w1 = words[0][0], words[-1][1]
        start = max(0.0, w0 - pad)
        end = min(rec.duration, w1 + pad)
        cut_id = f"{sup.id}_{k:03d}_s{len(words)}"
        cuts.append(MonoCut(
            id=cut_id, start=round(start, 6), duration=round(end - start, 6), channel=0,
            recording=rec,
            supervisions=[SupervisionSegment(
                id=cut_id, recording_id=rec.id, start=round(w0 - start, 6),
                duration=round(min(w1, end) - w0, 6), text=" ".join(w[2] for w in words),
                speaker=sup.speaker,
                custom={"utt": sup.id, "word": " ".join(
                    a.symbol for a in sup.alignment["word"][k:k + len(words)]), "span": len(words)},
            )],
        ))
        by_len[len(words)] += 1
    return CutSet.from_cuts(cuts), {"candidates": len(cands), "kept": len(cuts),
                                     "by_words": {str(n): by_len[n] for n in sorted(by_len)}}


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
    """Texts of the single-word cuts (multi-word spans are no keywords)."""
    return Counter(c.supervisions[0].text for c in cuts if not is_span(c))


_WORD_CUT_KEYS = {"pad", "min_duration", "max_duration", "dev_fraction", "seed", "drop", "g2p",
                  "spans"}
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
    if dev_set and not len(dev):
        # Named here: stage 4 would stop later on a features file that "holds no cuts".
        utts = len({c.supervisions[0].custom["utt"] for c in train_all})
        raise ValueError(f"dev set {dev_set} is empty: dev_fraction "
                         f"{float(cfg.get('dev_fraction', 0.0)):g} of {train_set}'s {utts} "
                         f"utterance(s) held none out (utterances are drawn by a hash of their "
                         f"ids); raise word_cuts.dev_fraction in conf/data.yaml or add utterances")
    span_cfg = check_span_config(cfg.get("spans"))
    if span_cfg["share"] > 0:
        # Drawn over all utterances, then those of dev utterances are left out: the dev set
        # stays single words (its trials are words), and no dev utterance is trained on.
        share = span_cfg.pop("share")
        spans, span_stats = make_span_cuts(
            *load_set_manifests(manifest_dir, train_set), count=round(share * len(train_all)),
            seed=int(cfg.get("seed", 1)), pad=opts.get("pad", 0.05), word_filter=word_filter,
            max_word_duration=opts.get("max_duration", 2.0), **span_cfg)
        spans, dev_spans = split_dev(spans, float(cfg.get("dev_fraction", 0.0)), int(cfg.get("seed", 1)))
        span_stats.update(share=share, dropped_dev_utterances=len(dev_spans), train=len(spans))
        log.info("%s: %d multi-word spans of %d candidates (%s words), beside %d word cuts",
                 train_set, len(spans), span_stats["candidates"], span_stats["by_words"], len(train))
        report["spans"] = {train_set: span_stats}
        train = CutSet.from_cuts(list(train) + list(spans))
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
                                "spans": sum(1 for c in cuts if is_span(c)),
                                "hours": round(sum(c.duration for c in cuts) / 3600, 4)}
    write_keyword_ids(lang_dir / "keywords.txt", sorted(keyword_counts(train)))
    texts = sorted({c.supervisions[0].text for cs in sets.values() for c in cs if c.supervisions})
    tokenizer = Tokenizer.build(texts, cfg.get("g2p") or {})
    tokenizer.write_lang_dir(lang_dir)
    report["lexicon_words"] = len(tokenizer.lexicon)
    report["g2p"] = tokenizer.g2p_options
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    return report
