"""Near-miss texts: a training text with one word replaced by one of that word's nearest
training words in phoneme edit distance.

LibriPhrase's hard negatives (LP_H) are built the same way, and a wake word's confusable words
are such neighbours, while a K x M batch of random keywords holds almost no such pairs: the text
encoder is never asked to tell them apart. The near misses are real training words, each the
positive text of its own utterances: made-up phone strings (one phone edited) were tried first
and let the model shortcut, pushing every unfamiliar phone sequence away from all audio, unseen
test keywords included (RESULTS.md). The training loss that uses them is
``pyadml.losses.text_negatives``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import kaldialign
import numpy as np


class NearMissTexts:
    """``near_miss(text, rng)``: ``text`` with one of its words (drawn at random) replaced by
    one of that word's ``pool`` nearest vocabulary words (drawn at random).

    Nearest is by phoneme edit distance over ``phones_of(word)``; words with the same phones
    (homophones) are never neighbours; ties are broken by a fixed shuffle of the vocabulary, so
    the neighbours do not depend on the order words are asked for. A word outside the
    vocabulary (a span's text is made of vocabulary words, but a user's corpus may differ) gets
    neighbours the same way. Neighbour lists are computed on first use and cached."""

    def __init__(self, words: Iterable[str], phones_of: Callable[[str], Sequence[int]],
                 pool: int = 8):
        self.words = sorted(set(words))
        if len(self.words) < 2:
            raise ValueError("near-miss texts need a training vocabulary of at least two words")
        self.pool = int(pool)
        self.phones_of = phones_of
        order = np.random.default_rng(0).permutation(len(self.words))
        self.words = [self.words[i] for i in order]
        self.seqs = [list(phones_of(w)) for w in self.words]
        self._near: dict[str, list[str]] = {}

    def neighbours(self, word: str) -> list[str]:
        if word not in self._near:
            own = list(self.phones_of(word))
            scored = []
            for k, (w, seq) in enumerate(zip(self.words, self.seqs)):
                if w != word and seq != own:
                    scored.append((kaldialign.edit_distance(own, seq)["total"], k, w))
            if not scored:
                raise ValueError(f"near-miss texts: every vocabulary word sounds like {word!r}; "
                                 "there is nothing to replace it with")
            scored.sort()
            self._near[word] = [w for _, _, w in scored[:self.pool]]
        return self._near[word]

    def near_miss(self, text: str, rng: np.random.Generator) -> str:
        words = text.split()
        k = int(rng.integers(len(words)))
        near = self.neighbours(words[k])
        words[k] = near[int(rng.integers(len(near)))]
        return " ".join(words)


def check_text_negatives(cfg: Mapping) -> dict:
    """The ``loss.text_negatives`` block, checked: count >= 0 and pool >= 1 integers,
    weight >= 0, scale > 0, margin a number."""
    out = dict(cfg)
    for key, low in (("count", 0), ("pool", 1)):
        v = out.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"loss.text_negatives.{key}: expected an integer >= {low}, got {v!r}")
    for key, low, strict in (("weight", 0, False), ("margin", None, False), ("scale", 0, True)):
        v = out.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"loss.text_negatives.{key}: expected a number, got {v!r}")
        if low is not None and (v <= low if strict else v < low):
            raise ValueError(f"loss.text_negatives.{key}: expected a number "
                             f"{'>' if strict else '>='} {low}, got {v!r}")
    return out
