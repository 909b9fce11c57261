"""Stage 5: trial lists, one ``cut_id<TAB>keyword<TAB>label<TAB>tag`` line per trial.

Two protocols, named in a recipe's run.sh beside each test set:
- ``words`` (the paper's WSJ protocol, section 4.1): every positive (segment, its word) plus 50
  times as many seeded negatives (segment, another word of the set's vocabulary); the tag says
  whether the keyword was seen in training (``seen``/``unseen``), for the open-vocabulary AP.
  One list, ``<set>.tsv``.
- ``pairs`` (LibriPhrase-style CSV rows): four trials per row, (anchor, anchor_text, 1),
  (anchor, comparison_text, target), (comparison, comparison_text, 1),
  (comparison, anchor_text, target), tagged with the row's type. Two lists: ``<set>_lp_e.tsv``
  (positive + easy-negative rows) and ``<set>_lp_h.tsv`` (positive + hard-negative rows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyadml.fileio import write_lines_atomic

PROTOCOLS = ("words", "pairs")
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


def make_word_trials(
    segments: Sequence[tuple[str, str]],
    train_vocabulary: set[str],
    negatives_per_positive: int = 50,
    seed: int = 0,
) -> list[Trial]:
    """``segments`` are (cut id, word). Negatives for a segment are distinct words drawn without
    replacement from the other words of the evaluation vocabulary."""
    vocab = sorted({w for _, w in segments})
    if len(vocab) < 2:
        raise ValueError("the words protocol needs at least two distinct words")
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


def make_pair_trials(rows: Sequence[dict]) -> dict[str, list[Trial]]:
    """LP_E and LP_H from prepared LibriPhrase-style rows (keys anchor_id, anchor_text, comparison_id,
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


def check_pair_trials(subsets: dict[str, list[Trial]]) -> None:
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
    """The trials of a list; a (cut, keyword) pair given twice (a list written by hand or joined
    from two) is refused: it would count twice in AP and EER, or, with two labels, as a hit and a
    false alarm at once."""
    trials, first = [], {}
    try:
        # A byte-order mark (a list saved by a Windows editor) would be part of the first cut's
        # id, which then looked present in the "not in the set" error.
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue  # a blank line (one at the end of a hand-written list)
        parts = line.split("\t")
        if len(parts) not in (3, 4) or parts[2] not in ("0", "1") or not parts[0] or not parts[1]:
            raise ValueError(f"{path}:{n}: expected 'cut_id<TAB>keyword<TAB>0|1[<TAB>tag]', got {line!r}")
        key = (parts[0], parts[1])
        if key in first:
            raise ValueError(f"{path}:{n}: cut {parts[0]!r} with keyword {parts[1]!r} is also on "
                             f"line {first[key]}; give each (cut, keyword) trial once")
        first[key] = n
        trials.append(Trial(parts[0], parts[1], int(parts[2]), parts[3] if len(parts) == 4 else ""))
    return trials


def summarize(trials: Sequence[Trial]) -> str:
    pos = sum(t.label for t in trials)
    return (f"{len(trials)} trials: {pos} positive, {len(trials) - pos} negative, "
            f"{len({t.cut_id for t in trials})} segments, {len({t.keyword for t in trials})} keywords")


def trial_lists(set_name: str, protocol: str) -> list[str]:
    """The trial list names that a test set of this protocol gets (files ``<name>.tsv``)."""
    if protocol == "words":
        return [set_name]
    if protocol == "pairs":
        return [f"{set_name}_{sub}" for sub in LP_SUBSETS]
    raise ValueError(f"test set {set_name}: unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def parse_set_specs(specs: Sequence[str], where: str = "test sets") -> list[tuple[str, str]]:
    """``name:protocol`` items (run.sh's ``test_sets``) as (name, protocol) pairs."""
    out = []
    for spec in specs:
        name, sep, protocol = spec.partition(":")
        if not sep or not name or protocol not in PROTOCOLS:
            raise ValueError(f"{where}: expected '<set>:<protocol>' with protocol one of "
                             f"{', '.join(PROTOCOLS)}, got {spec!r}")
        out.append((name, protocol))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a set is named twice in {list(specs)}")
    return out


def make_set_trials(cuts_dir, manifest_dir, out_dir, cfg: dict, train_set: str,
                    sets: Sequence[tuple[str, str]], aug_sets: Sequence[str] = ()) -> dict[str, str]:
    """Stage 5: the trial lists of each (set, protocol), and for each set in ``aug_sets`` the
    same trials on its augmented copy ``<set>_aug`` (cut ids ``<id>_aug1``, stage 3)."""
    import gzip
    import json

    from lhotse import CutSet

    import pyadml.data.augment  # noqa: F401  lhotse must know our transforms to read augmented cuts
    from pyadml.data.manifests import find_set_manifest

    cuts_dir, manifest_dir, out_dir = Path(cuts_dir), Path(manifest_dir), Path(out_dir)
    unknown = set(cfg) - {"negatives_per_positive", "seed"}
    if unknown:
        raise ValueError(f"trials: unknown option(s) {sorted(unknown)}")
    k, seed = int(cfg.get("negatives_per_positive", 50)), int(cfg.get("seed", 1))
    protocols = dict(sets)
    for name in aug_sets:
        if protocols.get(name) != "words":
            raise ValueError(f"augmented test set {name}: it must also be a test set with the "
                             f"words protocol (test sets: {sets})")

    def cuts_file(name: str) -> Path:
        path = cuts_dir / f"{name}.jsonl.gz"
        if not path.is_file():
            raise FileNotFoundError(f"set {name!r}: expected its cuts in {path} (stage 2 or 3 "
                                    f"writes them under the set's name)")
        return path

    def segments(name):
        return [(c.id, c.supervisions[0].text) for c in CutSet.from_file(cuts_file(name))]

    from pyadml.data.cuts import is_span

    # The training keywords: single-word cuts only (multi-word spans are no keywords).
    train_vocab = {c.supervisions[0].text for c in CutSet.from_file(cuts_file(train_set))
                   if not is_span(c)}
    lists: dict[str, list[Trial]] = {}
    for name, protocol in sets:
        if protocol == "words":
            lists[name] = make_word_trials(segments(name), train_vocab, k, seed)
            if name in aug_sets:
                aug = f"{name}_aug"
                lists[aug] = retarget(lists[name], "_aug1")
                missing = {t.cut_id for t in lists[aug]} - {c.id for c in CutSet.from_file(cuts_file(aug))}
                if missing:
                    raise ValueError(f"{cuts_file(aug)} lacks augmented copies of {len(missing)} "
                                     f"segments of {name}, e.g. {sorted(missing)[0]}")
        else:
            pairs = find_set_manifest(manifest_dir, name, "pairs")
            with gzip.open(pairs, "rt") as f:
                rows = [json.loads(line) for line in f]
            ids = {c.id for c in CutSet.from_file(cuts_file(name))}
            absent = {r[key] for r in rows for key in ("anchor_id", "comparison_id")} - ids
            if absent:
                raise ValueError(f"{pairs} names {len(absent)} recording(s) that are not in "
                                 f"{cuts_file(name)}, e.g. {sorted(absent)[0]}")
            subsets = make_pair_trials(rows)
            check_pair_trials(subsets)
            lists.update({f"{name}_{sub}": trials for sub, trials in subsets.items()})
    out = {}
    for name, trials in lists.items():
        write_trials(out_dir / f"{name}.tsv", trials)
        out[name] = summarize(trials)
    return out
