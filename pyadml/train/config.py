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
        # adml: the embedding model (cosine score); phonmatchnet | cmcd: the paper's baseline
        # detectors on the same encoders (pyadml.models.baselines, train.baseline_objective).
        "head": "adml",
        "head_opts": {"dim": 128, "gru_hidden": 128},
    },
    "loss": {
        "utt": "rp",
        "rp": {"w_d": 1.0, "w_a": 2.0, "w_p": 1.0, "detach_text": True, "max_angle_samples": 128,
               "normalize_embeddings": False},
        # phoneme level (paper section 3.1, Table 1): none | asyp | proxy_bd | proxy_ms | clat
        "phn": "none",
        # AdaMS (adams): learnable per-class scales, bounded: alpha in [alpha_min, alpha_max],
        # beta in [beta_min, beta_max] (log space), lam in (-lam_bound, lam_bound)
        # (pyadml.losses.phoneme._ClassScales; the loss decreases in alpha everywhere, so an
        # unbounded alpha only grows).
        "phn_opts": {"alpha": 0.01, "beta": 1.5, "lam": 0.01, "adams": None, "temperature": 0.1,
                     "alpha_min": 1.0e-3, "alpha_max": 1.0, "beta_min": 0.1, "beta_max": 50.0,
                     "lam_bound": 1.0},
        "lambda_phn": 0.1,
        "mm": False,                 # monotonic matching loss on the cross-attention
        "mm_target": "diagonal",     # diagonal | gaussian
        # modality adversarial learning (paper section 3.3)
        "mal_utt": False,
        "mal_phn": False,
        "lambda_adv": 0.1,
        # Not in the paper: weight of a phone CTC loss on the audio encoder's frames (a linear
        # layer to the phone table, <eps> as the blank; pyadml.losses.ctc). 0: off.
        "ctc": 0.0,
        # Not in the paper: weight of a speaker-adversarial term, a classifier of the training
        # voices on the audio utterance embeddings behind a GRL (pyadml.models.modality.
        # SpeakerAdversarialLoss). 0: off.
        "spk_adv": 0.0,
        # all_gather: with W > 1 processes, the batch-wise losses see the global batch (every
        # rank's embeddings, with their gradients); false: each rank's share only.
        "all_gather": False,
        # normalize: M sees unit vectors. On raw vectors the encoders fooled M by growing the
        # norm (L_adv up to 24) and training collapsed (the recipe's RESULTS.md).
        # grl_warmup: none | dann (GRL factor ramped 0 -> 1 by training progress,
        # 2/(1+exp(-gamma p))-1).
        # reduction: sum (Eq. 4: the two modalities' mean cross-entropies added) | mean (the
        # average over all rows, half of sum: the behaviour before issue 13).
        "mal_opts": {"normalize": True, "grl_warmup": "none", "grl_gamma": 10.0,
                     "reduction": "sum"},
        # keyword classification (paper section 3.2, Table 3): none | sphereface2 | aam | triplet
        "key": "none",
        "key_opts": {
            # margin_warmup_steps: 0 = full margin m from the start, else m ramps from 0 to m
            # over that many steps after margin_warmup_start steps at 0 (wespeaker's schedule;
            # margin_warmup_type linear | exp, exp = wespeaker's fast-then-slow rise).
            "sphereface2": {"s": 32.0, "m": 0.2, "lam": 0.7, "t": 3, "margin_warmup_steps": 0,
                            "margin_warmup_start": 0, "margin_warmup_type": "linear"},
            "aam": {"s": 32.0, "m": 0.2, "margin_warmup_steps": 0, "margin_warmup_start": 0,
                    "margin_warmup_type": "linear"},
            "triplet": {"margin": 0.2},
        },
        # detector heads (model.head phonmatchnet | cmcd): negatives per utterance and weights
        # (w_phn: PhonMatchNet's phoneme BCE; w_mm: CMCD's monotonic matching loss).
        # Near-miss texts (not in the paper): count texts per batch keyword, each the keyword with
        # one word replaced by one of its `pool` nearest training words in phoneme edit distance
        # (pyadml.data.text_negatives), ranked below the keyword's own text by the loss of
        # pyadml.losses.text_negatives (weight, margin, scale). count 0: off.
        "text_negatives": {"count": 0, "pool": 8, "weight": 1.0, "margin": 0.2, "scale": 10.0},
        "detector": {"mismatches": 1, "hard_negatives": 1, "w_utt": 1.0, "w_phn": 1.0,
                     "w_mm": 1.0},
    },
    # keywords x utts_per_keyword is the GLOBAL batch: with W processes each takes
    # keywords / W of its keywords (keywords must be a multiple of W); loss.all_gather lets
    # the batch-wise losses see all of it.
    # span_rows: multi-word span cuts (stage 2's word_cuts.spans), one row per span
    # (pyadml.data.span_sampler); 0: spans in the training cuts are not used. span_every: 0
    # adds span_rows spans to every K x M batch; E >= 1 gives a batch of span_rows spans alone
    # after every E keyword batches (only those batches are phrase-long: cheaper).
    # context_growth: seconds by which a row with stage 3's added context may exceed the
    # batch's longest row without it; the rest of its context is cropped (KeywordDataset).
    # 0: context only fills the padding the batch has anyway (no extra compute); 0.5 trained
    # 60% longer and scored real clips cut by the VAD worse (RESULTS.md, "More of stage 3's
    # context").
    # neighbours: B >= 2 fills batches with runs of B keywords that are phonetic neighbours (a
    # keyword and B - 1 of its neighbour_pool nearest training words in phoneme edit distance,
    # pyadml.data.sampler); 0: keywords drawn at random.
    # homophones: keep (each spelling its own keyword class, as in the paper) | merge (words
    # with the same phone ids form one class: pyadml.data.cuts.homophone_classes).
    "batch": {"keywords": 250, "utts_per_keyword": 2, "few": "skip", "span_rows": 0,
              "span_every": 0, "context_growth": 0.0, "neighbours": 0, "neighbour_pool": 8,
              "homophones": "keep"},
    "optim": {"lr": 1.0e-4, "weight_decay": 1.0e-5, "lr_step_epochs": 20, "lr_gamma": 0.5,
              # grad_clip: max gradient norm, null = none (the paper clips nothing);
              # grad_clip_scope: encoders (audio./text. parameters) | all (every parameter,
              # AdaMS scales included: the behaviour before issue 13, with grad_clip 5.0).
              "grad_clip": None, "grad_clip_scope": "encoders",
              # adams_lr: the AdaMS scales' own learning rate (null: lr); they are never clipped
              # under scope encoders and never weight-decayed.
              "adams_lr": None},
    # The recipe's stage 6 names these (steps/train.sh ... data.train=...); train, lang and
    # fbank_config are required, dev and dev_trials optional (no dev AP without them).
    "data": {
        "train": "",          # training cuts with features (lhotse .jsonl.gz)
        "dev": "",            # dev cuts with features
        "dev_trials": "",     # dev trial list (words protocol)
        "lang": "",           # stage 2's lang directory; copied to exp/<tag>/lang
        "fbank_config": "",   # the features' fbank yaml; copied to exp/<tag>/fbank.yaml
    },
    # SpecAugment masking of the training features (pyadml.data.dataset.spec_augment): with
    # probability prob a row gets freq_masks bands of up to freq_width bins and time_masks spans
    # of up to time_width frames (at most a fifth of the row) set to 0. prob 0: off.
    "spec_augment": {"prob": 0.0, "freq_masks": 2, "freq_width": 8, "time_masks": 2,
                     "time_width": 10},
    # Vocal tract length perturbation of the training features (pyadml.data.dataset.vtlp): with
    # probability prob a row's mel axis is warped by alpha ~ U[low, high]; low_freq and
    # high_freq are the fbank's mel range (lhotse's defaults). prob 0: off.
    "vtlp": {"prob": 0.0, "low": 0.9, "high": 1.1, "low_freq": 20.0, "high_freq": 7600.0},
    # Speaking-rate perturbation of the training words (pyadml.data.dataset.tempo): with
    # probability prob a row's word (not its added context) is slowed to a rate ~ U[low, high]
    # (<= 1), never past the batch's longest word. prob 0: off.
    "tempo": {"prob": 0.0, "low": 0.6, "high": 1.0},
    # The level-relative floor on the training features (pyadml.score.floor), in dB below each
    # cut's loudest log-mel value, before mean normalisation; the dev check and stage 7 apply it
    # too, and final.pt carries it for scoring. null: off.
    "floor_db": None,
    # Moving averages of the weights (pyadml.train.ema), one per decay: a shadow of the run
    # (training is unchanged), each scored on the dev trials after every epoch; stage 7 keeps
    # whichever of them and the last checkpoints' averages scores best there. []: none.
    "ema": {"decays": []},
    "num_workers": 1,
    "pad_frames_to": 16,     # round padded batch lengths up to a multiple (masked; fewer shapes)
    "threads": 0,            # torch threads per process; 0: cores / processes
    "log_interval": 20,      # steps between progress lines
    "checkpoint_every_steps": 0,  # 0: at the end of each epoch only
    "keep_checkpoints": 0,   # 0: keep all
    "average": 5,            # stage 7 averages the last N epoch checkpoints
    # Autocast of the encoders (every loss stays float32): auto = bf16/fp16 on GPU, off on
    # CPU; bf16 = bf16 on GPU and CPU (AVX512-BF16); fp16 = GPU only; none (or false) = off.
    "amp": "auto",
    # compile: torch.compile the encoders (experimental; see pyadml/bin/benchmark.py).
    "compile": False,
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
    if base is not None and not isinstance(base, str):
        raise ValueError(f"{path}: base must name one yaml file (relative to {path.parent}), "
                         f"got {base!r}")
    if base and not (path.parent / base).is_file():
        raise FileNotFoundError(f"{path}: its base file {path.parent / base} does not exist "
                                f"(base: {base!r} is relative to {path.parent})")
    cfg = _load_layers(path.parent / base, seen + (path.resolve(),)) if base else DEFAULTS
    try:
        return _merge(cfg, user)
    except (KeyError, TypeError) as e:
        raise type(e)(f"{path}: {e.args[0]}") from None


# Keys whose value may also be of another type than their default's.
_ALSO_ALLOWED = {"amp": (bool,)}
# Keys whose default is null (None), with the type of any other value. Without it a typo went
# through: loss.phn_opts.adams=flase is the string 'flase', which turned learnable AdaMS
# scales on. (optim.grad_clip and floor_db have checks of their own, naming their range.)
_NULLABLE = {"loss.phn_opts.adams": bool, "optim.adams_lr": float}


# Integer keys below 1 of which training would run nothing: epochs=0 wrote no checkpoint, and
# stage 7 then failed without saying why.
_AT_LEAST_ONE = {"epochs"}


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
            want = _NULLABLE.get(path)
            if want is None or value is None:
                continue
            if want is float and isinstance(value, str):
                try:
                    out[key] = value = float(value)  # "1e-4", which yaml reads as a string
                except ValueError:
                    pass
            ok = (isinstance(value, bool) if want is bool else
                  isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                raise TypeError(f"config key {path}: expected {_type_name(want)} or null (the "
                                f"default), got {value!r}")
            if want is float:
                out[key] = float(value)
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
        if want is list and default and all(type(d) is int for d in default):
            # model.audio.kernel_sizes=[3, x, 3] or [3, 3.5, 3]: the model's int() said
            # "invalid literal" without the key, or truncated 3.5 to 3 silently.
            bad = [v for v in value if type(v) is not int]
            if bad:
                raise TypeError(f"config key {path}: expected a list of integers (like the "
                                f"default {default!r}), got {value!r} ({bad[0]!r} is not one)")
        if path in _AT_LEAST_ONE and value < 1:
            raise ValueError(f"config key {path}: expected 1 or more, got {value!r}")
    return out


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> dict:
    cfg = DEFAULTS if path is None else _load_layers(Path(path))
    cfg = apply_overrides(cfg, list(overrides))
    try:
        return check_types(cfg)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{path}: {e}" if path else str(e)) from None


def save_config(cfg: dict, path: str | os.PathLike) -> None:
    write_text_atomic(path, yaml.safe_dump(cfg, sort_keys=False))


# Keys a resume may change without asking: they do not change what is trained, only how long,
# how it is logged, or on what.
RESUME_FREE = {"epochs", "average", "log_interval", "num_workers", "threads", "keep_checkpoints",
               "checkpoint_every_steps", "device", "compile", "ema.decays"}


def flatten(cfg: dict, where: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{where}{k}."))
        else:
            out[f"{where}{k}"] = v
    return out


# Keys added after runs existed, with the value that keeps the behaviour from before the key
# (ANY: the key has no effect on such a run). A checkpoint whose saved config lacks one of them
# resumes unchanged when the new config holds that value; MAL's reduction (mean before Eq. 4's
# sum became the default) and the clipping scope are the keys where the new default differs.
ANY = object()
LEGACY = {"model.head": "adml", "model.head_opts.*": ANY, "loss.detector.*": ANY,
          "loss.all_gather": False, "loss.mal_opts.reduction": "mean",
          "loss.key_opts.*.margin_warmup_start": 0, "loss.key_opts.*.margin_warmup_type": "linear",
          "loss.key_opts.aam.margin_warmup_steps": 0,
          # Older AdaMS scales load converted into the bounded form (pyadml.losses.phoneme).
          "loss.phn_opts.alpha_min": ANY, "loss.phn_opts.alpha_max": ANY,
          "loss.phn_opts.beta_min": ANY, "loss.phn_opts.beta_max": ANY,
          "loss.phn_opts.lam_bound": ANY, "optim.grad_clip_scope": "all", "optim.adams_lr": None,
          "batch.span_rows": 0, "batch.span_every": 0, "batch.context_growth": 0.0,
          "batch.neighbours": 0, "batch.neighbour_pool": ANY, "batch.homophones": "keep",
          "spec_augment.prob": 0.0, "spec_augment.*": ANY,
          "loss.text_negatives.count": 0, "loss.text_negatives.*": ANY,
          "vtlp.prob": 0.0, "vtlp.*": ANY, "tempo.prob": 0.0, "tempo.*": ANY,
          "floor_db": None, "loss.ctc": 0.0}


def _legacy(key: str):
    """(True, value) when ``key`` has a LEGACY entry, else (False, None)."""
    import fnmatch

    for pattern, value in LEGACY.items():
        if fnmatch.fnmatchcase(key, pattern):
            return True, value
    return False, None


def config_changes(old: dict, new: dict) -> dict[str, tuple]:
    """Dotted key -> (old, new) for every training-relevant value that differs. A key the old
    config lacks is no change when the new value is its LEGACY one."""
    a, b = flatten(old), flatten(new)
    out = {}
    for k in sorted(a.keys() | b.keys()):
        if k in RESUME_FREE or a.get(k) == b.get(k):
            continue
        if a and k not in a and k in b:
            known, legacy = _legacy(k)
            if known and (legacy is ANY or b[k] == legacy):
                continue
        out[k] = (a.get(k), b.get(k))
    return out
