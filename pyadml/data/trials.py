"""Stage 5: trial lists, one ``cut_id<TAB>keyword<TAB>label<TAB>tag`` line per trial.

- WSJ protocol (model_spec section 9): every positive (segment, its word) plus 50 times as many
  seeded negatives (segment, another word of the evaluation vocabulary); the tag says whether the
  keyword was seen in training (``seen``/``unseen``), for the open-vocabulary AP.
- LibriPhrase protocol: four trials per CSV row, (anchor, anchor_text, 1),
  (anchor, comparison_text, target), (comparison, comparison_text, 1),
  (comparison, anchor_text, target), tagged with the row's type. LP_E = positive + easy-negative
  rows, LP_H = positive + hard-negative rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyadml.fileio import write_lines_atomic

LP_SUBSETS = {
    "lp_e": ("diffspk_positive", "diffspk_easyneg"),
    "lp_h": ("diffspk_positive", "diffspk_hardneg"),
}


@dataclass(frozen=True)
class Trial:
    cut_id: str
    keyword: str
    label: int
    tag: str = ""


def make_wsj_trials(
    segments: Sequence[tuple[str, str]],
    train_vocabulary: set[str],
    negatives_per_positive: int = 50,
    seed: int = 0,
) -> list[Trial]:
    """``segments`` are (cut id, word). Negatives for a segment are distinct words drawn without
    replacement from the other words of the evaluation vocabulary."""
    vocab = sorted({w for _, w in segments})
    if len(vocab) < 2:
        raise ValueError("the WSJ protocol needs at least two distinct words")
    k = min(negatives_per_positive, len(vocab) - 1)
    index = {w: i for i, w in enumerate(vocab)}
    rng = np.random.default_rng(seed)
    trials = []

    def tag(w: str) -> str:
        return "seen" if w in train_vocabulary else "unseen"

    for cut_id, word in sorted(segments):
        trials.append(Trial(cut_id, word, 1, tag(word)))
        # Draw from the vocabulary without the segment's own word.
        picks = rng.choice(len(vocab) - 1, size=k, replace=False)
        for p in picks:
            other = vocab[p + (p >= index[word])]
            trials.append(Trial(cut_id, other, 0, tag(other)))
    return trials


def retarget(trials: Iterable[Trial], suffix: str) -> list[Trial]:
    """The same trials on another condition of the segments (e.g. their augmented copies)."""
    return [Trial(t.cut_id + suffix, t.keyword, t.label, t.tag) for t in trials]


def make_libriphrase_trials(rows: Sequence[dict]) -> dict[str, list[Trial]]:
    """LP_E and LP_H from prepared LibriPhrase rows (keys anchor_id, anchor_text, comparison_id,
    comparison_text, target, type). Identical (cut, keyword, label) trials are kept once."""
    out = {}
    for name, types in LP_SUBSETS.items():
        seen, trials = set(), []
        for r in rows:
            if r["type"] not in types:
                continue
            target = int(r["target"])
            for cut_id, text, label in (
                (r["anchor_id"], r["anchor_text"], 1),
                (r["anchor_id"], r["comparison_text"], target),
                (r["comparison_id"], r["comparison_text"], 1),
                (r["comparison_id"], r["anchor_text"], target),
            ):
                key = (cut_id, text, label)
                if key not in seen:
                    seen.add(key)
                    trials.append(Trial(cut_id, text, label, r["type"]))
        out[name] = trials
    return out


def check_libriphrase_trials(subsets: dict[str, list[Trial]]) -> None:
    """LP_E and LP_H are built from the same positive rows: their positive-row trials agree."""
    pos = {name: {t for t in trials if t.tag == "diffspk_positive"} for name, trials in subsets.items()}
    if pos["lp_e"] != pos["lp_h"]:
        raise AssertionError("LP_E and LP_H do not share the trials of their positive rows")
    for name, trials in subsets.items():
        labels = {t.label for t in trials}
        if labels != {0, 1}:
            raise AssertionError(f"{name} has labels {sorted(labels)}; expected both 0 and 1")


def write_trials(path: str | os.PathLike, trials: Iterable[Trial]) -> None:
    write_lines_atomic(path, (f"{t.cut_id}\t{t.keyword}\t{t.label}\t{t.tag}" for t in trials))


def read_trials(path: str | os.PathLike) -> list[Trial]:
    trials = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) not in (3, 4) or parts[2] not in ("0", "1") or not parts[0] or not parts[1]:
            raise ValueError(f"{path}:{n}: expected 'cut_id<TAB>keyword<TAB>0|1[<TAB>tag]', got {line!r}")
        trials.append(Trial(parts[0], parts[1], int(parts[2]), parts[3] if len(parts) == 4 else ""))
    return trials


def summarize(trials: Sequence[Trial]) -> str:
    pos = sum(t.label for t in trials)
    return (f"{len(trials)} trials: {pos} positive, {len(trials) - pos} negative, "
            f"{len({t.cut_id for t in trials})} segments, {len({t.keyword for t in trials})} keywords")


def build_recipe_trials(cuts_dir, manifest_dir, out_dir, cfg: dict) -> dict[str, str]:
    """Stage 5 of the recipe: WSJ clean and augmented, dev, LibriPhrase LP_E and LP_H."""
    import gzip
    import json

    from lhotse import CutSet

    import pyadml.data.augment  # noqa: F401  lhotse must know our transforms to read augmented cuts

    cuts_dir, manifest_dir, out_dir = Path(cuts_dir), Path(manifest_dir), Path(out_dir)
    unknown = set(cfg) - {"negatives_per_positive", "seed"}
    if unknown:
        raise ValueError(f"trials: unknown option(s) {sorted(unknown)}")
    k, seed = int(cfg.get("negatives_per_positive", 50)), int(cfg.get("seed", 1))

    def segments(name):
        return [(c.id, c.supervisions[0].text) for c in CutSet.from_file(cuts_dir / f"{name}.jsonl.gz")]

    train_vocab = {w for _, w in segments("king_asr_066_train_words")}
    out = {}
    wsj = make_wsj_trials(segments("wsj_test_words"), train_vocab, k, seed)
    lists = {"wsj_clean": wsj, "dev": make_wsj_trials(segments("king_asr_066_dev_words"), train_vocab, k, seed)}
    aug = cuts_dir / "wsj_test_words_aug.jsonl.gz"
    if aug.exists():
        aug_ids = {c.id for c in CutSet.from_file(aug)}
        lists["wsj_aug"] = retarget(wsj, "_aug1")
        missing = {t.cut_id for t in lists["wsj_aug"]} - aug_ids
        if missing:
            raise ValueError(f"{aug} lacks augmented copies of {len(missing)} WSJ segments, "
                             f"e.g. {sorted(missing)[0]}")
    with gzip.open(manifest_dir / "libriphrase_pairs_test.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    lp = make_libriphrase_trials(rows)
    check_libriphrase_trials(lp)
    lists.update({f"libriphrase_{name}": trials for name, trials in lp.items()})
    for name, trials in lists.items():
        write_trials(out_dir / f"{name}.tsv", trials)
        out[name] = summarize(trials)
    return out
