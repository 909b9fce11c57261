"""Training configuration: yaml on top of defaults, dotted overrides, unknown keys are errors.

The resolved config is saved into exp/<tag>/config.yaml and later stages read that copy.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import dataclasses

import yaml

from pyadml.fileio import write_text_atomic
from pyadml.models import EcapaConfig, TextEncoderConfig


def _fields(cls, skip=()) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


DEFAULTS: dict[str, Any] = {
    "seed": 1,
    "epochs": 100,
    "model": {
        "audio": _fields(EcapaConfig),
        "text": _fields(TextEncoderConfig, skip=("vocab_size",)),
    },
    "loss": {
        "utt": "rp",
        "rp": {"w_d": 1.0, "w_a": 2.0, "w_p": 1.0, "detach_text": True, "max_angle_samples": 128,
               "normalize_embeddings": False},
        # phoneme level (paper section 3.1, Table 1): none | asyp | proxy_bd | proxy_ms | clat
        "phn": "none",
        "phn_opts": {"alpha": 0.01, "beta": 1.5, "lam": 0.01, "adams": None, "temperature": 0.1},
        "lambda_phn": 0.1,
        "mm": False,                 # monotonic matching loss on the cross-attention
        "mm_target": "diagonal",     # diagonal | gaussian
        # modality adversarial learning (paper section 3.3)
        "mal_utt": False,
        "mal_phn": False,
        "lambda_adv": 0.1,
        # normalize: M sees unit vectors. On raw vectors the encoders fooled M by growing the
        # norm (L_adv up to 24) and training collapsed (the recipe's RESULTS.md).
        # grl_warmup: none | dann (GRL factor ramped 0 -> 1 by training progress,
        # 2/(1+exp(-gamma p))-1).
        "mal_opts": {"normalize": True, "grl_warmup": "none", "grl_gamma": 10.0},
        # keyword classification (paper section 3.2, Table 3): none | sphereface2 | aam | triplet
        "key": "none",
        "key_opts": {
            "sphereface2": {"s": 32.0, "m": 0.2, "lam": 0.7, "t": 3, "margin_warmup_steps": 0},
            "aam": {"s": 32.0, "m": 0.2},
            "triplet": {"margin": 0.2},
        },
    },
    "batch": {"keywords": 250, "utts_per_keyword": 2, "few": "skip"},
    "optim": {"lr": 1.0e-4, "weight_decay": 1.0e-5, "lr_step_epochs": 20, "lr_gamma": 0.5,
              "grad_clip": 5.0},
    # The recipe's stage 6 names these (steps/train.sh ... data.train=...); train, lang and
    # fbank_config are required, dev and dev_trials optional (no dev AP without them).
    "data": {
        "train": "",          # training cuts with features (lhotse .jsonl.gz)
        "dev": "",            # dev cuts with features
        "dev_trials": "",     # dev trial list (words protocol)
        "lang": "",           # stage 2's lang directory; copied to exp/<tag>/lang
        "fbank_config": "",   # the features' fbank yaml; copied to exp/<tag>/fbank.yaml
    },
    "num_workers": 1,
    "pad_frames_to": 16,     # round padded batch lengths up to a multiple (masked; fewer shapes)
    "threads": 0,            # torch threads per process; 0: cores / processes
    "log_interval": 20,      # steps between progress lines
    "checkpoint_every_steps": 0,  # 0: at the end of each epoch only
    "keep_checkpoints": 0,   # 0: keep all
    "average": 5,            # stage 7 averages the last N epoch checkpoints
    "amp": "auto",           # auto: bf16/fp16 autocast on GPU, off on CPU
    "device": "auto",
}


def _merge(base: dict, update: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        path = f"{where}{key}"
        if key not in out:
            raise KeyError(f"unknown config key {path!r}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise TypeError(f"config key {path!r} must be a mapping")
            out[key] = _merge(out[key], value, path + ".")
        else:
            out[key] = value
    return out


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """``a.b=value`` items; the key must exist, the value is parsed as yaml."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key=value")
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"unknown config key {'.'.join(parts[: i + 1])!r} in override {item!r}")
            if i == len(parts) - 1:
                if isinstance(node[part], dict):
                    raise TypeError(f"override {item!r} names a section, not a value")
                node[part] = _parse_value(value)
            else:
                node = node[part]
    return cfg


def _load_layers(path: Path, seen: tuple = ()) -> dict:
    """A config file's values on top of its ``base:`` file (relative to it), recursively."""
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    if path.resolve() in seen:
        raise ValueError(f"{path}: 'base' files form a cycle")
    user = yaml.safe_load(path.read_text()) or {}
    if not isinstance(user, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    base = user.pop("base", None)
    cfg = _load_layers(path.parent / base, seen + (path.resolve(),)) if base else DEFAULTS
    try:
        return _merge(cfg, user)
    except (KeyError, TypeError) as e:
        raise type(e)(f"{path}: {e.args[0]}") from None


# Keys whose value may also be of another type than their default's.
_ALSO_ALLOWED = {"amp": (bool,)}


def _type_name(t) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list"}.get(t, t.__name__)


def check_types(cfg: dict, defaults: dict = DEFAULTS, where: str = "") -> dict:
    """Every value has its default's type (an int is a number; "1e-4", which yaml reads as a
    string, is converted to a float). TypeError names the key and the value."""
    out = {}
    for key, value in cfg.items():
        path = f"{where}{key}"
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if isinstance(default, dict) and isinstance(value, dict):
            out[key] = check_types(value, default, path + ".")
            continue
        out[key] = value
        if default is None:
            continue
        if default == "" and value is None:  # "key=" on the command line: not set
            out[key] = ""
            continue
        want = type(default)
        if isinstance(value, _ALSO_ALLOWED.get(key, ())):
            continue
        if want is float:
            if isinstance(value, str):
                try:
                    out[key] = value = float(value)
                except ValueError:
                    pass
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                out[key] = float(value)
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif want is dict:
            ok = isinstance(value, dict)
        else:
            ok = isinstance(value, want)
        if not ok:
            raise TypeError(f"config key {path}: expected {_type_name(want)} (like the default "
                            f"{default!r}), got {value!r}")
    return out


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> dict:
    cfg = DEFAULTS if path is None else _load_layers(Path(path))
    cfg = apply_overrides(cfg, list(overrides))
    try:
        return check_types(cfg)
    except TypeError as e:
        raise TypeError(f"{path}: {e}" if path else str(e)) from None


def save_config(cfg: dict, path: str | os.PathLike) -> None:
    write_text_atomic(path, yaml.safe_dump(cfg, sort_keys=False))


# Keys a resume may change without asking: they do not change what is trained, only how long,
# how it is logged, or on what.
RESUME_FREE = {"epochs", "average", "log_interval", "num_workers", "threads", "keep_checkpoints",
               "checkpoint_every_steps", "device"}


def flatten(cfg: dict, where: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{where}{k}."))
        else:
            out[f"{where}{k}"] = v
    return out


def config_changes(old: dict, new: dict) -> dict[str, tuple]:
    """Dotted key -> (old, new) for every training-relevant value that differs."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if k not in RESUME_FREE and a.get(k) != b.get(k)}
