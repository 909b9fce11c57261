"""Stage 7: average the last N epoch checkpoints and write the self-contained final.pt."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
import yaml

from pyadml.models.export import average_checkpoints, export_model
from pyadml.text import PHONES_NO_STRESS, PHONES_WITH_STRESS, PhoneTable


def epoch_checkpoints(exp_dir: Path) -> list[tuple[int, Path]]:
    """``checkpoints/epoch-<n>.pt`` sorted by n as a number (epoch-10 after epoch-9)."""
    found = []
    for p in (exp_dir / "checkpoints").glob("epoch-*.pt"):
        m = re.fullmatch(r"epoch-(\d+)\.pt", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def infer_g2p(phones: list[str]) -> dict:
    """The G2P options that made phones.txt: stressed units or not, plus a word boundary."""
    inventories = {False: set(PHONES_WITH_STRESS), True: set(PHONES_NO_STRESS)}
    for strip, inv in inventories.items():
        extra = [p for p in phones if p not in inv]
        if len(extra) <= 1 and inv <= set(phones):
            return {"strip_stress": strip, "word_boundary": extra[0] if extra else None}
    raise ValueError("phones.txt is not a G2P inventory (stressed or not, with at most one word "
                     "boundary symbol); pass --strip-stress/--word-boundary")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True, help="exp/<tag> with checkpoints/epoch-*.pt")
    p.add_argument("--avg", type=int, default=None,
                   help="average the last N epoch checkpoints (default: the config's 'average')")
    p.add_argument("--lang", required=True, help="data/lang with phones.txt")
    p.add_argument("--fbank-config", required=True, help="conf/fbank.yaml used for the features")
    p.add_argument("--out", default=None, help="default: <exp-dir>/final.pt")
    p.add_argument("--no-mean-norm", action="store_true",
                   help="the model was trained without per-utterance mean normalisation")
    p.add_argument("--strip-stress", default=None, choices=["true", "false"],
                   help="G2P option (default: inferred from phones.txt)")
    p.add_argument("--word-boundary", default=None, help="G2P option (default: inferred)")
    args = p.parse_args(argv)

    exp_dir = Path(args.exp_dir)
    ckpts = epoch_checkpoints(exp_dir)
    if not ckpts:
        print(f"export_model: no checkpoints/epoch-*.pt under {exp_dir}", file=sys.stderr)
        return 1
    last = torch.load(ckpts[-1][1], map_location="cpu", weights_only=False)
    cfg_path = exp_dir / "config.yaml"
    if cfg_path.is_file():
        config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    elif isinstance(last.get("config"), dict):
        config = last["config"]
    else:
        print(f"export_model: neither {cfg_path} nor the checkpoint holds the training config",
              file=sys.stderr)
        return 1
    avg = args.avg if args.avg is not None else int(config.get("average", 5))
    if avg < 1:
        print(f"export_model: cannot average {avg} checkpoints", file=sys.stderr)
        return 1
    if len(ckpts) < avg:
        print(f"export_model: warning: asked to average {avg} but only {len(ckpts)} epoch "
              f"checkpoint(s) exist; averaging those", file=sys.stderr)
    chosen = ckpts[-avg:]
    model_cfg = config.get("model") or {}
    if "audio" not in model_cfg or "text" not in model_cfg:
        print("export_model: the training config lacks model.audio / model.text", file=sys.stderr)
        return 1

    table = PhoneTable.read(Path(args.lang) / "phones.txt")
    phones = table.symbols[1:]
    try:
        g2p = infer_g2p(phones)
    except ValueError as e:
        if args.strip_stress is None:
            print(f"export_model: {e}", file=sys.stderr)
            return 1
        g2p = {"strip_stress": False, "word_boundary": None}
    if args.strip_stress is not None:
        g2p["strip_stress"] = args.strip_stress == "true"
    if args.word_boundary is not None:
        g2p["word_boundary"] = args.word_boundary or None

    features = yaml.safe_load(Path(args.fbank_config).read_text(encoding="utf-8")) or {}
    features["mean_norm"] = not args.no_mean_norm

    state = average_checkpoints([path for _, path in chosen])
    text_cfg = {k: v for k, v in model_cfg["text"].items() if k != "vocab_size"}
    out = Path(args.out) if args.out else exp_dir / "final.pt"
    meta = {
        "exp_dir": str(exp_dir),
        "averaged": [path.name for _, path in chosen],
        "epochs": [epoch for epoch, _ in chosen],
        "step": last.get("step"),
        "config": config,
    }
    blob = export_model(state, out, audio_config=model_cfg["audio"], text_config=text_cfg,
                        phones=phones, g2p=g2p, features=features, meta=meta)
    dropped = len(state) - len(blob["model"])
    n_params = sum(v.numel() for v in blob["model"].values())
    print(f"export_model: averaged {len(chosen)} checkpoint(s) "
          f"{', '.join(path.name for _, path in chosen)}; kept {len(blob['model'])} encoder "
          f"tensors ({n_params / 1e6:.2f}M values), dropped {dropped} training-only; "
          f"{len(table)} phones, g2p {g2p} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
