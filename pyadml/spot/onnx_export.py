"""ONNX export of both encoders (``python -m pyadml.bin.export_onnx``) and its parity check.

Writes ``audio_encoder.onnx`` (feats (B, T, D) float32, feat_lens (B,) int64 -> utt (B, d)),
``text_encoder.onnx`` (phones (B, L) int64, phone_lens (B,) int64 -> utt (B, d)), both with
dynamic batch and time axes, and ``spotter.json``: tokenizer (Tokenizer.to_dict()), fbank
options and embedding size, everything the ONNX backend needs without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from pyadml.fileio import atomic_path, write_text_atomic

from .audio import SpotError
from .backend import CONFIG_NAME, ONNX_FORMAT

OPSET = 17


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_onnx(model_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Export ``final.pt`` to ``out_dir``; returns spotter.json's content. The .onnx files are
    renamed into place first and spotter.json last, so a directory with a spotter.json is whole."""
    import torch

    from pyadml.models.export import load_model

    try:
        loaded = load_model(model_path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpotError(str(e)) from None
    model = loaded.model.eval()
    if loaded.model.scorer != "cosine":
        raise SpotError(f"{model_path}: ONNX export is not supported for scorer "
                        f"{loaded.model.scorer!r} (a detector head); use the torch backend")
    out_dir = Path(out_dir)

    class Audio(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = model.audio

        def forward(self, feats, feat_lens):
            return self.enc(feats, feat_lens).utt

    class Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = model.text

        def forward(self, phones, phone_lens):
            return self.enc(phones, phone_lens).utt

    dim = int(model.audio.cfg.input_dim)
    # Unequal lengths in the example batch, so the traced graph keeps the masking general.
    examples = {
        "audio_encoder.onnx": (Audio(), (torch.randn(2, 50, dim), torch.tensor([50, 37])),
                               ["feats", "feat_lens"]),
        "text_encoder.onnx": (Text(), (torch.randint(1, len(loaded.phone_table), (2, 7)),
                                       torch.tensor([7, 4])), ["phones", "phone_lens"]),
    }
    for name, (module, args, inputs) in examples.items():
        # export() restores the wrapper's train/eval mode on the encoders afterwards: eval first.
        module.eval()
        axes = {inputs[0]: {0: "batch", 1: "time"}, inputs[1]: {0: "batch"}, "utt": {0: "batch"}}
        with atomic_path(out_dir / name) as tmp, warnings.catch_warnings():
            # The tracer warns about the encoders' Python-side length checks; they hold here.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=["utt"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    cfg = {
        "format": ONNX_FORMAT,
        "audio_model": "audio_encoder.onnx",
        "text_model": "text_encoder.onnx",
        "embed_dim": int(model.audio.embed_dim),
        "tokenizer": loaded.tokenizer.to_dict(),
        "features": dict(loaded.features),
        "audio_config": loaded.audio_config,
        "text_config": loaded.text_config,
        "opset": OPSET,
        "source": {"model": str(model_path), "sha256": _sha256(Path(model_path)),
                   "meta_exp_dir": loaded.meta.get("exp_dir")},
        # Each graph's sha256: a directory with a graph missing, cut short or copied from
        # another export is found out (check_export, OnnxBackend), not scored.
        "sha256": {name: _sha256(out_dir / name) for name in examples},
    }
    write_text_atomic(out_dir / CONFIG_NAME, json.dumps(cfg, indent=1, sort_keys=True) + "\n")
    return cfg


def check_graphs(d: Path, cfg: dict) -> None:
    """SpotError unless the two .onnx files that ``spotter.json`` names are there, and are the
    ones its export wrote (their sha256, where it records them: exports before it did not)."""
    recorded = cfg.get("sha256") if isinstance(cfg.get("sha256"), dict) else {}
    again = (f"export it again with python -m pyadml.bin.export_onnx --model <final.pt> "
             f"--out-dir {d}")
    for key in ("audio_model", "text_model"):
        path = d / str(cfg[key])
        if not path.is_file():
            raise SpotError(f"{path}: missing from the ONNX export {d} (its {CONFIG_NAME} "
                            f"names it); {again}")
        want = recorded.get(str(cfg[key]))
        if want is not None and _sha256(path) != want:
            raise SpotError(f"{path}: not the graph this export wrote (sha256 {_sha256(path)[:12]}, "
                            f"{CONFIG_NAME} records {str(want)[:12]}): cut short, or copied from "
                            f"another export? {again}")


def check_export(onnx_dir: str | os.PathLike, model_path: str | os.PathLike) -> None:
    """SpotError unless ``onnx_dir`` is a whole export of this very ``model_path`` (the sha256
    that spotter.json recorded): a stale export would score another model."""
    from .backend import read_onnx_config

    d, cfg = read_onnx_config(onnx_dir)
    check_graphs(d, cfg)
    want = (cfg.get("source") or {}).get("sha256")
    got = _sha256(Path(model_path))
    if want != got:
        raise SpotError(f"{d}: exported from another model than {model_path} (sha256 "
                        f"{str(want)[:12]} against {got[:12]}); export it again with python -m "
                        f"pyadml.bin.export_onnx --model {model_path} --out-dir {d}")


def parity(model_path: str | os.PathLike, onnx_dir: str | os.PathLike, feats: list[np.ndarray],
           keywords: list[str]) -> dict:
    """Max abs difference of the utterance embeddings, torch vs onnxruntime, on the given
    (already normalised) feature matrices (one padded batch) and keyword texts."""
    from .backend import OnnxBackend, TorchBackend

    tb, ob = TorchBackend(model_path), OnnxBackend(onnx_dir)
    lens = np.array([f.shape[0] for f in feats], dtype=np.int64)
    x = np.zeros((len(feats), int(lens.max()), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    ids = [tb.tokenizer.encode(k) for k in keywords]
    return {"audio": float(np.abs(tb.embed_audio(x, lens) - ob.embed_audio(x, lens)).max()),
            "text": float(np.abs(tb.embed_phones(ids) - ob.embed_phones(ids)).max())}


def self_check(model_path, onnx_dir, seed: int = 0) -> dict:
    """``parity`` on seeded random features of three lengths and three keyword texts."""
    rng = np.random.default_rng(seed)
    from .backend import OnnxBackend

    dim = int(OnnxBackend(onnx_dir).config["audio_config"].get("input_dim", 40))
    feats = [rng.standard_normal((n, dim)).astype(np.float32) for n in (23, 64, 150)]
    return parity(model_path, onnx_dir, feats, ["computer", "turn on the light", "yes"])
