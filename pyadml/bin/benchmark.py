"""Speed figures (printed, never asserted): the training step against the bare encoders, scoring
from cached embeddings, encoder latency for 1 s of audio, and fbank speed."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _timeit(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def _batch(k: int, m: int, vocab: int, rng: np.random.Generator) -> dict:
    n = k * m
    lens = torch.as_tensor(rng.integers(30, 90, size=n))  # word segments of 0.3-0.9 s
    texts = [f"w{i // m}" for i in range(n)]
    phone_lens = torch.as_tensor(np.repeat(rng.integers(2, 9, size=k), m))
    phones = torch.zeros(n, int(phone_lens.max()), dtype=torch.int64)
    for i in range(0, n, m):
        seq = torch.as_tensor(rng.integers(1, vocab, size=int(phone_lens[i])))
        phones[i:i + m, : len(seq)] = seq
    return {"feats": torch.randn(n, int(lens.max()), 40), "feat_lens": lens, "phones": phones,
            "phone_lens": phone_lens, "texts": texts,
            "keyword_ids": torch.as_tensor(np.repeat(np.arange(k), m))}


def bench_training(cfg: dict, repeat: int) -> None:
    from pyadml.train.objective import KwsObjective

    rng = np.random.default_rng(0)
    b = cfg["batch"]
    batch = _batch(b["keywords"], b["utts_per_keyword"], 70, rng)
    # as many classes as the mini corpora's keywords, for a keyword classification loss
    obj = KwsObjective(cfg, 70, num_keywords=1200)
    opt = torch.optim.AdamW(obj.parameters(), lr=1e-4)

    def encoders_only():
        _, a, _ = obj.audio(batch["feats"], batch["feat_lens"])
        _, t, _ = obj.text(batch["phones"], batch["phone_lens"])
        (a.sum() + t.sum()).backward()
        obj.zero_grad(set_to_none=True)

    def full_step():
        loss, _ = obj(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(obj.parameters(), 5.0)
        opt.step()

    n = len(batch["texts"])
    bare = _timeit(encoders_only, repeat)
    full = _timeit(full_step, repeat)
    print(f"training batch {b['keywords']}x{b['utts_per_keyword']}: encoders fwd+bwd {bare * 1e3:.0f} ms "
          f"({n / bare:.0f} utt/s); full step {full * 1e3:.0f} ms ({n / full:.0f} utt/s); "
          f"the rest of the step costs {100 * (full / bare - 1):.0f}% on top (target <= 25%)")


def bench_scoring(n_trials: int, d: int = 256) -> None:
    from pyadml.data.trials import Trial
    from pyadml.score.embed import score_trials

    rng = np.random.default_rng(0)
    audio = {f"a{i}": rng.standard_normal(d).astype(np.float32) for i in range(5000)}
    text = {f"t{i}": rng.standard_normal(d).astype(np.float32) for i in range(1000)}
    trials = [Trial(f"a{rng.integers(5000)}", f"t{rng.integers(1000)}", 0) for _ in range(n_trials)]
    took = _timeit(lambda: score_trials(trials, audio, text), 3, warmup=1)
    print(f"scoring from cached embeddings: {n_trials} trials in {took * 1e3:.0f} ms, "
          f"{n_trials / took:,.0f} trials/s (target >= 100,000)")


def bench_latency(cfg: dict) -> None:
    from pyadml.models import EcapaConfig, EcapaEncoder

    torch.set_num_threads(1)
    enc = EcapaEncoder(EcapaConfig(**cfg["model"]["audio"])).eval()
    x, lens = torch.randn(1, 100, 40), torch.tensor([100])
    with torch.inference_mode():
        took = _timeit(lambda: enc(x, lens), 50, warmup=5)
    print(f"acoustic encoder, 1 s of audio, batch 1, 1 thread: {took * 1e3:.1f} ms, "
          f"real-time factor {took:.4f} (target <= 0.01)")


def bench_fbank(seconds: float = 60.0) -> None:
    from pyadml.data.features import fbank_extractor

    torch.set_num_threads(1)
    audio = np.random.default_rng(0).standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1
    ext = fbank_extractor()
    took = _timeit(lambda: ext.extract(audio, 16000), 3, warmup=1)
    print(f"fbank, one thread: {seconds / took:.0f}x real time")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=None, help="training yaml (default: the built-in defaults)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the training figures")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--trials", type=int, default=1_000_000)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. batch.keywords=100")
    args = p.parse_args(argv)
    from pyadml.train.config import load_config

    cfg = load_config(args.config, args.overrides)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench_training(cfg, args.repeat)
    bench_scoring(args.trials)
    bench_latency(cfg)
    bench_fbank()
    return 0


if __name__ == "__main__":
    sys.exit(main())
