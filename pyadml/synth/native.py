"""espeak-ng and flite through their C libraries (ctypes) instead of one program run per text.

``espeak-ng -w`` and ``flite -o`` pay a process start and a voice load for every text: about
20 of espeak-ng's 25 ms per word on 2 cores. Here one helper process loads the library and the
voice once per batch, and forks a child per text. Each child starts from the state the program
has when it speaks (the voice loaded, nothing spoken yet), which matters: both engines keep
state between texts in one process (espeak-ng's voice noise and its pauses), so speaking a
batch in one process would give other audio than the programs. The helper also resets the C
library's random numbers to a new process's (espeak-ng's noise comes from rand()). The children's wav files hold
the programs' samples exactly (tests/synth/test_native.py checks every voice of
conf/synth.yaml against the programs).

``speak`` returns False where a library or os.fork is missing; the caller then runs the
programs, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import wave
from pathlib import Path
from typing import Callable, Sequence

# espeak-ng's speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_espeakRATE, _espeakPITCH = 1, 3
# The program's flags for a text on the command line: espeakCHARS_AUTO | espeakPHONEMES |
# espeakENDPAUSE.
_SYNTH_FLAGS = 0x0000 | 0x0100 | 0x1000


class _EspeakVoice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)


def _load(name: str, mode: int = ctypes.DEFAULT_MODE) -> ctypes.CDLL | None:
    path = ctypes.util.find_library(name)
    if path is None:
        return None
    try:
        return ctypes.CDLL(path, mode=mode)
    except OSError:
        return None


@functools.lru_cache(maxsize=None)
def _espeak() -> ctypes.CDLL | None:
    return _load("espeak-ng")


@functools.lru_cache(maxsize=None)
def _flite(voice: str) -> tuple[ctypes.CDLL, Callable] | None:
    """libflite and the voice's register function (flite's ``-voice kal`` is cmu_us_kal)."""
    core = _load("flite", ctypes.RTLD_GLOBAL)
    # The voice libraries resolve their language and lexicon from these two.
    if core is None or _load("flite_usenglish", ctypes.RTLD_GLOBAL) is None \
            or _load("flite_cmulex", ctypes.RTLD_GLOBAL) is None:
        return None
    lib = _load(f"flite_cmu_us_{voice}", ctypes.RTLD_GLOBAL)
    register = getattr(lib, f"register_cmu_us_{voice}", None) if lib is not None else None
    if register is None:
        return None
    register.restype, register.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    core.feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
    core.flite_text_to_speech.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p]
    core.flite_text_to_speech.restype = ctypes.c_float
    return core, register


def available(engine: str, voice: str) -> bool:
    if not hasattr(os, "fork"):
        return False
    if engine == "espeak":
        return _espeak() is not None
    if engine == "flite":
        return _flite(voice) is not None
    return False


def _forked(setup: Callable[[], object], speak: Callable[[object, tuple], None],
            jobs: Sequence[tuple], what: str) -> None:
    """In a helper process: ``state = setup()``, then ``speak(state, job)`` for each job in a
    child of its own. Raises RuntimeError with the helper's message when anything fails."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper
        status = 0
        try:
            os.close(r)
            state = setup()
            for job in jobs:
                child = os.fork()
                if child == 0:
                    code = 1
                    try:
                        speak(state, job)
                        code = 0
                    finally:
                        os._exit(code)
                _, st = os.waitpid(child, 0)
                if st != 0:
                    raise RuntimeError(f"failed on {job[0]!r} (wait status {st})")
        except BaseException as e:  # reported to the parent; the helper must never return
            os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode("utf-8", "replace")
    _, st = os.waitpid(pid, 0)
    if st != 0:
        raise RuntimeError(f"{what}: {msg or f'helper exited with wait status {st}'}")


def _fresh_libc_random() -> None:
    """The C library's rand() as a new process has it (seed 1): espeak-ng draws its voices' noise
    from it, and whatever this process drew before must not change the audio."""
    ctypes.CDLL(None).srand(1)


def _espeak_setup(voice: str):
    lib = _espeak()
    _fresh_libc_random()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
    if rate <= 0:
        raise RuntimeError(f"espeak_Initialize failed ({rate})")
    # As the program: the voice by name, else by language ("en-gb+f1").
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        sel = _EspeakVoice(languages=voice.encode())
        if lib.espeak_SetVoiceByProperties(ctypes.byref(sel)) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    return lib, rate


def _espeak_speak(state, job) -> None:
    lib, rate = state
    text, speed, pitch, path = job
    chunks: list[bytes] = []

    @_SYNTH_CALLBACK
    def collect(samples, n, events):
        if n > 0 and samples:
            chunks.append(ctypes.string_at(samples, 2 * n))
        return 0

    lib.espeak_SetSynthCallback(collect)
    lib.espeak_SetParameter(_espeakRATE, int(speed), 0)
    lib.espeak_SetParameter(_espeakPITCH, int(pitch), 0)
    data = text.encode() + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _SYNTH_FLAGS, None, None)
    lib.espeak_Synchronize()
    tmp = Path(f"{path}.part")
    with wave.open(str(tmp), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(b"".join(chunks))
    os.replace(tmp, path)


def _flite_setup(voice: str):
    core, register = _flite(voice)
    _fresh_libc_random()
    core.flite_init()
    v = register(None)
    if not v:
        raise RuntimeError(f"register_cmu_us_{voice} returned no voice")
    # cst_voice starts {const char *name; cst_features *features; ...}
    features = ctypes.cast(v + ctypes.sizeof(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p))[0]
    return core, v, features


def _flite_speak(state, job) -> None:
    core, v, features = state
    text, stretch, f0, path = job
    if f0 is not None:
        core.feat_set_float(features, b"int_f0_target_mean", float(f0))
    core.feat_set_float(features, b"duration_stretch", float(stretch))
    core.flite_text_to_speech(text.encode(), v, str(path).encode())


def speak(engine: str, voice: str, jobs: Sequence[tuple]) -> bool:
    """Write each job's wav as the program would; False (nothing done) without the library.

    espeak jobs are (text, speed in words per minute, pitch 0-99, path), as ``espeak-ng -v
    voice -s speed -p pitch -w path text``; flite jobs (text, duration_stretch,
    int_f0_target_mean or None, path), as ``flite -voice voice --setf ... -t text -o path``
    (the caller rounds the floats as it prints them for the program)."""
    if not jobs or not available(engine, voice):
        return False
    if engine == "espeak":
        _forked(lambda: _espeak_setup(voice), _espeak_speak, jobs, f"espeak-ng voice {voice}")
    else:
        _forked(lambda: _flite_setup(voice), _flite_speak, jobs, f"flite voice {voice}")
    return True
