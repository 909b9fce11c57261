"""Fixtures of the keyword-spotter tests: a tiny random model, its ONNX export, test audio and
a transparent stand-in backend whose scores are known in advance."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from pyadml.models import EcapaConfig, KwsModel, TextEncoderConfig
from pyadml.models.export import export_model
from pyadml.text import G2P, PhoneTable, Tokenizer

PHONES = list(G2P().inventory)
AUDIO = {"channels": 16, "embed_dim": 16, "se_bottleneck": 8, "attention_bottleneck": 8}
TEXT = {"embed_dim": 16, "hidden": 16, "layers": 1, "out_dim": 16}
FBANK = {"num_mel_bins": 40, "frame_length": 0.025, "frame_shift": 0.01, "dither": 0.0}
RATE = 16000


def tiny_model_file(path, seed=0, floor_db=None):
    """As tests/score/test_score.py builds it: random weights, non-trivial BN statistics;
    ``floor_db``: as if trained with that floor (its features carry it)."""
    torch.manual_seed(seed)
    model = KwsModel.from_configs(EcapaConfig(**AUDIO),
                                  TextEncoderConfig(vocab_size=len(PHONES) + 1, **TEXT))
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    export_model(model.state_dict(), path, audio_config=AUDIO, text_config=TEXT,
                 tokenizer=Tokenizer(PhoneTable(PHONES), {}),
                 features={**FBANK, "mean_norm": True, **({"floor_db": floor_db} if floor_db else {})},
                 meta={"test": True})
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("spot_model") / "final.pt")


@pytest.fixture(scope="session")
def onnx_dir(tiny_model, tmp_path_factory):
    from pyadml.spot.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("spot_onnx") / "onnx"
    export_onnx(tiny_model, out)
    return out


def speechlike(seconds, seed=0, rate=RATE):
    """Syllable-like bursts: harmonic tones with a moving pitch under an envelope, plus noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.2 * env * voiced + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="session")
def espeak_wav(tmp_path_factory):
    """'hello computer, turn on the light' spoken by espeak-ng at 16 kHz (skip without it)."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    d = tmp_path_factory.mktemp("espeak")
    raw = d / "raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "hello computer, turn on the light"], check=True,
                   capture_output=True)
    x, sr = sf.read(raw, dtype="float32")
    from scipy.signal import resample_poly

    x = resample_poly(x, RATE // 1000, sr // 1000).astype(np.float32) if sr != RATE else x
    out = d / "speech.wav"
    sf.write(out, x, RATE, subtype="FLOAT")
    return out


class ToneBackend:
    """A stand-in encoder pair whose scores are known: the audio 'embedding' of a window is
    [a, 1] with a = contrast of low-band minus high-band energy between the window's first and
    second half, so a chirp 'low tone then high tone' of exactly one window scores highest when
    the window is aligned with it. Every keyword's text embedding is [1, 0]: score = a / |[a, 1]|.
    """

    name = "tone"
    embed_dim = 2

    def __init__(self):
        self.tokenizer = Tokenizer(PhoneTable(PHONES), {})
        self.features = {**FBANK, "mean_norm": True}
        self.audio_calls = 0

    def embed_audio(self, feats, lens):
        self.audio_calls += 1
        d = feats[:, :, :8].mean(-1) - feats[:, :, 28:].mean(-1)  # (B, T)
        out = np.empty((feats.shape[0], 2), np.float32)
        for i, n in enumerate(lens):
            h = int(n) // 2
            out[i] = [(d[i, :h].mean() - d[i, h:int(n)].mean()) / 4.0, 1.0]
        return out

    def embed_phones(self, ids):
        return np.tile(np.array([[1.0, 0.0]], np.float32), (len(ids), 1))


def chirp_burst(frames, rate=RATE, shift=0.01):
    """A 300 Hz tone then a 5 kHz tone, ``frames`` feature frames long in all."""
    n = int(round(frames * shift * rate))
    t = np.arange(n) / rate
    f = np.where(np.arange(n) < n // 2, 300.0, 5000.0)
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def insert(background, burst, at_seconds, rate=RATE):
    x = background.copy()
    for t0 in at_seconds:
        i = int(round(t0 * rate))
        x[i : i + burst.size] += burst
    return x
