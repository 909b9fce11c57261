"""Stage 2: word-level cuts from the CTM word alignments of utterance supervisions.

The paper trains and tests on word-level segments: every aligned word becomes one cut whose
single supervision is the word, padded by a little context on each side.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field

from lhotse import CutSet, MonoCut, RecordingSet, SupervisionSegment, SupervisionSet

log = logging.getLogger(__name__)


@dataclass
class WordCutStats:
    kept: int = 0
    too_short: int = 0
    too_long: int = 0
    no_alignment: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"kept {self.kept} word cuts; dropped {self.too_short} shorter than the minimum and "
                f"{self.too_long} longer than the maximum; {self.no_alignment} utterances had no "
                "word alignment")


def make_word_cuts(
    recordings: RecordingSet,
    supervisions: SupervisionSet,
    *,
    pad: float = 0.05,
    min_duration: float = 0.1,
    max_duration: float = 2.0,
) -> tuple[CutSet, WordCutStats]:
    """One cut per aligned word: [start - pad, end + pad] clipped to the recording.

    ``min_duration``/``max_duration`` apply to the word itself (without padding); dropped words
    are counted in the returned stats.
    """
    stats = WordCutStats()
    cuts = []
    for sup in supervisions:
        words = (sup.alignment or {}).get("word")
        if not words:
            stats.no_alignment += 1
            continue
        rec = recordings[sup.recording_id]
        for k, item in enumerate(words):
            if item.duration < min_duration:
                stats.too_short += 1
                stats.examples.setdefault("too_short", []).append(f"{sup.id}:{item.symbol}")
                continue
            if item.duration > max_duration:
                stats.too_long += 1
                stats.examples.setdefault("too_long", []).append(f"{sup.id}:{item.symbol}")
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
                    text=item.symbol.lower(), speaker=sup.speaker, custom={"utt": sup.id},
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


_WORD_CUT_KEYS = {"pad", "min_duration", "max_duration", "dev_fraction", "seed"}


def build_recipe_cuts(manifest_dir, out_dir, lang_dir, cfg: dict) -> dict:
    """Stage 2 of the recipe: word cuts of King-ASR-066 (train and dev) and WSJ (test), whole
    LibriPhrase cuts, the keyword-id map of training and a lexicon over every keyword."""
    from pathlib import Path

    from lhotse import load_manifest

    from pyadml.data.dataset import write_keyword_ids
    from pyadml.data.features import save_cuts
    from pyadml.text import G2P, PhoneTable, write_lexicon

    unknown = set(cfg) - _WORD_CUT_KEYS
    if unknown:
        raise ValueError(f"word_cuts: unknown option(s) {sorted(unknown)}")
    manifest_dir, out_dir, lang_dir = Path(manifest_dir), Path(out_dir), Path(lang_dir)

    def load(corpus, part):
        return (load_manifest(manifest_dir / f"{corpus}_recordings_{part}.jsonl.gz"),
                load_manifest(manifest_dir / f"{corpus}_supervisions_{part}.jsonl.gz"))

    opts = {k: float(cfg[k]) for k in ("pad", "min_duration", "max_duration") if k in cfg}
    report = {}
    train_all, stats = make_word_cuts(*load("king_asr_066", "train"), **opts)
    log.info("king_asr_066: %s", stats)
    train, dev = split_dev(train_all, float(cfg.get("dev_fraction", 0.0)), int(cfg.get("seed", 1)))
    wsj, wsj_stats = make_word_cuts(*load("wsj", "test"), **opts)
    log.info("wsj: %s", wsj_stats)
    lp = make_phrase_cuts(*load("libriphrase", "test"))
    sets = {
        "king_asr_066_train_words": train, "king_asr_066_dev_words": dev,
        "wsj_test_words": wsj, "libriphrase_test": lp,
    }
    for name, cuts in sets.items():
        save_cuts(cuts, out_dir / f"{name}.jsonl.gz")
        report[name] = {"cuts": len(cuts), "keywords": len(keyword_counts(cuts)),
                        "hours": round(sum(c.duration for c in cuts) / 3600, 4)}
    report["dropped"] = {
        "king_asr_066": {"too_short": stats.too_short, "too_long": stats.too_long},
        "wsj": {"too_short": wsj_stats.too_short, "too_long": wsj_stats.too_long},
    }
    train_words = sorted(keyword_counts(train))
    write_keyword_ids(lang_dir / "keywords.txt", train_words)
    g2p = G2P()
    texts = sorted({c.supervisions[0].text for cs in sets.values() for c in cs})
    lexicon = g2p.lexicon(texts)
    write_lexicon(lang_dir / "lexicon.txt", lexicon)
    PhoneTable(g2p.inventory).write(lang_dir / "phones.txt")
    report["lexicon_words"] = len(lexicon)
    return report
