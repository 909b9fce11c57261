"""Every training loss in float32 and under CPU bf16 autocast, on the same float32 inputs: the
table of issue 13, item 2. "unguarded" is the loss as autocast alone would compute it (the
float32 guard of pyadml.losses.precision switched off), i.e. what the guard prevents.

    python -m pyadml.bin.loss_precision [--device cuda]
"""

from __future__ import annotations

import sys

import torch

TOLERANCE = 1e-6  # relative; the guarded losses are computed by the same float32 kernels


def _inputs(seed: int = 0, n_kw: int = 16, m: int = 2, d: int = 64, phones: int = 20, L: int = 6,
            T: int = 40):
    g = torch.Generator().manual_seed(seed)
    n = n_kw * m
    kw = torch.arange(n_kw).repeat_interleave(m)
    text_utt = torch.randn(n_kw, d, generator=g)[kw]
    audio_utt = text_utt + 1.2 * torch.randn(n, d, generator=g)
    t_phn = torch.randn(n, L, d, generator=g)
    a_phn = torch.randn(n, T, d, generator=g)
    t_mask = torch.arange(L)[None] < torch.randint(2, L + 1, (n,), generator=g)[:, None]
    a_mask = torch.arange(T)[None] < torch.randint(T // 2, T + 1, (n,), generator=g)[:, None]
    rows = int(t_mask.sum())
    phn_labels = torch.randint(0, phones, (rows,), generator=g)
    t_hat = torch.randn(rows, d, generator=g)
    a_hat = t_hat + 0.5 * torch.randn(rows, d, generator=g)
    return dict(kw=kw, text_utt=text_utt, audio_utt=audio_utt, t_phn=t_phn, a_phn=a_phn,
                t_mask=t_mask, a_mask=a_mask, phn_labels=phn_labels, t_hat=t_hat, a_hat=a_hat,
                n_kw=n_kw, d=d, phones=phones)


def loss_functions(x: dict, device: str = "cpu") -> dict:
    """name -> a function of no arguments computing that loss on ``x`` (float32 tensors on
    ``device``), its modules on ``device``."""
    from pyadml.losses import AsymmetricProxyLoss, RelationalProxyLoss
    from pyadml.losses.keyword import AAMSoftmax, BatchHardTriplet, SphereFace2
    from pyadml.losses.mm import MonotonicMatchingLoss
    from pyadml.losses.phoneme import build_phoneme_loss
    from pyadml.models.cross_attention import PhonemeCrossAttention
    from pyadml.models.modality import ModalityAdversarialLoss, ModalityClassifier

    torch.manual_seed(0)
    d, C = x["d"], x["phones"]
    rp = RelationalProxyLoss()
    asyp_utt = AsymmetricProxyLoss()
    adams = build_phoneme_loss("asyp", C)
    adams.set_scales(alpha=0.5, beta=10.0, lam=0.2)  # scales a trained model reaches
    proxies = {name: build_phoneme_loss(name, C) for name in ("proxy_bd", "proxy_ms", "clat")}
    xattn = PhonemeCrossAttention(d)
    mm = MonotonicMatchingLoss()
    sf2 = SphereFace2(d, x["n_kw"])
    aam = AAMSoftmax(d, x["n_kw"])
    triplet = BatchHardTriplet()
    mal = ModalityAdversarialLoss(ModalityClassifier(d), normalize=True)
    for module in (rp, asyp_utt, adams, *proxies.values(), xattn, mm, sf2, aam, triplet, mal):
        module.to(device)
    text_rows = x["text_utt"]

    def mm_loss():  # the attention is computed in the objective's float32 region
        from pyadml.losses.precision import fp32_loss

        attn = fp32_loss(lambda *a: xattn(*a)[1])(x["t_phn"], x["t_mask"], x["a_phn"], x["a_mask"])
        return mm(attn, x["t_mask"], x["a_mask"])

    out = {
        "RP (L_utt)": lambda: rp(x["audio_utt"], text_rows, x["kw"])[0],
        "AsyP utterance level": lambda: asyp_utt(text_rows, x["audio_utt"], x["kw"]),
        "AsyP + AdaMS (L_phn)": lambda: adams(x["t_hat"], x["a_hat"], x["phn_labels"]),
    }
    out.update({f"{k} (L_phn)": (lambda f=f: f(x["t_hat"], x["a_hat"], x["phn_labels"]))
                for k, f in proxies.items()})
    out.update({
        "cross-attention + MM": mm_loss,
        "SphereFace2 (L_key)": lambda: sf2(x["audio_utt"], x["kw"]),
        "AAM (L_key)": lambda: aam(x["audio_utt"], x["kw"]),
        "triplet (L_key)": lambda: triplet(x["audio_utt"], x["kw"]),
        "MAL utt (L_adv)": lambda: mal(x["audio_utt"], text_rows)[0],
        "MAL phn (L_adv)": lambda: mal(x["a_hat"], x["t_hat"])[0],
    })
    return out


def precision_table(seed: int = 0, device: str = "cpu") -> list[tuple[str, float, float, float, float]]:
    """(loss, fp32, bf16 autocast, |diff|, unguarded bf16 autocast) for every loss, on ``device``
    (cpu or cuda) with that device's autocast."""
    from pyadml.losses.precision import guard_disabled

    x = {k: v.to(device) if torch.is_tensor(v) else v for k, v in _inputs(seed).items()}
    dev_type = torch.device(device).type
    if dev_type == "cuda":  # plain float32 matmuls for the reference, not TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    rows = []
    with torch.no_grad():
        for name, fn in loss_functions(x, device).items():
            ref = float(fn())
            with torch.autocast(dev_type, dtype=torch.bfloat16):
                amp = fn()
                assert amp.dtype == torch.float32, (name, amp.dtype)
                with guard_disabled():
                    raw = float(fn())
            rows.append((name, ref, float(amp), abs(float(amp) - ref), raw))
    return rows


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch sees no CUDA device")
    rows = precision_table(device=args.device)
    where = "CUDA" if args.device.startswith("cuda") else "CPU"
    print(f"{where} bf16 autocast vs float32, same float32 inputs (tolerance {TOLERANCE:g} relative)")
    print("| loss | fp32 | bf16 autocast | abs diff | unguarded bf16 | its abs diff |")
    print("|---|---|---|---|---|---|")
    for name, ref, amp, diff, raw in rows:
        print(f"| {name} | {ref:.6f} | {amp:.6f} | {diff:.1e} | {raw:.6f} | {abs(raw - ref):.1e} |")
    off = [name for name, ref, _, diff, _ in rows if diff > TOLERANCE * max(1.0, abs(ref))]
    if off:
        print(f"loss_precision: over the tolerance under {where} autocast: {', '.join(off)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
