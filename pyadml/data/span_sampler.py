"""Multi-word span cuts in the K x M keyword batches.

A span's text (2-4 consecutive words of a training utterance, stage 2) rarely occurs twice, so
spans cannot form groups of M utterances of one keyword. They enter training as rows of their
own (M = 1) instead:

- in the utterance-level RP loss every distinct text of a batch is its own class with its own
  text proxy, so a span row pairs its audio with its own phrase text and is pushed away from
  every other text of the batch;
- the phoneme-level losses align its audio with its phones like any row;
- the keyword classification loss leaves it out (keyword id -1, ``KeywordDataset``).

Two ways to place them (``every``):

- ``every = 0``: ``rows`` spans are appended to every keyword batch (words and phrases contrast
  in one batch). A batch is padded to its longest row, so phrase-long rows make every batch
  about as long as a phrase: the costly choice.
- ``every = E >= 1``: after every E keyword batches comes one batch of ``rows`` spans alone
  (phrase against phrase, as LibriPhrase trials are). Only the span batches are phrase-long.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from pyadml.data.sampler import KeywordBatchSampler


class SpanRowsSampler:
    """Wraps a :class:`KeywordBatchSampler` and adds span ids, as extra rows (``every=0``) or
    as batches of their own after every ``every`` keyword batches.

    Spans are dealt without replacement from a permutation drawn from (seed, epoch), wrapping
    round to a fresh permutation when an epoch needs more than there are. The spans of a batch
    depend on (seed, epoch, its index) only, so a resumed epoch gets the same ones. As the
    keyword sampler's K x M, ``rows`` counts the global batch: under DDP rank r takes the r-th
    of ``world_size`` near-equal shares of it. ``batches_done`` in ``state_dict`` counts
    every batch handed out, span batches included; ``load_state_dict`` maps it back to the
    keyword sampler's position.
    """

    def __init__(self, keyword_sampler: KeywordBatchSampler, span_ids: Sequence[str], rows: int,
                 every: int = 0):
        if rows < 0 or every < 0:
            raise ValueError(f"span rows and every must be >= 0, got {rows} and {every}")
        self.inner = keyword_sampler
        self.span_ids = list(span_ids)
        self.rows = int(rows) if self.span_ids else 0
        self.every = int(every)
        self.batches_done = 0
        self._skip = 0

    def __getattr__(self, name):  # epoch, seed, rank, world_size, keywords, ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def _separate(self) -> bool:
        return self.every > 0 and self.rows > 0

    # --- positions: with separate span batches, each block is `every` keyword batches + 1 ----

    def _word_batches_before(self, n: int) -> int:
        if not self._separate:
            return n
        full, rem = divmod(n, self.every + 1)
        return full * self.every + min(rem, self.every)

    def _total(self, word_batches: int) -> int:
        return word_batches + (word_batches // self.every if self._separate else 0)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.inner.epoch:
            self._skip = 0
            self.batches_done = 0
        self.inner.set_epoch(epoch)

    def state_dict(self, batches_done: int | None = None) -> dict:
        done = self.batches_done if batches_done is None else int(batches_done)
        return {"epoch": self.inner.epoch, "batches_done": done, "seed": self.inner.seed}

    def load_state_dict(self, sd: dict) -> None:
        self.inner.load_state_dict({**sd, "batches_done": self._word_batches_before(int(sd["batches_done"]))})
        self.batches_done = self._skip = int(sd["batches_done"])

    def __len__(self) -> int:
        skip = self._skip
        inner_skip = self.inner._skip
        words_total = len(self.inner) + inner_skip  # the keyword batches of the whole epoch
        return max(self._total(words_total) - skip, 0)

    @property
    def stats(self) -> dict:
        return {**self.inner.stats, "span_rows": self.rows, "span_every": self.every,
                "spans": len(self.span_ids)}

    def spans_for(self, epoch: int, index: int) -> list[str]:
        """The span ids of span batch (or extended batch) ``index`` of ``epoch``, all ranks'."""
        n, r = len(self.span_ids), self.rows
        out = []
        pos = index * r
        while len(out) < r:
            lap, off = divmod(pos, n)
            perm = np.random.default_rng([self.inner.seed, epoch, lap, 7]).permutation(n)
            take = min(r - len(out), n - off)
            out += [self.span_ids[i] for i in perm[off:off + take].tolist()]
            pos += take
        return out

    def _share(self, spans: list[str]) -> list[str]:
        return [spans[i] for i in np.array_split(np.arange(len(spans)), self.inner.world_size)[
            self.inner.rank].tolist()]

    def __iter__(self) -> Iterator[list[str]]:
        skip, self._skip = self._skip, 0
        self.batches_done = skip
        return self._generate(skip)

    def _generate(self, skip: int) -> Iterator[list[str]]:
        inner = self.inner
        epoch = inner.epoch
        if not self._separate:
            for batch in iter(inner):  # the keyword sampler resumes itself
                i = inner.batches_done - 1  # this batch's index in the epoch
                if self.rows:
                    batch = batch + self._share(self.spans_for(epoch, i))
                self.batches_done += 1
                yield batch
            return
        # Separate span batches: position p of the combined epoch; block b = p // (every + 1).
        pos = skip
        words = iter(inner)  # resumes at _word_batches_before(skip) (load_state_dict)
        if pos % (self.every + 1) == self.every:  # resumed just before a span batch
            yield self._count(self._share(self.spans_for(epoch, pos // (self.every + 1))))
            pos += 1
        for batch in words:
            yield self._count(batch)
            pos += 1
            if pos % (self.every + 1) == self.every:  # a span batch follows this block
                b = pos // (self.every + 1)
                yield self._count(self._share(self.spans_for(epoch, b)))
                pos += 1

    def _count(self, batch):
        self.batches_done += 1
        return batch


def split_spans(cuts) -> tuple[list, list]:
    """(single-word cuts, multi-word span cuts) of a training CutSet."""
    from pyadml.data.cuts import is_span

    words, spans = [], []
    for c in cuts:
        (spans if is_span(c) else words).append(c)
    return words, spans
