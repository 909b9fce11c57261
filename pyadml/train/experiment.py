"""The experiment directory as the contract after training: the data a run names must exist,
exp/<tag> receives copies of the lang directory and the feature options that export and scoring
read, and a training error is reported in one line where steps/train.sh finds it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyadml.fileio import write_text_atomic

LANG_FILES = ("phones.txt", "lexicon.txt", "g2p.yaml", "keywords.txt")


class ConfigChanged(ValueError):
    """A resume whose config differs from the checkpoint's in a training-relevant key."""


def report_training_error(e: BaseException, exp_dir: str | os.PathLike) -> int:
    """One line on stderr and in ``<exp>/log/train.error`` (steps/train.sh shows it after
    torchrun's own report); a traceback only for errors that are not the user's input."""
    import traceback

    from pyadml.checksum import CorruptFile
    from pyadml.fileio import DiskFull
    from pyadml.train.distributed import LockHeld

    expected = (ValueError, KeyError, TypeError, FileNotFoundError, LockHeld, CorruptFile,
                DiskFull)
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    line = f"{msg}" if isinstance(e, expected) else f"{type(e).__name__}: {msg}"
    if not isinstance(e, expected):
        traceback.print_exc()
    rank = os.environ.get("RANK", "0")
    print(f"train: error (rank {rank}): {line}", file=sys.stderr)
    try:
        (Path(exp_dir) / "log").mkdir(parents=True, exist_ok=True)
        with open(Path(exp_dir) / "log" / "train.error", "a") as f:
            f.write(f"rank {rank}: {line}\n")
    except OSError:
        pass
    return 1


def check_data_config(d: dict) -> dict:
    """The files that ``data.*`` names exist: a wrong set name fails here, naming the key and
    the file it expected, not after an epoch of training."""
    for key, what in (("train", "training cuts with features"), ("lang", "lang directory"),
                      ("fbank_config", "fbank options of the features")):
        if not d.get(key):
            raise ValueError(f"config key data.{key} is not set: give the {what} "
                             f"(steps/train.sh ... data.{key}=PATH; run.sh's stage 6 does)")
    expected = {"train": d["train"], "fbank_config": d["fbank_config"],
                **{f"lang ({n})": str(Path(d["lang"]) / n) for n in LANG_FILES}}
    if d.get("dev") or d.get("dev_trials"):
        expected.update(dev=d.get("dev") or "", dev_trials=d.get("dev_trials") or "")
    for key, path in expected.items():
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"data.{key}: expected the file {path or '(not set)'}")
    return d


def check_feature_options(cuts, key: str, path: str, fbank_config: str, input_dim: int) -> float:
    """The cuts of ``data.<key>`` (file ``path``) hold features as the fbank options of
    ``fbank_config`` make them (mel bins, frame shift, sampling rate), and as many mel bins as
    the audio encoder takes (``model.audio.input_dim``). The experiment hands those options to
    every later stage (exp/<tag>/fbank.yaml, final.pt), so features made with others would
    train a model that is then scored on features it never saw. Returns the frame shift."""
    from pyadml.data.features import fbank_extractor, fbank_options

    opts = yaml_mapping(fbank_config)
    try:
        fbank = fbank_extractor(fbank_options(opts)).config
    except (TypeError, ValueError) as e:
        raise ValueError(f"data.fbank_config: {fbank_config}: {e}") from None
    want = {"mel bins": int(fbank.num_filters),  # lhotse moves num_mel_bins there
            "frame shift": float(fbank.frame_shift),
            "sampling rate": int(fbank.sampling_rate)}
    names = {"mel bins": "num_mel_bins", "frame shift": "frame_shift",
             "sampling rate": "sampling_rate"}
    for cut in cuts:
        f = getattr(cut, "features", None)
        if f is None:
            continue  # KeywordDataset names a cut without features when it loads it
        got = {"mel bins": int(f.num_features), "frame shift": float(f.frame_shift),
               "sampling rate": int(f.sampling_rate)}
        bad = [k for k in want if abs(got[k] - want[k]) > 1e-6]
        if bad:
            found = ", ".join(f"{k} {got[k]:g}" for k in bad)
            said = ", ".join(f"{names[k]}: {want[k]:g}" for k in bad)
            raise ValueError(
                f"data.{key}: the features of {path} (cut {cut.id}: {found}) were not made with "
                f"the fbank options of data.fbank_config={fbank_config} ({said}); name the "
                f"fbank yaml that stage 4 computed them with (the model carries it to scoring)")
    if want["mel bins"] != int(input_dim):
        raise ValueError(
            f"model.audio.input_dim={input_dim}, but the features of data.{key} ({path}) and "
            f"data.fbank_config={fbank_config} have {want['mel bins']} mel bins; set "
            f"model.audio.input_dim={want['mel bins']}")
    return want["frame shift"]


def check_vtlp_range(vtlp: dict, fbank_config: str) -> None:
    """VTLP (``vtlp.prob`` > 0) warps the mel bins between ``vtlp.low_freq`` and
    ``vtlp.high_freq``, which must be the mel range the features were made with: with
    ``high_freq: 3800`` for 8 kHz speech and the default 7600, every bin would be read from the
    wrong frequency. ValueError naming both ranges and the values to set."""
    from pyadml.data.features import fbank_extractor, fbank_options, mel_range

    if not vtlp.get("prob"):
        return
    fb = fbank_extractor(fbank_options(yaml_mapping(fbank_config))).config
    low, high = mel_range({"low_freq": fb.low_freq, "high_freq": fb.high_freq,
                           "sampling_rate": fb.sampling_rate})
    if abs(vtlp["low_freq"] - low) > 1e-3 or abs(vtlp["high_freq"] - high) > 1e-3:
        raise ValueError(
            f"vtlp.low_freq / vtlp.high_freq are {vtlp['low_freq']:g} / {vtlp['high_freq']:g} Hz, "
            f"but the features of data.fbank_config={fbank_config} span {low:g}-{high:g} Hz; "
            f"set vtlp.low_freq={low:g} vtlp.high_freq={high:g}")


def yaml_mapping(path: str | os.PathLike) -> dict:
    """A yaml file that holds a mapping (or nothing), else ValueError naming it."""
    import yaml

    value = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a mapping of fbank options")
    return value


def copy_experiment_inputs(d: dict, exp: Path, floor_db: float | None = None) -> None:
    """exp/<tag> becomes the contract after training: the lang directory and the feature
    options (with mean normalisation, which the training batches apply, and the training's
    level-relative floor ``floor_db`` when it has one) are copied into it, and export and
    scoring read only those copies."""
    import yaml

    for name in LANG_FILES:
        write_text_atomic(exp / "lang" / name,
                          (Path(d["lang"]) / name).read_text(encoding="utf-8"))
    features = yaml_mapping(d["fbank_config"])
    features["mean_norm"] = True  # KeywordDataset mean-normalises every training utterance
    if floor_db is not None:  # and floors it first: scoring must too (pyadml.score.floor)
        features["floor_db"] = float(floor_db)
    write_text_atomic(exp / "fbank.yaml", yaml.safe_dump(features, sort_keys=False))
