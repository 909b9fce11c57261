"""espeak-ng and flite through their C libraries (ctypes) instead of one program run per text.

``espeak-ng -w`` and ``flite -o`` pay a process start and a voice load for every text: about
20 of espeak-ng's 25 ms per word on 2 cores. Here a small helper process (this file, run by the
same Python without site packages) loads the library and the voice once per batch and forks a
child per text. Each child starts from the state the program has when it speaks (the voice
loaded, nothing spoken yet, the C library's rand() freshly seeded), which matters: both engines
keep state between texts in one process (their noise comes from rand()), so speaking a batch in
one process would give other audio than the programs. The helper is a new process, not a fork
of the caller, so that a fork per text copies a small process, not a synthesis worker that
holds neural voices. The wav files hold the programs' samples exactly
(tests/synth/test_native.py checks every espeak-ng and flite voice of conf/synth.yaml).

``speak`` returns False where a library or os.fork is missing; the caller then runs the
programs, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import subprocess
import sys
import wave
from typing import Sequence

# espeak-ng's speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_espeakRATE, _espeakPITCH = 1, 3
# The program's flags for a text on its command line: espeakCHARS_AUTO | espeakPHONEMES |
# espeakENDPAUSE.
_SYNTH_FLAGS = 0x0000 | 0x0100 | 0x1000


@functools.lru_cache(maxsize=None)
def _libraries(engine: str, voice: str) -> tuple[str, ...] | None:
    """The shared libraries the helper loads, in order, or None when one is missing."""
    if engine == "espeak":
        names = ["espeak-ng"]
    elif engine == "flite":
        # flite's ``-voice kal`` is cmu_us_kal; the voice resolves its language and lexicon
        # from the two before it.
        names = ["flite", "flite_usenglish", "flite_cmulex", f"flite_cmu_us_{voice}"]
    else:
        return None
    paths = [ctypes.util.find_library(n) for n in names]
    return None if None in paths else tuple(paths)


def available(engine: str, voice: str) -> bool:
    return hasattr(os, "fork") and _libraries(engine, voice) is not None


def speak(engine: str, voice: str, jobs: Sequence[tuple], timed: bool = False) -> bool:
    """Write each job's wav as the program would; False (nothing done) without the library.
    ``timed`` (espeak-ng only): also write ``<wav>.words``, JSON ``{"words": [[text position
    (1-based character), sample], ...], "end": sample}``: where espeak-ng starts each word it
    speaks (its word events; an unstressed word it joins to the next, such as "the" in "in the
    navy", has none) and where the speech ends, in samples of the wav.

    espeak jobs are (text, speed in words per minute, pitch 0-99, path), as ``espeak-ng -v
    voice -s speed -p pitch -w path text``; flite jobs (text, duration_stretch,
    int_f0_target_mean or None, path), as ``flite -voice voice --setf ... -t text -o path``
    (the caller rounds the floats as it prints them for the program). Raises RuntimeError with
    the helper's message when a text fails."""
    if not jobs or not available(engine, voice):
        return False
    if timed and engine != "espeak":
        raise ValueError(f"only espeak-ng reports word times, not {engine}")
    request = {"engine": engine, "voice": voice, "libraries": _libraries(engine, voice),
               "jobs": [[*job[:-1], str(job[-1])] for job in jobs], "timed": timed}
    res = subprocess.run([sys.executable, "-I", os.path.abspath(__file__)],
                         input=json.dumps(request).encode(), capture_output=True)
    if res.returncode != 0:
        what = "espeak-ng" if engine == "espeak" else "flite"
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"{what} voice {voice}: {err[-1] if err else f'exit {res.returncode}'}")
    return True


# ----------------------------------------------------------------------------------------------
# the helper process


class _EspeakVoice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.POINTER(_EspeakEvent))
_EVENT_END_OF_LIST, _EVENT_WORD, _EVENT_END = 0, 1, 5


def _espeak_setup(libraries, voice):
    lib = ctypes.CDLL(libraries[0])
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
    if rate <= 0:
        raise RuntimeError(f"espeak_Initialize failed ({rate})")
    # As the program: the voice by name, else by language ("en-gb+f1").
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        sel = _EspeakVoice(languages=voice.encode())
        if lib.espeak_SetVoiceByProperties(ctypes.byref(sel)) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    return lib, rate


def _espeak_speak(state, job, timed: bool = False) -> None:
    lib, rate = state
    text, speed, pitch, path = job
    chunks: list[bytes] = []
    words: list[list[int]] = []
    end: list[int] = []

    @_SYNTH_CALLBACK
    def collect(samples, n, events):
        if n > 0 and samples:
            chunks.append(ctypes.string_at(samples, 2 * n))
        i = 0
        while events and events[i].type != _EVENT_END_OF_LIST:
            if events[i].type == _EVENT_WORD:
                words.append([events[i].text_position, events[i].sample])
            elif events[i].type == _EVENT_END:
                end.append(events[i].sample)
            i += 1
        return 0

    lib.espeak_SetSynthCallback(collect)
    lib.espeak_SetParameter(_espeakRATE, int(speed), 0)
    lib.espeak_SetParameter(_espeakPITCH, int(pitch), 0)
    data = text.encode() + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _SYNTH_FLAGS, None, None)
    lib.espeak_Synchronize()
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(b"".join(chunks))
    if timed:
        n = sum(len(c) for c in chunks) // 2
        with open(path + ".words", "w") as f:
            json.dump({"words": words, "end": min(end[-1], n) if end else n}, f)


def _flite_setup(libraries, voice):
    libs = [ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL) for p in libraries]
    core, register = libs[0], getattr(libs[-1], f"register_cmu_us_{voice}")
    register.restype, register.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    core.feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
    core.flite_text_to_speech.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p]
    core.flite_text_to_speech.restype = ctypes.c_float
    core.flite_init()
    v = register(None)
    if not v:
        raise RuntimeError(f"register_cmu_us_{voice} returned no voice")
    # cst_voice starts {const char *name; cst_features *features; ...}
    features = ctypes.cast(v + ctypes.sizeof(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p))[0]
    return core, v, features


def _flite_speak(state, job, timed: bool = False) -> None:
    core, v, features = state
    text, stretch, f0, path = job
    if f0 is not None:
        core.feat_set_float(features, b"int_f0_target_mean", float(f0))
    core.feat_set_float(features, b"duration_stretch", float(stretch))
    core.flite_text_to_speech(text.encode(), v, path.encode())


def _helper() -> int:
    req = json.load(sys.stdin)
    setup, speak_one = {"espeak": (_espeak_setup, _espeak_speak),
                        "flite": (_flite_setup, _flite_speak)}[req["engine"]]
    # rand() as a new process has it (seed 1), before the engine draws from it.
    ctypes.CDLL(None).srand(1)
    state = setup(req["libraries"], req["voice"])
    for job in req["jobs"]:
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            code = 1
            try:
                speak_one(state, job, req.get("timed", False))
                code = 0
            except BaseException as e:
                print(f"{type(e).__name__}: {e}", file=sys.stderr)
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(child, 0)
        if status != 0:
            print(f"failed on {job[0]!r} (wait status {status})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_helper())
