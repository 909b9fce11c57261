"""A level-relative floor on the log-mel features, a scoring front end for recordings.

The fbank is ln(max(E, eps)) of the mel energies E, with eps = 1.19e-7 (float32's): the
synthetic training audio is digitally silent around its words, so its silence sits on that
absolute floor, while a real recording's room sound lies 40-70 dB below its speech, well above
it. The model then scores a recording by how loud it is: the same real clips scaled by 0.01
score better than as recorded (egs/wsj_librikws/RESULTS.md, "A level-relative floor"). The floor
puts every clip's quietest parts on one level relative to its own loudest bin:

    F'[t, m] = max(F[t, m], max_{t', m'} F[t', m'] - floor_db * ln(10) / 10)

(ln(10) / 10 nats per dB, F being a natural log of power). After it, scaling the audio by g
shifts every value of F' by 2 ln g, which mean normalisation removes, as long as the floor lies
above eps: the scores no longer depend on the recording level. It comes before mean
normalisation (and before the words back-end cuts its windows; the keyword spotter floors each
window on its own, as it normalises each). score_pairs and score_clips, the commands for a
user's recordings, put CLIP_FLOOR_DB on every file unless told otherwise; the recipe's test sets
(the paper's protocol), the keyword spotter and the Python API have it off unless asked for.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

# The floor of score_pairs and score_clips for a user's recordings: the real wake-word clips gain
# 3.1-5.7 points of AP with it on each of six models, while the synthetic test sets move within
# noise (egs/wsj_librikws/RESULTS.md, "A level-relative floor" and "VTLP 1.0-1.3 on three seeds").
CLIP_FLOOR_DB = 50.0
# --floor-db none: no floor at all, not even the model's default.
NO_FLOOR = "none"


class FloorError(ValueError):
    pass


def check_floor_db(floor_db: float | None, name: str = "--floor-db") -> float | None:
    """None (off) or a positive number of dB; ``name`` is the option or config key to blame."""
    if floor_db is None:
        return None
    if not (isinstance(floor_db, (int, float)) and not isinstance(floor_db, bool)
            and math.isfinite(floor_db) and floor_db > 0):
        raise FloorError(f"{name} must be a positive number of dB below the loudest "
                         f"log-mel value, got {floor_db!r}")
    return float(floor_db)


def floor_features(feats: np.ndarray, floor_db: float | None) -> np.ndarray:
    """(..., T, D) log-mel features with every value below (the maximum of its (T, D) block -
    floor_db dB) raised to it: one clip, or a batch of the spotter's windows, each on its own.
    ``floor_db`` None returns them unchanged."""
    if floor_db is None:
        return feats
    feats = np.asarray(feats, dtype=np.float32)
    if feats.size == 0:
        return feats
    top = feats.max(axis=(-2, -1), keepdims=True)
    return np.maximum(feats, top - np.float32(floor_db * math.log(10) / 10))


def model_floor_db(features, floor_db: float | str | None = None,
                   default: float | None = None) -> float | None:
    """The floor to score a model with: ``floor_db`` when given (the scoring option; NO_FLOOR:
    none), else the floor the model was trained with (its features' ``floor_db``: the training
    config's floor_db, carried by final.pt), else ``default`` (the command's own: CLIP_FLOOR_DB
    for a user's recordings, None elsewhere)."""
    floor_db = check_floor_option(floor_db)
    if floor_db == NO_FLOOR:
        return None
    if floor_db is not None:
        return floor_db
    own = check_floor_db((features or {}).get("floor_db"), "the model's features floor_db")
    return own if own is not None else check_floor_db(default, "the default floor")


def check_floor_option(floor_db: float | str | None, name: str = "--floor-db") -> float | str | None:
    """A scoring option's value: as check_floor_db's, or NO_FLOOR (a training config has no
    'none': its floor is off unless given)."""
    return floor_db if floor_db == NO_FLOOR else check_floor_db(floor_db, name)


def floor_option(text: str) -> float | str:
    """--floor-db's value: a number of dB (checked later, naming the run), or 'none'."""
    if text.strip().lower() == NO_FLOOR:
        return NO_FLOOR
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of dB or 'none', got {text!r}") from None


def add_floor_args(parser, default_db: float | None = None) -> None:
    """--floor-db of the scoring commands; ``default_db``: the command's floor when neither the
    option nor the model gives one (CLIP_FLOOR_DB for a user's recordings)."""
    default = (f"Default: the floor the model was trained with (training's floor_db), else "
               f"{default_db:g} dB, as for any recording a user scores; 'none' scores without it"
               if default_db is not None else
               "Default: the floor the model was trained with (training's floor_db), none for the "
               "recipe's models (the paper's protocol); 'none': no floor, not even the model's")
    parser.add_argument("--floor-db", type=floor_option, default=None, metavar="DB",
                        help="raise every log-mel value more than DB dB below the clip's loudest "
                        "to that level before scoring (pyadml.score.floor): the scores then do "
                        "not depend on the recording level, and room sound far below the speech "
                        "is flattened. " + default)
