"""Stage 8's evaluation: embed each distinct cut and keyword once (the lists of a pairs set
share their cuts), score every trial list from the caches, compute the paper's metrics (AP for
the words protocol; EER and AUC for pairs, as LibriPhrase reports them), and write scores.tsv
per list, metrics.json, results.md and the ROC/DET/PR plots."""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from pyadml.data.trials import read_trials, trial_lists
from pyadml.fileio import write_lines_atomic, write_text_atomic
from pyadml.models.export import load_model
from pyadml.score import metrics as M
from pyadml.score.embed import embed_cuts, embed_texts, score_trials
from pyadml.score.enrol import ENROL_WEIGHT, EnrolError, model_enrol, torch_enrolment
from pyadml.score.floor import FloorError, floor_features, model_floor_db
from pyadml.score.norm import DEFAULT_COHORT_SIZE, ScoreNormError, adaptive_tnorm
from pyadml.score.norm import prepare as norm_cohort
from pyadml.score.phrase import PhraseScoreError, check_phrase, fuse_words
from pyadml.score.plots import plot_experiment_curves, plot_roc_det_pr
from pyadml.score.report import plots_line, results_table
from pyadml.score.speaker_mean import cosine_only, speaker_mean_normalised
from pyadml.text import KeywordError


class ScoreError(RuntimeError):
    """A model, manifest or trial list that cannot be scored."""


def _ap_or_none(scores, labels):
    # AP needs a positive and a negative; a subset with one class has none.
    labels = np.asarray(labels)
    return M.average_precision(scores, labels) if 0 < labels.sum() < labels.size else None


def word_metrics(trials, scores, speakers: dict[str, str]) -> dict:
    labels = np.array([t.label for t in trials])
    tags = np.array([t.tag for t in trials])
    out = {"num_trials": len(trials), "num_positives": int(labels.sum()),
           "AP": M.average_precision(scores, labels)}
    for tag in ("seen", "unseen"):
        sel = tags == tag
        out[f"AP_{tag}"] = _ap_or_none(scores[sel], labels[sel])
        out[f"num_trials_{tag}"] = int(sel.sum())
    by_spk = defaultdict(list)
    for i, t in enumerate(trials):
        by_spk[speakers.get(t.cut_id) or "unknown"].append(i)
    out["AP_per_speaker"] = {spk: _ap_or_none(scores[idx], labels[idx])
                             for spk, idx in sorted(by_spk.items())}
    out["EER"] = M.eer(scores, labels)
    return out


def pair_metrics(trials, scores) -> dict:
    labels = np.array([t.label for t in trials])
    return {"num_trials": len(trials), "num_positives": int(labels.sum()),
            "EER": M.eer(scores, labels), "AUC": M.auc(scores, labels),
            "EER_batch": M.batched_eer(scores, labels, batch_size=2048, seed=0),
            "AP": M.average_precision(scores, labels)}


def git_commit() -> str:
    try:
        res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=10)
        return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def score_test_sets(model_path, fbank_dir, trials_dir, out_dir, sets, batch_size: int = 256,
                    device: str = "cpu", exp_dir=None, norm: str = "none",
                    cohort_size: int = DEFAULT_COHORT_SIZE, phrase: str = "clip",
                    words_onnx=None, jobs: int = 1,
                    floor_db: float | None = None, cache: dict | None = None,
                    enrol: str = "none", enrol_voices=None,
                    enrol_weight: float = ENROL_WEIGHT,
                    speaker_mean: bool = False) -> tuple[dict, str]:
    """Score the trial lists of each (set, protocol) in ``sets``: cuts from
    ``<fbank_dir>/<set>.jsonl.gz``, lists ``<trials_dir>/<list>.tsv`` (pyadml.data.trials.
    trial_lists). Returns (metrics per list, the markdown results table). The training curves
    of ``exp_dir`` (default: the experiment that holds ``out_dir`` or the model, found by its
    metrics.jsonl) are plotted beside the ROC/DET/PR plots and linked under the table in
    results.md. ``norm="tnorm"``: scores are adaptive-T-normed with the model's cohort of
    ``cohort_size`` (pyadml.score.norm); "none" is the paper's protocol. ``phrase="words"``:
    multi-word keywords are also scored word by word (pyadml.score.phrase), their windows
    through the ONNX export ``words_onnx`` in ``jobs`` processes when given. ``cache``: a dict
    that several calls in one process share (pyadml.bin.score --run), so the model is loaded and
    each manifest's cuts (with one floor) and each keyword embedded once for all of them.
    ``enrol="tts"``: every keyword (and a phrase's words) is enrolled by speech synthesis too
    (pyadml.score.enrol, with ``enrol_voices`` and ``enrol_weight``); "none", the text alone,
    is the paper's protocol. ``speaker_mean``: each clip's embedding less the shrunk mean of
    its speaker's other clips in the set (pyadml.score.speaker_mean; cosine models only), before
    T-norm; off in the paper's protocol."""
    from lhotse import CutSet

    cache = {} if cache is None else cache
    try:
        key = ("model", str(model_path), device)
        loaded = cache[key] if key in cache else load_model(model_path, device=device)
        cache[key] = loaded
    except (OSError, ValueError) as e:
        raise ScoreError(str(e)) from None
    model = loaded.model
    mean_norm = bool(loaded.features.get("mean_norm", True))
    if speaker_mean and (why := cosine_only(loaded.scorer, model_path)):
        raise ScoreError(why)
    try:
        cohort, cohort_size = norm_cohort(loaded, norm, cohort_size, model_path)
        check_phrase(phrase, loaded.scorer, words_onnx, model_path, jobs)
        floor_db = model_floor_db(loaded.features, floor_db)
        enrol = model_enrol(loaded.scorer, enrol)
        enrolment = None
        if enrol == "tts":
            key = ("enrol", str(model_path), floor_db, str(enrol_voices), enrol_weight)
            if key not in cache:
                cache[key] = torch_enrolment(loaded, enrol_voices, enrol_weight, floor_db)
            enrolment = cache[key]
    except (ScoreNormError, PhraseScoreError, FloorError, EnrolError) as e:
        raise ScoreError(str(e)) from None
    fbank_dir, trials_dir, out_dir = Path(fbank_dir), Path(trials_dir), Path(out_dir)

    todo = {}
    for set_name, protocol in sets:
        cuts_file = fbank_dir / f"{set_name}.jsonl.gz"
        if not cuts_file.is_file():
            raise ScoreError(f"test set {set_name}: no features {cuts_file} (stage 4 writes them)")
        for name in trial_lists(set_name, protocol):
            trials_file = trials_dir / f"{name}.tsv"
            if not trials_file.is_file():
                raise ScoreError(f"test set {set_name}: no trial list {trials_file} (stage 5 "
                                 f"writes it when run.sh names the set with protocol {protocol})")
            trials = read_trials(trials_file)
            if not trials:
                raise ScoreError(f"test set {set_name}: the trial list {trials_file} is empty")
            todo[name] = (cuts_file, trials, protocol)
    if not todo:
        raise ScoreError("no test set given")

    # One cache per cut manifest (the LibriPhrase sets share theirs) and one for all texts.
    audio_cache: dict[Path, dict] = {}
    speakers: dict[Path, dict] = {}
    cut_cache: dict[Path, dict] = {}  # the cuts themselves, for phrase="words"
    for cuts_path in dict.fromkeys(c for c, _, _ in todo.values()):
        needed = {t.cut_id for c, trials, _ in todo.values() if c == cuts_path for t in trials}
        key = ("audio", str(model_path), cuts_path.resolve(), floor_db)
        if key not in cache or not needed <= cache[key]["emb"].keys():
            cuts = [c for c in CutSet.from_file(cuts_path) if c.id in needed]
            absent = needed - {c.id for c in cuts}
            if absent:
                raise ScoreError(f"{len(absent)} trial cut(s) are not in {cuts_path}, e.g. "
                                 f"{sorted(absent)[0]}")
            t0 = time.time()
            emb = embed_cuts(model, cuts, batch_size=batch_size, mean_norm=mean_norm,
                             floor_db=floor_db)
            took = time.time() - t0
            print(f"score: embedded {len(cuts)} cuts of {cuts_path.name} in {took:.1f} s "
                  f"({len(cuts) / max(took, 1e-9):.0f} cuts/s)")
            cache[key] = {"emb": emb, "cuts": {c.id: c for c in cuts},
                          "speakers": {c.id: (c.supervisions[0].speaker if c.supervisions
                                              else None) for c in cuts}}
        audio_cache[cuts_path] = cache[key]["emb"]
        if speaker_mean:
            audio_cache[cuts_path], alone = speaker_mean_normalised(
                {c: audio_cache[cuts_path][c] for c in needed}, cache[key]["speakers"])
            print(f"score: {cuts_path.name}: each clip less its speaker's mean"
                  + (f"; {alone} of {len(needed)} clips share their speaker with no other, kept "
                     f"as they are" if alone else ""))
        speakers[cuts_path] = cache[key]["speakers"]
        cut_cache[cuts_path] = cache[key]["cuts"]
    texts = dict.fromkeys(t.keyword for _, trials, _ in todo.values() for t in trials)
    key = ("texts", str(model_path))
    if key not in cache or not texts.keys() <= cache[key].keys():
        t0 = time.time()
        try:
            cache[key] = embed_texts(model, texts, loaded.tokenizer)
        except KeywordError as e:
            raise ScoreError(str(e)) from None
        print(f"score: embedded {len(cache[key])} distinct keywords in {time.time() - t0:.1f} s")
    text_cache = cache[key]
    if enrolment is not None:
        t0 = time.time()
        try:
            text_cache = enrolment.queries({t: text_cache[t] for t in texts})
        except EnrolError as e:
            raise ScoreError(str(e)) from None
        print(f"score: enrolled {len(texts)} keywords by {len(enrolment.voices)} TTS voices in "
              f"{time.time() - t0:.1f} s" + (f"; {len(enrolment.text_only)} by their text alone "
                                             f"(no voice could speak them)"
                                             if enrolment.text_only else ""))

    results, curves = {}, {}
    for name, (cuts_path, trials, protocol) in todo.items():
        t0 = time.time()
        scores = score_trials(trials, audio_cache[cuts_path], text_cache, model=model)
        if cohort is not None:
            scores = adaptive_tnorm(scores, [t.cut_id for t in trials], [t.keyword for t in trials],
                                    audio_cache[cuts_path], cohort, cohort_size)
        if phrase == "words":
            by_id = cut_cache[cuts_path]
            scores = fuse_words(loaded, scores, [t.cut_id for t in trials],
                                [t.keyword for t in trials],
                                lambda c: floor_features(by_id[c].load_features(), floor_db),
                                batch_size=batch_size,
                                cache=cache.setdefault(("words", str(model_path), cuts_path.resolve(),
                                                        floor_db, str(words_onnx)), {}),
                                onnx_dir=words_onnx, jobs=jobs, cohort=cohort,
                                cohort_size=cohort_size, enrolment=enrolment)
        took = time.time() - t0
        write_lines_atomic(out_dir / name / "scores.tsv",
                           (f"{t.cut_id}\t{t.keyword}\t{t.label}\t{t.tag}\t{s:.6f}"
                            for t, s in zip(trials, scores)))
        labels = np.array([t.label for t in trials])
        if not 0 < labels.sum() < labels.size:
            # AP, EER and AUC need both classes: the row says how many trials, '-' for the rest.
            which = "positive (no negative)" if labels.sum() else "negative (no positive)"
            print(f"score: {name}: all {len(trials)} trials are {which}: AP, EER and AUC need "
                  f"both; its row shows '-' (the scores are in {out_dir / name / 'scores.tsv'})")
            results[name] = {"num_trials": len(trials), "num_positives": int(labels.sum())}
            continue
        if protocol == "words":
            results[name] = word_metrics(trials, scores, speakers[cuts_path])
        else:
            results[name] = pair_metrics(trials, scores)
        curves[name] = (scores, labels)
        print(f"score: {name}: {len(trials)} trials scored in {took:.2f} s "
              f"({len(trials) / max(took, 1e-9):.0f} trials/s)")

    write_text_atomic(out_dir / "metrics.json", json.dumps(
        {"model": str(model_path), "sets": results}, indent=2, sort_keys=False) + "\n")
    table = results_table(results)
    plots = {}
    if curves:
        plot_roc_det_pr(curves, out_dir)
        plots = {"ROC": "roc.png", "DET": "det.png", "precision-recall": "pr.png"}
    plots.update(training_curves(exp_dir, out_dir, model_path))
    write_text_atomic(out_dir / "results.md", table + ("\n" + plots_line(plots) if plots else ""))
    return results, table


def training_curves(exp_dir, out_dir, model_path) -> dict[str, str]:
    """curves.png (and dev_ap_compare.png with sibling experiments) in out_dir; {link: file}.
    A metrics.jsonl that cannot be plotted costs a warning, not the scores."""
    if exp_dir is None:
        exp_dir = next((d for d in (Path(out_dir).parent, Path(model_path).parent)
                        if (d / "metrics.jsonl").is_file()), None)
    if exp_dir is None:
        return {}
    try:
        written = plot_experiment_curves(exp_dir, out_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"score: warning: no training curves from {Path(exp_dir) / 'metrics.jsonl'}: {e}")
        return {}
    for name in written.values():
        print(f"score: plotted {Path(out_dir) / name}")
    return written

