"""Incremental fbank for the spotter: kaldi-native-fbank's OnlineFbank with the model's options.

Why not lhotse's Fbank, which the model was trained on: lhotse imports torch (the ONNX backend
must not), and it has no online mode. kaldi-native-fbank implements the same Kaldi recipe
(DC removal, 0.97 pre-emphasis, povey window, 512-point FFT, torchaudio-style mel banks, float
eps log floor, reflected edges with snip_edges false); on speech at lhotse's [-1, 1] scale the two
differ by at most ~1.3e-4 (log-mel values span about -16..5, tests/spot/test_features.py). Its
frames do not depend on how the audio is chunked (each frame is computed from its own samples), so
offline and streaming detection see identical features.
"""

from __future__ import annotations

import numpy as np

from pyadml.data.features import fbank_options

from .audio import SpotError

# lhotse FbankConfig defaults that the model files do not store (pyadml.data.features).
_DEFAULTS = {"sampling_rate": 16000, "num_mel_bins": 40, "frame_length": 0.025,
             "frame_shift": 0.01, "dither": 0.0, "low_freq": 20.0, "high_freq": -400.0,
             "snip_edges": False, "energy_floor": 1e-10}


def feature_options(features: dict) -> dict:
    """The model's stored fbank options with lhotse's defaults filled in (the front-end keys,
    mean_norm and floor_db, dropped)."""
    cfg = dict(_DEFAULTS)
    cfg.update(fbank_options(features))
    unknown = set(cfg) - set(_DEFAULTS)
    if unknown:
        raise SpotError(f"model features: unknown fbank option(s) {sorted(unknown)}")
    if cfg["dither"]:
        raise SpotError(f"model features: dither={cfg['dither']} makes scores random; the "
                        f"spotter needs dither 0")
    return cfg


def knf_options(features: dict):
    import kaldi_native_fbank as knf

    cfg = feature_options(features)
    o = knf.FbankOptions()
    o.frame_opts.samp_freq = float(cfg["sampling_rate"])
    o.frame_opts.frame_length_ms = 1000.0 * float(cfg["frame_length"])
    o.frame_opts.frame_shift_ms = 1000.0 * float(cfg["frame_shift"])
    o.frame_opts.dither = 0.0
    o.frame_opts.snip_edges = bool(cfg["snip_edges"])
    o.mel_opts.num_bins = int(cfg["num_mel_bins"])
    o.mel_opts.low_freq = float(cfg["low_freq"])
    o.mel_opts.high_freq = float(cfg["high_freq"])
    # lhotse's energy_floor only matters with use_energy, which pyadml never sets.
    return o


class OnlineFeatures:
    """Feed samples in chunks of any size; ``take()`` returns the frames that became ready.

    Memory is bounded: frames are popped from the extractor once returned.
    """

    def __init__(self, features: dict):
        import kaldi_native_fbank as knf

        self.options = knf_options(features)
        self.rate = int(feature_options(features)["sampling_rate"])
        self.dim = int(self.options.mel_opts.num_bins)
        self._fbank = knf.OnlineFbank(self.options)
        self._next = 0  # absolute index of the next frame to hand out
        self.num_samples = 0
        self.finished = False

    def accept(self, samples: np.ndarray) -> None:
        if self.finished:
            raise SpotError("audio given after the end of the stream")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.size:
            self._fbank.accept_waveform(self.rate, samples)
            self.num_samples += samples.size

    def finish(self) -> None:
        if not self.finished:
            self._fbank.input_finished()
            self.finished = True

    def take(self) -> np.ndarray:
        n = self._fbank.num_frames_ready
        if n <= self._next:
            return np.zeros((0, self.dim), np.float32)
        out = np.stack([self._fbank.get_frame(i) for i in range(self._next, n)]).astype(np.float32)
        self._fbank.pop(n - self._next)
        self._next = n
        return out


def compute_fbank(audio: np.ndarray, features: dict) -> np.ndarray:
    """(T, D) float32 log-mel frames of a whole recording (no normalisation)."""
    f = OnlineFeatures(features)
    f.accept(audio)
    f.finish()
    return f.take()
