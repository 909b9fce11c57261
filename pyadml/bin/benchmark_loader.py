"""Measure the training data loader (K x M sampler + KeywordDataset) for several num_workers."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from lhotse import CutSet

from pyadml.data.dataset import KeywordDataset, read_keyword_ids
from pyadml.data.sampler import KeywordBatchSampler
from pyadml.text import Tokenizer


class _Epochs:
    """Runs the sampler over consecutive epochs until ``n`` batches, so that one DataLoader
    (one worker start-up) serves a benchmark longer than an epoch."""

    def __init__(self, sampler: KeywordBatchSampler, n: int):
        self.sampler, self.n = sampler, n

    def __iter__(self):
        done, epoch = 0, 0
        while done < self.n:
            self.sampler.set_epoch(epoch)
            for batch in self.sampler:
                if done == self.n:
                    return
                done += 1
                yield batch
            epoch += 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cuts", required=True, help="cut manifest with precomputed features")
    p.add_argument("--lang", required=True, help="dir with lexicon.txt, phones.txt, keywords.txt")
    p.add_argument("--k", type=int, default=250, help="keywords per batch")
    p.add_argument("--m", type=int, default=2, help="utterances per keyword")
    p.add_argument("--few", choices=("skip", "replace"), default="skip")
    p.add_argument("--num-workers", default="0,1,2", help="comma-separated values to try")
    p.add_argument("--batches", type=int, default=50, help="batches timed per setting")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        workers = [int(w) for w in args.num_workers.split(",")]
    except ValueError:
        p.error(f"--num-workers: expected comma-separated integers, got {args.num_workers!r}")
    if any(w < 0 for w in workers) or args.batches < 1:
        p.error("--num-workers must be >= 0 and --batches >= 1")
    lang = Path(args.lang)
    for name in ("lexicon.txt", "phones.txt", "g2p.yaml", "keywords.txt"):
        if not (lang / name).is_file():
            p.error(f"missing {lang / name}")

    t0 = time.perf_counter()
    cuts = CutSet.from_file(args.cuts).to_eager()
    from pyadml.data.span_sampler import split_spans

    sampler = KeywordBatchSampler.from_cuts(  # single words only: spans form no K x M groups
        split_spans(cuts)[0], keywords_per_batch=args.k, utts_per_keyword=args.m, few=args.few, seed=args.seed
    )
    ds = KeywordDataset(cuts, Tokenizer.from_lang_dir(lang), read_keyword_ids(lang / "keywords.txt"))
    print(f"{len(cuts)} cuts, {len(sampler.keywords)} keywords, "
          f"{len(sampler)} batches of {args.k}x{args.m} per epoch "
          f"(set-up {time.perf_counter() - t0:.1f} s); stats: {sampler.stats}")
    print(f"torch threads: {torch.get_num_threads()}")

    for nw in workers:
        loader = torch.utils.data.DataLoader(
            ds, sampler=_Epochs(sampler, args.batches), batch_size=None, num_workers=nw
        )
        start = time.perf_counter()
        first = None
        n = utts = 0
        for batch in loader:
            if first is None:
                first = time.perf_counter()
            n += 1
            utts += len(batch["cut_ids"])
        end = time.perf_counter()
        total = end - start
        line = (f"num_workers={nw}: {n} batches in {total:.2f} s: {n / total:.2f} batches/s, "
                f"{utts / total:.0f} utts/s")
        if n > 1:
            # Excludes worker start-up and the first batch.
            steady = (n - 1) / (end - first)
            line += f" (after the first batch: {steady:.2f} batches/s)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
