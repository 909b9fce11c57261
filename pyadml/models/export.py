"""The self-contained model file (``final.pt``) and checkpoint averaging (stage 7).

``final.pt`` is a plain dict that ``torch.load(weights_only=True)`` reads, so loading a model
file never runs pickled code:

    format        "pyadml-kws/2"
    model         encoder state_dict: "audio.*" (ECAPA) and "text.*" (BiLSTM) only
    audio_config  EcapaConfig fields
    text_config   TextEncoderConfig fields, vocab_size included
    phones        the phone symbols without <eps>; PhoneTable(phones) gives the training ids
    lexicon       word -> phones of the lang directory the model was trained with
    checksum      sha256 of all the above (pyadml.checksum), verified on load
    g2p           G2P options: {"strip_stress": bool, "word_boundary": str | None}
    features      fbank options (pyadml.data.features.fbank_extractor) + {"mean_norm": bool}
    meta          provenance: checkpoints averaged, epochs, the training config, ...
    scorer        how pairs are scored: "cosine" (ADML, the embeddings' cosine) or a detector
                  head ("phonmatchnet", "cmcd": its sigmoid probability; its weights are the
                  "head.*" entries of model). Files without it are cosine models.
    head_config   the detector head's options (pyadml.models.baselines), {} for cosine
    cohort        the training keywords, the text cohort of score normalisation
                  (pyadml.score.norm); files without it cannot be T-normed

Phones, lexicon and G2P options make the training tokenizer (pyadml.text.Tokenizer), so users'
keywords are pronounced as the training keywords were. Files of format 1 (no lexicon) still
load; their keywords go through the G2P alone, as they did when they were written.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

from pyadml.checksum import seal, verify
from pyadml.fileio import torch_save_atomic
from pyadml.train.checkpoints import load_checkpoint
from pyadml.train.ema import shadow_states
from pyadml.text import PhoneTable, Tokenizer

from .ecapa import EcapaConfig
from .kws import KwsModel
from .text_encoder import TextEncoderConfig

FORMAT = "pyadml-kws/2"
READABLE_FORMATS = ("pyadml-kws/1", FORMAT)
ENCODER_PREFIXES = ("audio.", "text.")
HEAD_PREFIX = "head."
_KEYS = ("format", "model", "audio_config", "text_config", "phones", "g2p", "features", "meta")


def _unwrap(key: str) -> str:
    # DDP / torch.compile wrappers prefix every key; the encoders' names are what matter.
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the checkpoints' ``"model"`` state_dicts. Floating tensors are
    averaged in float64 and cast back; integer buffers (BN num_batches_tracked) keep the last
    checkpoint's value."""
    # A generator: one checkpoint in memory at a time.
    return _average_states((path, load_checkpoint(path)["model"]) for path in paths)


def _average_states(states: Iterable[tuple]) -> dict[str, torch.Tensor]:
    """average_checkpoints of (path, model state_dict) pairs, consumed once in order."""
    sums: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    paths: list = []
    for n, (path, model_state) in enumerate(states):
        paths.append(path)
        state = {_unwrap(k): v for k, v in model_state.items()}
        if n and state.keys() != last.keys():
            diff = sorted(state.keys() ^ last.keys())
            raise ValueError(f"{path}: parameters differ from {paths[0]}, e.g. {diff[:3]}")
        for k, v in state.items():
            if n and v.shape != last[k].shape:
                raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, "
                                 f"{paths[0]} has {tuple(last[k].shape)}")
            if v.is_floating_point():
                sums[k] = v.double() if n == 0 else sums[k] + v.double()
        last = state
    if not paths:
        raise ValueError("average_checkpoints: no checkpoints given")
    return {k: (sums[k] / len(paths)).to(v.dtype) if k in sums else v.clone()
            for k, v in last.items()}


def _scoring_model(state_dict, audio_cfg: EcapaConfig, text_cfg: TextEncoderConfig, scorer: str,
                   head_config: dict) -> tuple[dict[str, torch.Tensor], KwsModel]:
    """The weights a model file keeps (encoders, and a detector's head) and the eval-mode
    model they make; loading into a fresh model checks that nothing is missing or left over."""
    keep = ENCODER_PREFIXES + ((HEAD_PREFIX,) if scorer != "cosine" else ())
    weights = {}
    for k, v in state_dict.items():
        k = _unwrap(k)
        if k.startswith(keep):
            weights[k] = v.detach().to("cpu").clone()
    model = KwsModel.from_configs(audio_cfg, text_cfg, scorer, head_config)
    model.load_state_dict(weights, strict=True)
    return weights, model.eval()


def _dev_set(config: dict, select: str, cfg_path: Path):
    """(cuts, trials) of the training config's dev set, or None when ``select`` is "auto" and
    the config names none or its files are not there (export outside the recipe directory)."""
    d = config.get("data") or {}
    dev, trials = d.get("dev"), d.get("dev_trials")
    missing = [f"data.{k}={v!r}" for k, v in (("dev", dev), ("dev_trials", trials))
               if not v or not Path(v).is_file()]
    if missing:
        if select == "dev":
            raise FileNotFoundError(f"{cfg_path}: choosing the average by dev AP needs the dev set; "
                                    f"not found (relative to {Path.cwd()}): {', '.join(missing)}")
        return None
    from lhotse import CutSet

    from pyadml.data.trials import read_trials

    return list(CutSet.from_file(dev)), read_trials(trials)


def _plain(value, what: str, lenient: bool = False):
    """JSON-shaped copy (tuples become lists): what weights_only loading accepts. ``lenient``
    writes other objects (paths, ...) as their str()."""
    try:
        return json.loads(json.dumps(value, default=str if lenient else None))
    except (TypeError, ValueError) as e:
        raise TypeError(f"export_model: {what} must be JSON-serialisable: {e}") from None


def export_model(
    state_dict: dict[str, torch.Tensor],
    out_path: str | os.PathLike,
    *,
    audio_config: dict,
    text_config: dict,
    tokenizer: Tokenizer,
    features: dict,
    meta: dict | None = None,
    scorer: str = "cosine",
    head_config: dict | None = None,
    cohort: Sequence[str] = (),
) -> dict:
    """Write ``final.pt`` atomically with the encoder weights only (classifier, modality heads,
    AdaMS parameters and anything else outside ``audio.``/``text.`` are dropped); returns it."""
    table = tokenizer.phone_table
    audio_cfg = EcapaConfig(**audio_config)
    text_kwargs = dict(text_config)
    vocab = text_kwargs.setdefault("vocab_size", len(table))
    if vocab != len(table):
        raise ValueError(f"text_config vocab_size={vocab} but the phone table has {len(table)} "
                         f"symbols (with <eps>)")
    text_cfg = TextEncoderConfig(**text_kwargs)
    if "mean_norm" not in features:
        raise ValueError("export_model: features must say whether to mean-normalise (mean_norm)")

    from .baselines import SCORERS

    if scorer not in SCORERS:
        raise ValueError(f"export_model: unknown scorer {scorer!r}; expected one of {SCORERS}")
    head_config = _plain(dict(head_config or {}), "head_config") if scorer != "cosine" else {}
    weights, _ = _scoring_model(state_dict, audio_cfg, text_cfg, scorer, head_config)

    blob = {
        "format": FORMAT,
        "model": weights,
        "audio_config": _plain(audio_cfg.to_dict(), "audio_config"),
        "text_config": _plain(text_cfg.to_dict(), "text_config"),
        **_plain(tokenizer.to_dict(), "tokenizer"),
        "features": _plain(dict(features), "features"),
        "meta": _plain(dict(meta or {}), "meta", lenient=True),
        "scorer": scorer,
        "head_config": head_config,
        "cohort": [str(w) for w in cohort],
    }
    blob = seal(blob)
    torch_save_atomic(blob, out_path)
    return blob


@dataclass
class LoadedModel:
    model: KwsModel
    tokenizer: Tokenizer
    features: dict
    meta: dict = field(default_factory=dict)
    audio_config: dict = field(default_factory=dict)
    text_config: dict = field(default_factory=dict)
    cohort: list = field(default_factory=list)

    @property
    def scorer(self) -> str:
        return self.model.scorer

    @property
    def phone_table(self) -> PhoneTable:
        return self.tokenizer.phone_table

    def phone_ids(self, text: str) -> list[int]:
        """Phone ids of a keyword as the text encoder saw them in training."""
        return self.tokenizer.encode(text)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Read ``final.pt``; the model comes back in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, a training checkpoint with custom objects, ...
        raise ValueError(f"{path}: not a pyadml model file (torch.load with weights_only=True "
                         f"failed: {type(e).__name__})") from None
    if not isinstance(blob, dict):
        raise ValueError(f"{path}: not a pyadml model file (expected a dict)")
    if blob.get("format") not in READABLE_FORMATS:
        hint = " (a training checkpoint? export it with pyadml.bin.export_model)" if "model" in blob else ""
        raise ValueError(f"{path}: not a pyadml model file: format is {blob.get('format')!r}, "
                         f"expected one of {READABLE_FORMATS}{hint}")
    missing = [k for k in _KEYS if k not in blob]
    if missing:
        raise ValueError(f"{path}: pyadml model file lacks {missing}")
    # Format 1 files predate checksums; every later one must carry a matching one.
    verify(blob, path, required=blob["format"] != "pyadml-kws/1")
    try:
        tokenizer = Tokenizer.from_dict(blob)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: bad phones, lexicon or g2p options: {e}") from None
    table = tokenizer.phone_table
    text_cfg = TextEncoderConfig(**blob["text_config"])
    if text_cfg.vocab_size != len(table):
        raise ValueError(f"{path}: text vocab_size {text_cfg.vocab_size} != {len(table)} phones")
    from .baselines import SCORERS

    scorer = blob.get("scorer", "cosine")  # files written before detectors are cosine models
    if scorer not in SCORERS:
        raise ValueError(f"{path}: unknown scorer {scorer!r}; this pyadml knows {SCORERS}")
    model = KwsModel.from_configs(EcapaConfig(**blob["audio_config"]), text_cfg, scorer,
                                  blob.get("head_config") or {})
    model.load_state_dict(blob["model"], strict=True)
    model.to(device).eval()
    return LoadedModel(
        model=model, tokenizer=tokenizer, features=dict(blob["features"]),
        meta=dict(blob["meta"]), audio_config=dict(blob["audio_config"]),
        text_config=dict(blob["text_config"]), cohort=list(blob.get("cohort") or []),
    )


def epoch_checkpoints(exp_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``checkpoints/epoch-<n>.pt`` sorted by n as a number (epoch-10 after epoch-9)."""
    found = []
    for p in (Path(exp_dir) / "checkpoints").glob("epoch-*.pt"):
        m = re.fullmatch(r"epoch-(\d+)\.pt", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


SELECT_MODES = ("auto", "dev", "last")


def _training_keywords(lang_dir: Path) -> list[str]:
    """The keyword classes of the lang directory (keywords.txt), [] where it has none."""
    from pyadml.data.dataset import read_keyword_ids

    path = lang_dir / "keywords.txt"
    return list(read_keyword_ids(path)) if path.is_file() else []


def export_experiment(exp_dir: str | os.PathLike, avg: int | None = None,
                      out: str | os.PathLike | None = None, select: str = "auto",
                      weights: str | None = None) -> tuple[dict, str]:
    """Stage 7: average the last epoch checkpoints of ``exp_dir`` into ``final.pt``, with the
    tokenizer of ``exp_dir/lang`` and the feature options of ``exp_dir/fbank.yaml`` that stage
    6 copied there. Returns the blob and a one-line summary; ValueError/FileNotFoundError name
    what is missing.

    How many: ``avg`` (default: the config's ``average``) is the most. ``select="last"`` takes
    exactly the last ``avg``. ``"dev"`` scores the averages of the last 1, 2, ..., ``avg`` on
    the training config's dev trials and keeps the best (a tie keeps the larger average): at
    a high learning rate an earlier epoch can be far worse than the last (dev AP 0.45 before
    0.97), and averaging it in costs the test sets up to 15 points of AP; the moving averages of
    the weights that the last checkpoint holds (training's ``ema.decays``) are candidates too.
    ``"auto"``: "dev" where the dev set is there, else "last". ``weights`` (``ema<decay>``, as
    named in the training log) exports that moving average of the last checkpoint, unscored."""
    import warnings

    import yaml

    exp_dir = Path(exp_dir)
    ckpts = epoch_checkpoints(exp_dir)
    if not ckpts:
        raise FileNotFoundError(f"no checkpoints/epoch-*.pt under {exp_dir}")
    cfg_path = exp_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: missing (stage 6 writes the resolved training config)")
    config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    avg = avg if avg is not None else int(config.get("average", 5))
    if avg < 1:
        raise ValueError(f"cannot average {avg} checkpoints")
    if len(ckpts) < avg:
        warnings.warn(f"asked to average {avg} but only {len(ckpts)} epoch checkpoint(s) exist; "
                      f"averaging those")
    if select not in SELECT_MODES:
        raise ValueError(f"select must be one of {SELECT_MODES}, got {select!r}")
    model_cfg = config.get("model") or {}
    if "audio" not in model_cfg or "text" not in model_cfg:
        raise ValueError(f"{cfg_path} lacks model.audio / model.text")
    tokenizer = Tokenizer.from_lang_dir(exp_dir / "lang")
    feat_path = exp_dir / "fbank.yaml"
    if not feat_path.is_file():
        raise FileNotFoundError(f"{feat_path}: missing (stage 6 copies the fbank options there)")
    features = yaml.safe_load(feat_path.read_text(encoding="utf-8")) or {}
    text_cfg = {k: v for k, v in model_cfg["text"].items() if k != "vocab_size"}
    head = model_cfg.get("head", "adml")
    scorer = "cosine" if head == "adml" else head
    head_opts = model_cfg.get("head_opts") if scorer != "cosine" else None
    counts = range(min(avg, len(ckpts)), 0, -1)
    if weights is not None:
        counts = range(1, 0, -1)  # the moving average lives in the last checkpoint only
    # Each checkpoint is read once, however many candidate averages it is part of.
    loaded = [load_checkpoint(path) for _, path in ckpts[-counts[0]:]]
    models = [(path, c["model"]) for (_, path), c in zip(ckpts[-counts[0]:], loaded)]
    # The last checkpoint's moving averages of the weights (training's ema.decays), if any.
    shadows = shadow_states(loaded[-1]) if select != "last" or weights else {}
    dev_aps: dict = {}
    if weights is not None:
        if weights not in shadows:
            raise ValueError(f"{ckpts[-1][1]}: no moving average {weights!r} (it holds "
                             f"{sorted(shadows) or 'none'}; training's ema.decays makes them)")
        n, state = weights, shadows[weights]
    else:
        dev = None
        if select != "last" and (len(counts) > 1 or shadows):
            dev = _dev_set(config, select, cfg_path)
        if dev is None:
            n, state = counts[0], _average_states(models)
        else:
            from pyadml.score.embed import trials_ap
            from pyadml.score.floor import model_floor_db

            audio_cfg = EcapaConfig(**model_cfg["audio"])
            text_full = TextEncoderConfig(**{**text_cfg, "vocab_size": len(tokenizer.phone_table)})
            # Largest average first, the moving averages last: a tie keeps the larger average,
            # and a moving average must beat every checkpoint average to be kept.
            candidates = itertools.chain(((k, _average_states(models[-k:])) for k in counts),
                                         shadows.items())
            best = None
            for n, cand in candidates:
                _, model = _scoring_model(cand, audio_cfg, text_full, scorer, dict(head_opts or {}))
                dev_aps[n] = trials_ap(model, *dev, tokenizer, bool(features.get("mean_norm", True)),
                                       floor_db=model_floor_db(features))
                if best is None or dev_aps[n] > dev_aps[best[0]]:
                    best = (n, cand)
            n, state = best
    ema = n if isinstance(n, str) else None
    chosen = ckpts[-1:] if ema else ckpts[-n:]
    last = loaded[-1]
    out = Path(out) if out else exp_dir / "final.pt"
    meta = {"exp_dir": exp_dir.name, "averaged": [path.name for _, path in chosen],
            "epochs": [epoch for epoch, _ in chosen], "step": last.get("step"), "config": config}
    if ema:
        meta["weights"] = ema  # the checkpoint's moving average, not its weights
    if dev_aps:
        meta["dev_ap_by_average"] = {str(k): v for k, v in dev_aps.items()}
    blob = export_model(state, out, audio_config=model_cfg["audio"], text_config=text_cfg,
                        tokenizer=tokenizer, features=features, meta=meta, scorer=scorer,
                        head_config=head_opts, cohort=_training_keywords(exp_dir / "lang"))
    n_params = sum(v.numel() for v in blob["model"].values())
    picked = ("; chosen by dev AP (" + ", ".join(
        f"last {k}: {v:.4f}" if isinstance(k, int) else f"{k}: {v:.4f}"
        for k, v in sorted(dev_aps.items(), key=lambda kv: (isinstance(kv[0], str), str(kv[0]))))
        + ")") if dev_aps else ""
    what = (f"the {ema} moving average of {chosen[0][1].name}" if ema else
            f"averaged {len(chosen)} checkpoint(s) {', '.join(p.name for _, p in chosen)}")
    summary = (f"{what}{picked}; "
               f"scorer {scorer}; kept {len(blob['model'])} model tensors ({n_params / 1e6:.2f}M values), dropped "
               f"{len(state) - len(blob['model'])} training-only; {len(tokenizer.phone_table)} "
               f"phones, {len(tokenizer.lexicon)} lexicon words, g2p {tokenizer.g2p_options} -> {out}")
    return blob, summary
