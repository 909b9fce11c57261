"""K x M batch sampler for training: K distinct keywords, M utterances of each.

An epoch is a deterministic function of (seed, epoch): every keyword's items are shuffled and
cut into groups of M, the groups are shuffled and packed greedily into batches of K groups with
K distinct keywords. K x M is the GLOBAL batch: under DDP every rank builds the same batch list
and takes its share of every batch, K / world_size whole groups (rank r the r-th share), so the
batches, the number of steps and the data of a step do not depend on the number of processes.
"""

from __future__ import annotations

from collections import deque
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch.utils.data

FEW_MODES = ("skip", "replace")


class KeywordBatchSampler(torch.utils.data.Sampler):
    """Yield lists of ``K * M`` item ids: K groups of M items, one keyword per group.

    ``few`` decides what happens to a keyword's items that do not fill a group of M (its
    trailing partial group, or all of them when it has fewer than M):

    - ``"skip"``: they are left out of the epoch, so every item is used at most once.
    - ``"replace"``: the partial group is completed with other items of the same keyword,
      which then occur twice in the epoch. A keyword with fewer than M items repeats its own
      items inside the group (a single-item keyword gives M copies of that item).

    Groups left over once no further batch of K distinct keywords can be formed are dropped
    (``drop_last=True``) or yielded as smaller batches (``drop_last=False``; then batches may
    hold fewer than K groups; one with fewer groups than ranks is dropped). With W ranks, K must
    be a multiple of W and each rank yields K / W groups of every batch.

    Counters of the last built epoch, for logging: ``num_groups_skipped``/``num_items_skipped``
    (partial groups left out by ``few="skip"``), ``num_items_replaced`` (items added by
    ``few="replace"``), ``num_groups_dropped`` (left over after packing),
    ``num_batches_dropped`` (batches with fewer groups than ranks); ``stats`` has them all.

    ``neighbours`` (keyword -> its phonetically nearest keywords) with ``bundle`` B > 1 puts
    phonetic neighbourhoods in a batch: the shuffled groups are reordered into runs of B groups,
    a group and B - 1 groups of keywords drawn among its keyword's neighbours (``_bundle``), and
    the packing keeps that order. A random batch of K keywords rarely holds a keyword's near
    misses; these make the in-batch negatives of every loss near misses for part of the batch.
    """

    def __init__(
        self,
        keywords: Sequence[str],
        item_ids: Sequence[str],
        keywords_per_batch: int,
        utts_per_keyword: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        few: str = "skip",
        shuffle: bool = True,
        drop_last: bool = True,
        neighbours: Mapping[str, Sequence[str]] | None = None,
        bundle: int = 1,
    ):
        super().__init__()
        if len(keywords) != len(item_ids):
            raise ValueError(f"{len(keywords)} keywords for {len(item_ids)} items")
        if keywords_per_batch < 1 or utts_per_keyword < 1:
            raise ValueError(
                f"keywords_per_batch and utts_per_keyword must be >= 1, "
                f"got {keywords_per_batch} and {utts_per_keyword}"
            )
        if few not in FEW_MODES:
            raise ValueError(f"few must be one of {FEW_MODES}, got {few!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {rank=} {world_size=}")
        if keywords_per_batch % world_size:
            raise ValueError(
                f"keywords_per_batch={keywords_per_batch} is the global batch's keyword count and "
                f"must be a multiple of the {world_size} processes (each takes an equal share)")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if isinstance(bundle, bool) or not isinstance(bundle, int) or bundle < 1:
            raise ValueError(f"bundle: expected an integer >= 1, got {bundle!r}")
        if bundle > 1 and neighbours is None:
            raise ValueError(f"bundle={bundle} needs the keywords' neighbours")
        if bundle > keywords_per_batch:
            raise ValueError(f"bundle={bundle} is more than the {keywords_per_batch} keywords "
                             "of a batch")
        self.item_ids = list(item_ids)
        if len(set(self.item_ids)) != len(self.item_ids):
            raise ValueError("item ids are not unique")
        self.K = int(keywords_per_batch)
        self.M = int(utts_per_keyword)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.few = few
        self.shuffle = shuffle
        self.drop_last = drop_last

        # Keyword index of every item, keywords numbered in order of first appearance.
        kw_index: dict[str, int] = {}
        self._item_kw = np.fromiter(
            (kw_index.setdefault(k, len(kw_index)) for k in keywords), dtype=np.int64,
            count=len(keywords),
        )
        self.keywords = list(kw_index)
        self._counts = np.bincount(self._item_kw, minlength=len(self.keywords))
        # Items of each keyword, in input order: by_kw[start[k]:start[k] + counts[k]].
        self._by_kw = np.argsort(self._item_kw, kind="stable")
        self._start = np.concatenate([[0], np.cumsum(self._counts)[:-1]]).astype(np.int64)
        self.bundle = int(bundle)
        # Each keyword's neighbours as keyword indices, nearest first; those with no items here
        # are left out.
        self._near = [[kw_index[n] for n in (neighbours or {}).get(k, ()) if n in kw_index
                       and n != k] for k in self.keywords] if bundle > 1 else []

        if few == "skip":
            usable = int(np.count_nonzero(self._counts >= self.M))
        else:
            usable = len(self.keywords)
        if usable < self.K:
            raise ValueError(
                f"only {usable} keywords have a full group of {self.M} utterances "
                f"(few={few!r}), but a batch needs {self.K} distinct keywords "
                f"(keywords_per_batch={self.K})"
            )

        self.epoch = 0
        self.batches_done = 0
        self._skip = 0  # batches already consumed in self.epoch, skipped by the next __iter__
        self._plan_epoch: int | None = None
        self._plan: list[np.ndarray] = []
        self.num_groups_skipped = 0
        self.num_items_skipped = 0
        self.num_items_replaced = 0
        self.num_groups_dropped = 0
        self.num_batches_dropped = 0
        self.num_batches_total = 0

    @classmethod
    def from_cuts(cls, cuts, **kw) -> "KeywordBatchSampler":
        """Sampler over a CutSet: item id = cut id, keyword = ``cut.supervisions[0].text``."""
        keywords, ids = [], []
        for cut in cuts:
            if not cut.supervisions:
                raise ValueError(f"cut {cut.id} has no supervision, hence no keyword")
            keywords.append(cut.supervisions[0].text)
            ids.append(cut.id)
        return cls(keywords, ids, **kw)

    def set_epoch(self, epoch: int) -> None:
        # Re-setting the epoch being resumed must keep the resume point.
        if epoch != self.epoch:
            self._skip = 0
            self.batches_done = 0
        self.epoch = int(epoch)

    def state_dict(self, batches_done: int | None = None) -> dict:
        """Resume point. ``batches_done`` defaults to the batches this sampler has yielded;
        with DataLoader workers prefetching, pass the number the training loop consumed."""
        done = self.batches_done if batches_done is None else int(batches_done)
        return {"epoch": self.epoch, "batches_done": done, "seed": self.seed}

    def load_state_dict(self, sd: dict) -> None:
        self.seed = int(sd["seed"])
        self.epoch = int(sd["epoch"])
        self.batches_done = int(sd["batches_done"])
        self._skip = self.batches_done
        self._plan_epoch = None

    def __len__(self) -> int:
        return max(len(self._epoch_plan()) - self._skip, 0)

    def __iter__(self) -> Iterator[list[str]]:
        plan = self._epoch_plan()
        skip, self._skip = self._skip, 0
        self.batches_done = min(skip, len(plan))
        return self._generate(plan, self.batches_done)

    def _generate(self, plan: list[np.ndarray], start: int) -> Iterator[list[str]]:
        ids = self.item_ids
        for batch in plan[start:]:
            self.batches_done += 1  # counted when handed out, so state_dict() after next() is exact
            yield [ids[i] for i in batch.tolist()]

    @property
    def stats(self) -> dict:
        self._epoch_plan()
        return {
            "epoch": self.epoch,
            "keywords": len(self.keywords),
            "items": len(self.item_ids),
            "batches_total": self.num_batches_total,
            "batches_per_rank": len(self._plan),  # = batches_total - batches_dropped
            "groups_skipped": self.num_groups_skipped,
            "items_skipped": self.num_items_skipped,
            "items_replaced": self.num_items_replaced,
            "groups_dropped": self.num_groups_dropped,
            "batches_dropped": self.num_batches_dropped,
        }

    # --- epoch construction -------------------------------------------------------------

    def _epoch_plan(self) -> list[np.ndarray]:
        if self._plan_epoch != self.epoch:
            self._plan = self._build(self.epoch)
            self._plan_epoch = self.epoch
        return self._plan

    def _build(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        groups, group_kw = self._make_groups(rng)
        if self.shuffle:
            order = rng.permutation(len(groups))
            groups, group_kw = groups[order], group_kw[order]
        if self.bundle > 1:
            order = self._bundle(group_kw, rng)
            groups, group_kw = groups[order], group_kw[order]
        batches = self._pack(groups, group_kw)
        self.num_batches_total = len(batches)
        # Each rank takes its share of whole groups of every global batch.
        W, M = self.world_size, self.M
        kept = [b for b in batches if len(b) // M >= W]
        self.num_batches_dropped = len(batches) - len(kept)
        mine = [np.array_split(b.reshape(-1, M), W)[self.rank].reshape(-1) for b in kept]
        if not mine:
            raise ValueError(
                f"epoch {epoch}: {len(batches)} batches of {self.K} keywords x {self.M} "
                f"utterances for {self.world_size} ranks: rank {self.rank} gets none"
            )
        return mine

    def _make_groups(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(G, M) item indices and the keyword of each group."""
        M, counts, start = self.M, self._counts, self._start
        if self.shuffle:
            # Shuffle all items, then stable-sort by keyword: each keyword's block is shuffled.
            perm = rng.permutation(len(self._item_kw))
            items = perm[np.argsort(self._item_kw[perm], kind="stable")]
        else:
            items = self._by_kw
        full = counts // M
        rem = counts % M
        pos = np.arange(len(items)) - np.repeat(start, counts)
        kw_sorted = np.repeat(np.arange(len(counts)), counts)
        keep = pos < full[kw_sorted] * M
        # Each keyword keeps a multiple of M contiguous items, so a reshape forms the groups.
        groups = items[keep].reshape(-1, M)
        group_kw = kw_sorted[keep][::M]

        partial_kws = np.flatnonzero(rem)
        if self.few == "skip":
            self.num_groups_skipped = len(partial_kws)
            self.num_items_skipped = int(rem.sum())
            self.num_items_replaced = 0
            return groups, group_kw
        self.num_groups_skipped = self.num_items_skipped = 0
        extra = np.empty((len(partial_kws), M), dtype=np.int64)
        for row, k in enumerate(partial_kws):
            block = items[start[k]:start[k] + counts[k]]
            tail = block[full[k] * M:]
            need = M - len(tail)
            if full[k]:
                # Enough items for distinct utterances: borrow from the keyword's full groups.
                fill = rng.choice(block[:full[k] * M], size=need, replace=False)
            else:
                fill = rng.choice(block, size=need, replace=True)
            extra[row] = np.concatenate([tail, fill])
        self.num_items_replaced = int((M - rem[partial_kws]).sum())
        return np.concatenate([groups, extra]), np.concatenate([group_kw, partial_kws])

    def _bundle(self, group_kw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An order of the groups in runs of up to ``bundle``: the next group not yet placed,
        then, for up to B - 1 of its keyword's neighbours drawn at random among those with a
        group not yet placed, each one's first such group. Fewer when fewer neighbours are left."""
        queues: dict[int, deque[int]] = {}
        for g, k in enumerate(group_kw.tolist()):
            queues.setdefault(k, deque()).append(g)
        placed = np.zeros(len(group_kw), dtype=bool)
        order: list[int] = []
        for g, k in enumerate(group_kw.tolist()):
            if placed[g]:
                continue
            queues[k].popleft()  # g: each queue's head is its earliest group not placed
            run = [g]
            near = [n for n in self._near[k] if queues.get(n)]
            for i in rng.permutation(len(near))[: self.bundle - 1].tolist():
                run.append(queues[near[i]].popleft())
            placed[run] = True
            order.extend(run)
        return np.asarray(order, dtype=np.int64)

    def _pack(self, groups: np.ndarray, group_kw: np.ndarray) -> list[np.ndarray]:
        """Greedy packing into batches of K groups with distinct keywords.

        A group whose keyword is already in the open batch waits in ``pending``; every new
        batch first takes one waiting group per keyword, oldest first, so none starves.
        """
        K = self.K
        batches: list[np.ndarray] = []
        pending: dict[int, deque[int]] = {}  # keyword -> waiting group indices (FIFO)
        cur: list[int] = []
        cur_kw: set[int] = set()

        def refill():
            nonlocal cur, cur_kw
            while len(cur) == K:
                batches.append(groups[cur].reshape(-1))
                cur, cur_kw = [], set()
                for k in list(pending):
                    if len(cur) == K:
                        break
                    waiting = pending[k]
                    cur.append(waiting.popleft())
                    cur_kw.add(k)
                    if not waiting:
                        del pending[k]

        for g, k in enumerate(group_kw.tolist()):
            if k in cur_kw:
                pending.setdefault(k, deque()).append(g)
                continue
            cur.append(g)
            cur_kw.add(k)
            refill()

        # Every waiting keyword is in the open batch, so no further batch of K can be formed.
        leftover = len(cur) + sum(len(v) for v in pending.values())
        if self.drop_last:
            self.num_groups_dropped = leftover
            return batches
        self.num_groups_dropped = 0
        while cur:
            batches.append(groups[cur].reshape(-1))
            cur = []
            for k in list(pending):
                cur.append(pending[k].popleft())
                if not pending[k]:
                    del pending[k]
        return batches


def keyword_neighbours(cuts, phones_of, bundle: int, pool: int) -> dict:
    """The sampler's ``neighbours`` and ``bundle`` for the train config's ``batch.neighbours``
    (B; 0 or 1: off) and ``batch.neighbour_pool``: each keyword's ``pool`` nearest keywords in
    phoneme edit distance (``pyadml.data.text_negatives.NearMissTexts``, LibriPhrase's rule).
    Every keyword is compared with every other, on each rank: about 13 s for the mini corpus's
    1,200 words, growing with the square of the vocabulary."""
    for key, v, low in (("batch.neighbours", bundle, 0), ("batch.neighbour_pool", pool, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{key}: expected an integer >= {low}, got {v!r}")
    if bundle < 2:
        return {}
    from pyadml.data.text_negatives import NearMissTexts

    keywords = sorted({c.supervisions[0].text for c in cuts})
    near = NearMissTexts(keywords, phones_of, pool)
    return {"neighbours": {k: near.neighbours(k) for k in keywords}, "bundle": bundle}
