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
window on its own, as it normalises each), and is off unless asked for.
"""

from __future__ import annotations

import math

import numpy as np


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


def model_floor_db(features, floor_db: float | None = None) -> float | None:
    """The floor to score a model with: ``floor_db`` when given (the scoring option), else the
    floor the model was trained with (its features' ``floor_db``: the training config's
    floor_db, carried by final.pt), else None."""
    if floor_db is not None:
        return check_floor_db(floor_db)
    return check_floor_db((features or {}).get("floor_db"), "the model's features floor_db")


def add_floor_args(parser) -> None:
    """--floor-db of the scoring commands."""
    parser.add_argument("--floor-db", type=float, default=None, metavar="DB",
                        help="raise every log-mel value more than DB dB below the clip's loudest "
                        "to that level before scoring (pyadml.score.floor; 50 in stage 8): the "
                        "scores then do not depend on the recording level, and room sound "
                        "far below the speech is flattened. Default: the floor the model was "
                        "trained with (training's floor_db), none for the recipe's models "
                        "(the paper's protocol)")
