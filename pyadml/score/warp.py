"""Frequency-warp check: word AP per speaker when every test cut's log-mel features are warped
by alpha (``pyadml.data.dataset.warp_mel``: alpha > 1 moves spectral peaks up, as a shorter
vocal tract; < 1 down). A voice whose AP rises when warped down sounds to the model like a
shorter vocal tract than it was trained on (a voice outside the training voices' range of
formant frequencies), not like a voice it cannot hear the words in.

The alpha = 1 column is the ``words`` protocol's per-speaker AP of stage 8
(``pyadml.score.evaluate.word_metrics``) on the same cuts and trials.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from lhotse import CutSet

from pyadml.data.dataset import mean_normalize, warp_mel
from pyadml.data.features import mel_range
from pyadml.data.trials import read_trials
from pyadml.fileio import write_text_atomic
from pyadml.models.export import load_model
from pyadml.score.embed import embed_features, embed_texts, score_trials
from pyadml.score.evaluate import word_metrics
from pyadml.score.floor import floor_features, model_floor_db


def warp_check(model_path, cuts_path, trials_path, alphas: Sequence[float],
               speakers: Sequence[str] | None = None, batch_size: int = 256) -> dict:
    """{"alphas": [...], "AP": {alpha: pooled AP}, "AP_per_speaker": {speaker: {alpha: AP}}}
    over the trials of ``trials_path`` whose cut belongs to one of ``speakers`` (all when None)."""
    if not alphas or any(not a > 0 for a in alphas):
        raise ValueError(f"alphas must be positive numbers, got {list(alphas)}")
    loaded = load_model(model_path)
    if loaded.scorer != "cosine":
        raise ValueError(f"{model_path}: the warp check needs a cosine model, not a "
                         f"{loaded.scorer!r} detector")
    mean_norm = bool(loaded.features.get("mean_norm", True))
    low, high = mel_range(loaded.features)
    cuts = {c.id: c for c in CutSet.from_file(cuts_path)}
    spk = {cid: (c.supervisions[0].speaker if c.supervisions else None) for cid, c in cuts.items()}
    trials = read_trials(trials_path)
    absent = sorted({t.cut_id for t in trials} - cuts.keys())
    if absent:
        raise ValueError(f"{len(absent)} trial cut(s) of {trials_path} are not in {cuts_path}, "
                         f"e.g. {absent[0]}")
    if speakers is not None:
        unknown = sorted(set(speakers) - set(spk.values()))
        if unknown:
            raise ValueError(f"speaker(s) {unknown} not in {cuts_path}; it has "
                             f"{sorted(s for s in set(spk.values()) if s)}")
        keep = set(speakers)
        trials = [t for t in trials if spk[t.cut_id] in keep]
    if not trials:
        raise ValueError(f"no trials of {trials_path} to score")
    ids = sorted({t.cut_id for t in trials})
    floor_db = model_floor_db(loaded.features)  # the model's own front end, if it has one
    raw = [floor_features(np.asarray(cuts[i].load_features(), dtype=np.float32), floor_db)
           for i in ids]
    texts = embed_texts(loaded.model, dict.fromkeys(t.keyword for t in trials), loaded.tokenizer)
    out = {"alphas": list(alphas), "AP": {}, "AP_per_speaker": {}}
    for a in alphas:
        feats = [warp_mel(f, a, low, high) for f in raw]
        if mean_norm:
            feats = [mean_normalize(f) for f in feats]
        emb = dict(zip(ids, embed_features(loaded.model, feats, batch_size=batch_size)))
        m = word_metrics(trials, score_trials(trials, emb, texts, model=loaded.model), spk)
        out["AP"][a] = m["AP"]
        for s, ap in m["AP_per_speaker"].items():
            out["AP_per_speaker"].setdefault(s, {})[a] = ap
    return out


def format_table(res: dict) -> str:
    """A markdown table: one row per speaker (and "all"), one AP column per alpha."""
    alphas = res["alphas"]
    lines = ["| speaker | " + " | ".join(f"AP at {a:g}" for a in alphas) + " |",
             "|---|" + "---:|" * len(alphas)]

    def cell(v):
        return "-" if v is None else f"{v:.3f}"

    for s in sorted(res["AP_per_speaker"]):
        lines.append(f"| {s} | " + " | ".join(cell(res["AP_per_speaker"][s][a]) for a in alphas) + " |")
    lines.append("| all | " + " | ".join(cell(res["AP"][a]) for a in alphas) + " |")
    return "\n".join(lines) + "\n"


def write_result(res: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "warp_check.json", json.dumps(
        {"alphas": res["alphas"], "AP": {str(a): v for a, v in res["AP"].items()},
         "AP_per_speaker": {s: {str(a): v for a, v in d.items()}
                            for s, d in res["AP_per_speaker"].items()}}, indent=1) + "\n")
    write_text_atomic(out_dir / "warp_check.md", format_table(res))
