"""g2p_en's neural G2P (a GRU encoder-decoder) run from its shipped weights with numpy alone.

Importing ``g2p_en`` takes about 3 s on 2 cores (4 s inside a scoring run): nltk, and
``inflect`` (number expansion); its ``G2p()`` also builds a second CMUdict. We use only
``G2p.predict`` for words outside CMUdict, so this module reads ``checkpoint20.npz`` from the
installed package without importing it (no code of g2p_en runs) and repeats predict's
arithmetic step for step, in float32, so its output is g2p_en's (tests/text/test_g2p.py
compares the two). Every process that tokenises a word outside CMUdict (each scoring run of
stage 8, stage 9's workers, ``detect`` with "snowboy": 6.5 -> 2.5 s) saves those seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

GRAPHEMES = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
# g2p_en's output units in its index order (including its stray unstressed "UW").
PHONEMES = ["<pad>", "<unk>", "<s>", "</s>"] + [
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0",
    "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1",
    "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH",
    "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T",
    "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH"]
START, END = 2, 3       # <s> and </s> in PHONEMES
MAX_STEPS = 20          # g2p_en's decoder stops after 20 units
WEIGHTS = "checkpoint20.npz"
KEYS = ("enc_emb", "enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh",
        "dec_emb", "dec_w_ih", "dec_w_hh", "dec_b_ih", "dec_b_hh", "fc_w", "fc_b")


class G2pWeightsError(RuntimeError):
    pass


def weights_path() -> Path:
    """checkpoint20.npz inside the installed g2p_en package (found, not imported)."""
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        raise G2pWeightsError("the g2p_en package is not installed (pip install g2p_en); its "
                              "neural G2P pronounces words outside CMUdict")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS
    if not path.is_file():
        raise G2pWeightsError(f"{path}: missing; reinstall g2p_en (pip install --force-reinstall "
                              f"g2p_en)")
    return path


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's GRU cell (gates r, z, n), as g2p_en computes it."""
    ih = np.matmul(x, w_ih.T) + b_ih
    hh = np.matmul(h, w_hh.T) + b_hh
    k = ih.shape[-1] * 2 // 3
    r, z = np.split(_sigmoid(ih[:, :k] + hh[:, :k]), 2, -1)
    n = np.tanh(ih[:, k:] + r * hh[:, k:])
    return (1 - z) * n + z * h


class NeuralG2p:
    """``predict(word)``: ARPAbet units of a lower-case a-z word, g2p_en's neural model."""

    def __init__(self, path: str | Path | None = None):
        path = Path(path) if path is not None else weights_path()
        try:
            with np.load(path) as npz:
                self.w = {k: npz[k] for k in KEYS}
        except (OSError, ValueError, KeyError) as e:
            raise G2pWeightsError(f"{path}: not g2p_en's weights: {e}") from None
        self.g2idx = {g: i for i, g in enumerate(GRAPHEMES)}

    def predict(self, word: str) -> list[str]:
        w = self.w
        ids = [self.g2idx.get(c, 1) for c in list(word) + ["</s>"]]
        x = np.take(w["enc_emb"], ids, axis=0)
        h = np.zeros((1, w["enc_w_hh"].shape[-1]), np.float32)
        for t in range(len(ids)):
            h = _gru_cell(x[t : t + 1], h, w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
        # g2p_en keeps the encoder's outputs in a float32 array: its last state is rounded so.
        h = h.astype(np.float32)
        dec = np.take(w["dec_emb"], [START], axis=0)
        out = []
        for _ in range(MAX_STEPS):
            h = _gru_cell(dec, h, w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
            pred = int((np.matmul(h, w["fc_w"].T) + w["fc_b"]).argmax())
            if pred == END:
                break
            out.append(PHONEMES[pred] if pred < len(PHONEMES) else "<unk>")
            dec = np.take(w["dec_emb"], [pred], axis=0)
        return out
