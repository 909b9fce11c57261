"""The two encoders behind one interface: torch (``final.pt``) or onnxruntime (an export dir).

``OnnxBackend`` and everything it imports stay torch-free: the tokenizer, fbank options and
embedding size come from ``spotter.json`` beside the .onnx files (pyadml.spot.onnx_export).
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from pyadml.text import Tokenizer

from .audio import SpotError

ONNX_FORMAT = "pyadml-kws-onnx/1"
CONFIG_NAME = "spotter.json"


def _pad_ids(ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.array([len(p) for p in ids], dtype=np.int64)
    x = np.zeros((len(ids), int(lens.max())), dtype=np.int64)
    for i, p in enumerate(ids):
        x[i, : len(p)] = p
    return x, lens


def embed_clips(backend, feats: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    """(N, d) utterance embeddings of (T_i, D) feature matrices through a backend's
    ``embed_audio``, in input order; batches hold similar lengths, so little compute goes to
    padding (as pyadml.score.embed.embed_features does with torch)."""
    out = np.zeros((len(feats), backend.embed_dim), dtype=np.float32)
    order = np.argsort([f.shape[0] for f in feats], kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        lens = np.array([feats[i].shape[0] for i in idx], dtype=np.int64)
        x = np.zeros((len(idx), int(lens.max()), feats[0].shape[1]), dtype=np.float32)
        for row, i in enumerate(idx):
            x[row, : lens[row]] = feats[i]
        out[idx] = backend.embed_audio(x, lens)
    return out


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        import torch

        from pyadml.models.export import load_model

        if num_threads:
            torch.set_num_threads(int(num_threads))
        try:
            loaded = load_model(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SpotError(str(e)) from None
        self._torch = torch
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.features = dict(loaded.features)
        self.embed_dim = int(loaded.model.audio.embed_dim)
        self.source = str(path)
        # "cosine", or a detector head's name: then keywords are phoneme-state sequences and
        # windows are scored by score_windows (the head's probability).
        self.scorer = loaded.model.scorer

    def embed_audio(self, feats: np.ndarray, lens: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model.embed_audio(torch.from_numpy(np.ascontiguousarray(feats)),
                                         torch.from_numpy(np.asarray(lens, dtype=np.int64)))
        return out.utt.float().numpy()

    def embed_phones(self, ids: Sequence[Sequence[int]]):
        """(K, d) utterance embeddings; for a detector, a list of (L_k, d) phoneme states."""
        torch = self._torch
        x, lens = _pad_ids(ids)
        with torch.inference_mode():
            out = self.model.embed_text(torch.from_numpy(x), torch.from_numpy(lens))
        if self.scorer != "cosine":
            phn = out.phn.float().numpy()
            return [phn[i, : int(n)].copy() for i, n in enumerate(lens)]
        return out.utt.float().numpy()

    def score_windows(self, feats: np.ndarray, lens: np.ndarray, keywords: Sequence) -> np.ndarray:
        """(P, K) detector probabilities of P windows (P, W, D) against K keywords' phoneme
        states (from embed_phones): the audio encoder runs once per window, the head once per
        (window, keyword) pair."""
        torch = self._torch
        if self.scorer == "cosine":
            raise SpotError("score_windows is for detector models; this one scores by cosine")
        p, k = feats.shape[0], len(keywords)
        with torch.inference_mode():
            a_lens = torch.from_numpy(np.asarray(lens, dtype=np.int64))
            enc = self.model.embed_audio(torch.from_numpy(np.ascontiguousarray(feats)), a_lens)
            l_max = max(t.shape[0] for t in keywords)
            t = torch.zeros(k, l_max, enc.phn.shape[2])
            t_mask = torch.zeros(k, l_max, dtype=torch.bool)
            for i, s in enumerate(keywords):
                t[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, dtype=np.float32))
                t_mask[i, : s.shape[0]] = True
            a = enc.phn.float().repeat_interleave(k, dim=0)
            a_mask = enc.mask.repeat_interleave(k, dim=0)
            prob = self.model.detect(a, a_mask, t.repeat(p, 1, 1), t_mask.repeat(p, 1))
        return prob.view(p, k).numpy()


def read_onnx_config(directory: str | os.PathLike) -> tuple[Path, dict]:
    d = Path(directory)
    if d.is_file() and d.name == CONFIG_NAME:
        d = d.parent
    cfg_path = d / CONFIG_NAME
    if not cfg_path.is_file():
        raise SpotError(f"{d}: not an ONNX spotter directory (no {CONFIG_NAME}; write one with "
                        f"python -m pyadml.bin.export_onnx)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpotError(f"{cfg_path}: unreadable: {e}") from None
    if not isinstance(cfg, dict) or cfg.get("format") != ONNX_FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise SpotError(f"{cfg_path}: format is {got!r}, expected {ONNX_FORMAT!r}")
    for key in ("audio_model", "text_model", "tokenizer", "features", "embed_dim"):
        if key not in cfg:
            raise SpotError(f"{cfg_path}: lacks {key!r}")
    return d, cfg


class OnnxBackend:
    name = "onnx"

    def __init__(self, directory: str | os.PathLike, num_threads: int | None = None):
        import onnxruntime as ort

        from .onnx_export import check_graphs

        d, cfg = read_onnx_config(directory)
        check_graphs(d, cfg)
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        sessions = []
        for key in ("audio_model", "text_model"):
            path = d / cfg[key]
            try:
                sessions.append(ort.InferenceSession(str(path), opts,
                                                     providers=["CPUExecutionProvider"]))
            except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
                raise SpotError(f"{path}: cannot load: {e}") from None
        self.audio_session, self.text_session = sessions
        try:
            self.tokenizer = Tokenizer.from_dict(cfg["tokenizer"])
        except (KeyError, TypeError, ValueError) as e:
            raise SpotError(f"{d / CONFIG_NAME}: bad tokenizer: {e}") from None
        self.features = dict(cfg["features"])
        self.embed_dim = int(cfg["embed_dim"])
        self.scorer = cfg.get("scorer", "cosine")
        if self.scorer != "cosine":
            raise SpotError(f"{d}: the ONNX backend does not support scorer {self.scorer!r}; "
                            f"use the torch backend with final.pt")
        self.config = cfg
        self.source = str(d)

    def embed_audio(self, feats: np.ndarray, lens: np.ndarray) -> np.ndarray:
        return self.audio_session.run(["utt"], {
            "feats": np.ascontiguousarray(feats, dtype=np.float32),
            "feat_lens": np.asarray(lens, dtype=np.int64)})[0]

    def embed_phones(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        x, lens = _pad_ids(ids)
        return self.text_session.run(["utt"], {"phones": x, "phone_lens": lens})[0]


def open_backend(path: str | os.PathLike, backend: str | None = None,
                 num_threads: int | None = None):
    """``backend`` None picks by the path: a directory or spotter.json is ONNX, else torch.
    ``num_threads`` None or 0: the library's own thread count."""
    if num_threads is not None and not (isinstance(num_threads, numbers.Integral)
                                        and num_threads >= 0):
        # else torch's bare 'set_num_threads expects a positive integer' traceback
        raise SpotError(f"num_threads must be a whole number >= 1 (0: the library's own count), "
                        f"got {num_threads!r}")
    p = Path(path)
    if backend is None:
        backend = "onnx" if (p.is_dir() or p.name == CONFIG_NAME) else "torch"
    if backend == "onnx":
        if p.is_file() and p.name != CONFIG_NAME:
            raise SpotError(f"{p}: --backend onnx needs the directory that "
                            f"pyadml.bin.export_onnx wrote, not a model file")
        return OnnxBackend(p, num_threads)
    if backend == "torch":
        if p.is_dir():
            raise SpotError(f"{p}: is a directory; the torch backend reads final.pt")
        if not p.is_file():
            raise SpotError(f"{p}: no such model file")
        return TorchBackend(p, num_threads)
    raise SpotError(f"unknown backend {backend!r}; expected torch or onnx")
