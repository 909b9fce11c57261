"""Stage 8: score the WSJ and LibriPhrase trial lists with an exported model.

Each distinct cut and keyword is embedded once (LP_E and LP_H share their LibriPhrase cuts);
trials are then scored from the caches. Writes <out>/<set>/scores.tsv, <out>/metrics.json,
<out>/results.md and ROC/DET/PR plots, and optionally a section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from pyadml.data.trials import read_trials
from pyadml.fileio import write_lines_atomic, write_text_atomic
from pyadml.models.export import load_model
from pyadml.score import metrics as M
from pyadml.score.embed import embed_cuts, embed_texts, score_trials
from pyadml.score.plots import plot_roc_det_pr
from pyadml.score.report import results_table, update_results_md
from pyadml.text import KeywordError

# name -> (cuts under --fbank-dir, trials under --trials-dir, protocol)
TEST_SETS = {
    "wsj_clean": ("wsj_test_words.jsonl.gz", "wsj_clean.tsv", "wsj"),
    "wsj_aug": ("wsj_test_words_aug.jsonl.gz", "wsj_aug.tsv", "wsj"),
    "lp_e": ("libriphrase_test.jsonl.gz", "libriphrase_lp_e.tsv", "libriphrase"),
    "lp_h": ("libriphrase_test.jsonl.gz", "libriphrase_lp_h.tsv", "libriphrase"),
}


def _ap_or_none(scores, labels):
    # AP needs a positive and a negative; a subset with one class has none.
    labels = np.asarray(labels)
    return M.average_precision(scores, labels) if 0 < labels.sum() < labels.size else None


def wsj_metrics(trials, scores, speakers: dict[str, str]) -> dict:
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


def libriphrase_metrics(trials, scores) -> dict:
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="exp/<tag>/final.pt")
    p.add_argument("--fbank-dir", required=True, help="data/fbank")
    p.add_argument("--trials-dir", required=True, help="data/trials")
    p.add_argument("--out-dir", required=True, help="exp/<tag>/results")
    p.add_argument("--sets", default=",".join(TEST_SETS), help="comma-separated test sets")
    p.add_argument("--results-md", default=None, help="update this RESULTS.md")
    p.add_argument("--tag", default=None, help="RESULTS.md section title (default: the exp dir)")
    p.add_argument("--batch-size", type=int, default=256, help="cuts per forward pass")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = set(sets) - set(TEST_SETS)
    if unknown:
        p.error(f"unknown test set(s) {sorted(unknown)}; known: {', '.join(TEST_SETS)}")

    from lhotse import CutSet

    try:
        loaded = load_model(args.model, device=args.device)
    except (OSError, ValueError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    model = loaded.model
    mean_norm = bool(loaded.features.get("mean_norm", True))
    fbank_dir, trials_dir, out_dir = Path(args.fbank_dir), Path(args.trials_dir), Path(args.out_dir)

    todo = {}
    for name in sets:
        cuts_file, trials_file, protocol = TEST_SETS[name]
        missing = [str(f) for f in (fbank_dir / cuts_file, trials_dir / trials_file) if not f.is_file()]
        if missing:
            print(f"score: skipping {name}: missing {', '.join(missing)}")
            continue
        todo[name] = (fbank_dir / cuts_file, read_trials(trials_dir / trials_file), protocol)
    if not todo:
        print("score: no test set has both its cuts and its trials", file=sys.stderr)
        return 1

    # One cache per cut manifest (the LibriPhrase sets share theirs) and one for all texts.
    audio_cache: dict[Path, dict] = {}
    speakers: dict[Path, dict] = {}
    for cuts_path in dict.fromkeys(c for c, _, _ in todo.values()):
        needed = {t.cut_id for c, trials, _ in todo.values() if c == cuts_path for t in trials}
        cuts = [c for c in CutSet.from_file(cuts_path) if c.id in needed]
        absent = needed - {c.id for c in cuts}
        if absent:
            print(f"score: {len(absent)} trial cut(s) are not in {cuts_path}, e.g. "
                  f"{sorted(absent)[0]}", file=sys.stderr)
            return 1
        t0 = time.time()
        audio_cache[cuts_path] = embed_cuts(model, cuts, batch_size=args.batch_size,
                                            mean_norm=mean_norm)
        took = time.time() - t0
        print(f"score: embedded {len(cuts)} cuts of {cuts_path.name} in {took:.1f} s "
              f"({len(cuts) / max(took, 1e-9):.0f} cuts/s)")
        speakers[cuts_path] = {c.id: (c.supervisions[0].speaker if c.supervisions else None)
                               for c in cuts}
    texts = dict.fromkeys(t.keyword for _, trials, _ in todo.values() for t in trials)
    t0 = time.time()
    try:
        text_cache = embed_texts(model, texts, loaded.phone_table, loaded.g2p)
    except KeywordError as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    print(f"score: embedded {len(text_cache)} distinct keywords in {time.time() - t0:.1f} s")

    results, curves = {}, {}
    for name, (cuts_path, trials, protocol) in todo.items():
        t0 = time.time()
        scores = score_trials(trials, audio_cache[cuts_path], text_cache)
        took = time.time() - t0
        write_lines_atomic(out_dir / name / "scores.tsv",
                           (f"{t.cut_id}\t{t.keyword}\t{t.label}\t{t.tag}\t{s:.6f}"
                            for t, s in zip(trials, scores)))
        labels = np.array([t.label for t in trials])
        if not 0 < labels.sum() < labels.size:
            print(f"score: {name}: trials hold only one class; no metrics")
            continue
        if protocol == "wsj":
            results[name] = wsj_metrics(trials, scores, speakers[cuts_path])
        else:
            results[name] = libriphrase_metrics(trials, scores)
        curves[name] = (scores, labels)
        print(f"score: {name}: {len(trials)} trials scored in {took:.2f} s "
              f"({len(trials) / max(took, 1e-9):.0f} trials/s)")

    write_text_atomic(out_dir / "metrics.json", json.dumps(
        {"model": str(args.model), "sets": results}, indent=2, sort_keys=False) + "\n")
    table = results_table(results)
    write_text_atomic(out_dir / "results.md", table)
    if curves:
        plot_roc_det_pr(curves, out_dir)
    print(table, end="")

    if args.results_md:
        config = Path(args.model).parent / "config.yaml"
        section = args.tag or Path(args.model).resolve().parent.name
        command = "python -m pyadml.bin.score " + shlex.join(
            sys.argv[1:] if argv is None else list(argv))
        update_results_md(args.results_md, section, table,
                          str(config) if config.is_file() else str(args.model),
                          git_commit(), command)
        print(f"score: updated section {section!r} of {args.results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
