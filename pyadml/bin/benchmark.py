"""Speed figures (printed, never asserted): the training step against the bare encoders (with
the encoders' GFLOP/s and share of the CPU's peak, fp32 or bf16 autocast, eager or compiled), scoring
from cached embeddings, encoder latency for 1 s of audio, and fbank speed."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timeit(fn, repeat: int, warmup: int = 2, device="cpu") -> float:
    """Median seconds of ``repeat`` calls after ``warmup``: one slow call (an allocation, another
    process) moved the mean of three by 10% here."""
    for _ in range(warmup):
        fn()
    _sync(device)  # GPU work is asynchronous: time whole, finished steps
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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


def cpu_peak_gflops(ghz: float | None = None, flop_per_cycle: int | None = None) -> tuple[float, str]:
    """Assumed fp32 peak of this machine's cores and how it was assumed: cores x GHz x FLOP per
    cycle per core. /proc/cpuinfo gives the cores and the vector units (AVX-512: 2 FMA units x
    16 lanes x 2 = 64 on a full-width core such as Zen 5; 32 on one that splits 512-bit ops,
    such as Zen 4; AVX2: 32), and the clock when it reports one (else 3.0 GHz is assumed)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags, family, mhz, vendor = "", 0, None, ""
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "flags" and not flags:
                flags = value
            elif key == "cpu family" and not family:
                family = int(value)
            elif key == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
    except OSError:
        pass
    if flop_per_cycle is None:
        if "avx512f" in flags.split():
            zen4 = vendor == "AuthenticAMD" and family == 25  # 512-bit ops in two halves
            flop_per_cycle = 32 if zen4 else 64
        else:
            flop_per_cycle = 32 if "avx2" in flags.split() else 16
    clock = ghz or (mhz / 1000 if mhz else 3.0)
    how = (f"{cores} cores x {clock:.2f} GHz{'' if ghz or mhz else ' (assumed)'} x "
           f"{flop_per_cycle} fp32 FLOP/cycle")
    return cores * clock * flop_per_cycle, how


def measured_matmul_gflops(n: int = 2048, dtype=torch.float32, device="cpu") -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    took = _timeit(lambda: a @ b, 3 if torch.device(device).type == "cpu" else 20, warmup=1,
                   device=device)
    return 2 * n**3 / took / 1e9


def bench_training(cfg: dict, repeat: int, amp: str = "none", compile_encoders: bool = False,
                   peak: tuple[float, str] | None = None, device: str = "cpu") -> dict:
    from contextlib import nullcontext

    from torch.utils.flop_counter import FlopCounterMode

    from pyadml.train.objective import KwsObjective
    from pyadml.train.optim import build_optimizer

    rng = np.random.default_rng(0)
    b = cfg["batch"]
    batch = _batch(b["keywords"], b["utts_per_keyword"], 70, rng)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    # as many classes as the mini corpora's keywords, for a keyword classification loss
    obj = KwsObjective(cfg, 70, num_keywords=1200).to(device)
    opt = build_optimizer(obj, cfg["optim"])
    if compile_encoders:
        obj.audio.compile()
        obj.text.compile()
    dev_type = torch.device(device).type
    autocast = (lambda: torch.autocast(dev_type, dtype=torch.bfloat16)) if amp == "bf16" else nullcontext

    def encoders_only():
        with autocast():
            _, a, _ = obj.audio(batch["feats"], batch["feat_lens"])
            _, t, _ = obj.text(batch["phones"], batch["phone_lens"])
        (a.float().sum() + t.float().sum()).backward()
        obj.zero_grad(set_to_none=True)

    def full_step():
        with autocast():
            loss, _ = obj(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        encoders_only()
    flops = counter.get_total_flops()
    n = len(batch["texts"])
    bare = _timeit(encoders_only, repeat, device=device)
    full = _timeit(full_step, repeat, device=device)
    gflops = flops / bare / 1e9
    peak_gflops, how = peak or cpu_peak_gflops()
    if dev_type == "cpu":
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        used = min(torch.get_num_threads(), cores)
        peak_gflops *= used / cores  # the peak of the cores this run can use
        where = f"{torch.get_num_threads()} threads"
        of = f"the fp32 peak of {used} core(s)"
    else:
        where = torch.cuda.get_device_name(torch.device(device))
        of = how
    print(f"training batch {b['keywords']}x{b['utts_per_keyword']}, amp {amp}, "
          f"compile {compile_encoders}, {where}: encoders fwd+bwd "
          f"{bare * 1e3:.0f} ms ({n / bare:.0f} utt/s, {flops / 1e9:.1f} GFLOP, "
          f"{gflops:.1f} GFLOP/s = {100 * gflops / peak_gflops:.1f}% of {of}, "
          f"{peak_gflops:.0f} GFLOP/s); full step {full * 1e3:.0f} ms "
          f"({n / full:.0f} utt/s); full / encoders = {full / bare:.2f} (target <= 1.25)")
    return {"encoders_ms": bare * 1e3, "full_ms": full * 1e3, "gflop": flops / 1e9,
            "gflops": gflops, "peak_gflops": peak_gflops, "ratio": full / bare}


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
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="torch threads for the training figures (several: one line each)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--trials", type=int, default=1_000_000)
    p.add_argument("--amp", nargs="+", default=["none"], choices=("none", "bf16"),
                   help="autocast of the encoders in the training figures (losses stay fp32)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd encoders")
    p.add_argument("--training-only", action="store_true")
    p.add_argument("--device", default="cpu",
                   help="cpu, or cuda[:N] for the training figures alone (the rest are CPU figures)")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. batch.keywords=100")
    args = p.parse_args(argv)
    from pyadml.train.config import load_config

    cfg = load_config(args.config, args.overrides)
    gpu = args.device != "cpu"
    if gpu:
        if not torch.cuda.is_available():
            p.error(f"--device {args.device}: torch sees no CUDA device")
        n = 8192  # large enough to fill the GPU: the ceiling the encoders are compared with
        bf16 = measured_matmul_gflops(n, torch.bfloat16, args.device)
        fp32 = measured_matmul_gflops(n, torch.float32, args.device)
        print(f"{torch.cuda.get_device_name(torch.device(args.device))}: measured {n}^3 matmul: "
              f"bf16 {bf16:.0f} GFLOP/s, fp32 {fp32:.0f} GFLOP/s (TF32 "
              f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'})")
        peaks = {"bf16": (bf16, "the measured bf16 matmul"), "none": (fp32, "the measured fp32 matmul")}
        thread_counts = [torch.get_num_threads()]  # the GPU figures do not depend on them
    else:
        peak = cpu_peak_gflops()
        torch.set_num_threads(max(args.threads))
        print(f"fp32 peak assumed: {peak[0]:.0f} GFLOP/s ({peak[1]}); measured 2048^3 matmul: "
              f"fp32 {measured_matmul_gflops():.0f} GFLOP/s, "
              f"bf16 {measured_matmul_gflops(dtype=torch.bfloat16):.0f} GFLOP/s")
        peaks = {"bf16": peak, "none": peak}
        thread_counts = args.threads
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for amp in args.amp:
            for compiled in ((False, True) if args.compile else (False,)):
                torch.manual_seed(0)
                bench_training(cfg, args.repeat, amp, compiled, peaks[amp], args.device)
    if gpu or args.training_only:
        return 0
    torch.set_num_threads(max(args.threads))
    bench_scoring(args.trials)
    bench_latency(cfg)
    bench_fbank()
    return 0


if __name__ == "__main__":
    sys.exit(main())
