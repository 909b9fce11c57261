"""Score keyword clips against every keyword of their set (pyadml.score.clips): AP, EER, AUC
and top-1, e.g. for a real-speech development set such as wake-word recordings. AP and EER are
printed with their 95% intervals in brackets (the clips resampled; metrics.json holds all four).

    python -m pyadml.bin.score_clips --model exp/<tag>/final.pt --clips clips.tsv [--out-dir D]

As for any recording a user scores, every clip's features are floored 50 dB below its loudest
value, a cosine model scores a multi-word keyword's words as well (pyadml.score.phrase) and its
scores are adaptive-T-normed (pyadml.score.floor, pyadml.score.norm), and each keyword is
enrolled by its text and by TTS voices speaking it (pyadml.score.enrol); ``--floor-db none
--score-norm none --phrase-score clip --enrol none`` scores the clips as the paper's protocol
does.

--speaker-mean: each clip's embedding less the shrunk mean of its speaker's other clips, before
T-norm (pyadml.score.speaker_mean), the speakers from a third column of the list
(``<audio>\\t<keyword>\\t<speaker>``). Off by default.

--run OPTS (repeatable) scores the same clips again in the same process with other scoring
options, each run with its own --out-dir: stage 8's back-ends in one start of Python and torch
instead of one each.

    python -m pyadml.bin.score_clips --model M --clips C --out-dir D \\
      --run "--vad --out-dir D_vad" --run "--floor-db none --score-norm none --out-dir D_cos"
"""

from __future__ import annotations

import argparse
import json
import sys

from pyadml.bin import parse_run_options
from pyadml.score.clips import score_clips
from pyadml.score.floor import CLIP_FLOOR_DB, FloorError, add_floor_args, check_floor_option
from pyadml.score.enrol import CLIP_ENROL, add_enrol_args
from pyadml.score.norm import CLIP_SCORE_NORM, add_norm_args
from pyadml.score.phrase import CLIP_PHRASE_SCORE, add_phrase_args
from pyadml.score.pairs import PairsError

# Options of the command line that every --run shares; the others are each run's own.
SHARED = ("--model", "--clips", "--batch-size")


def parser(shared: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyadml.bin.score_clips" if shared else "--run",
                                description=__doc__ if shared else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if shared:
        p.add_argument("--model", required=True, help="final.pt")
        p.add_argument("--clips", required=True,
                       help="TSV: <audio path relative to it>\\t<keyword>[\\t<speaker>]")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--run", action="append", default=[], metavar="OPTS",
                       help="after the command line's scoring, another of the same clips in this "
                       "process with these scoring options instead (quoted as one argument; "
                       f"{', '.join(SHARED)} carry over); repeatable")
    p.add_argument("--out-dir", default=None, help="scores.tsv and metrics.json go here")
    p.add_argument("--vad", action="store_true", help="energy voice-activity front end: cut each file to the frames within 30 dB of "
                   "its loudest plus 50 ms before scoring (off: the paper's protocol, audio as given)")
    p.add_argument("--warp", type=float, default=1.0,
                   help="diagnostic: warp every clip's features by this factor (> 1 moves spectral "
                   "peaks up, as a shorter vocal tract; pyadml.score.warp); default 1, none")
    add_floor_args(p, default_db=CLIP_FLOOR_DB)
    add_norm_args(p, default=CLIP_SCORE_NORM)
    add_phrase_args(p, default=CLIP_PHRASE_SCORE)
    add_enrol_args(p, default=CLIP_ENROL)
    p.add_argument("--speaker-mean", action="store_true",
                   help="each clip's embedding less the shrunk mean of its speaker's other clips "
                   "(the list's third column), before T-norm (cosine models; default off)")
    return p


def parse_runs(argv=None) -> tuple[argparse.Namespace, list[argparse.Namespace]]:
    """The command line and its runs: the command line's own scoring first, then each --run's.
    Every run is parsed (and main checks its floor) before any is scored, so a bad --run fails
    before anything is written."""
    args = parser().parse_args(argv)
    run_parser = parser(shared=False)
    runs = [args] + [r for r, _ in parse_run_options(run_parser, args.run, SHARED)]
    outs = [r.out_dir for r in runs if r.out_dir is not None]
    if len(set(outs)) < len(outs):
        run_parser.error(f"two runs write to the same --out-dir: {sorted(outs)}")
    return args, runs


def main(argv=None) -> int:
    args, runs = parse_runs(argv)
    for i, r in enumerate(runs):
        try:
            check_floor_option(r.floor_db)
        except FloorError as e:
            print(f"score_clips: {'--run %d: ' % i if i else ''}{e}", file=sys.stderr)
            return 1
    from pyadml.fileio import cannot_write_in

    for i, r in enumerate(runs):  # now, not after every run has scored every clip
        why = r.out_dir and cannot_write_in(r.out_dir)
        if why:
            print(f"score_clips: {'--run %d: ' % i if i else ''}cannot write the results in "
                  f"--out-dir {r.out_dir}: {why}; give --out-dir a directory of yours (a model "
                  f"shared read-only is scored into a copy of its experiment, or elsewhere)",
                  file=sys.stderr)
            return 1
    cache: dict = {}  # runs with the same front end share the words back-end's windows
    for r in runs:
        try:
            m = score_clips(args.model, args.clips, r.out_dir, args.batch_size, vad=r.vad,
                            norm=r.score_norm, cohort_size=r.cohort_size,
                            phrase=r.phrase_score, warp=r.warp,
                            words_onnx=r.words_onnx, jobs=r.jobs, floor_db=r.floor_db,
                            default_floor_db=CLIP_FLOOR_DB, default_norm=CLIP_SCORE_NORM,
                            default_phrase=CLIP_PHRASE_SCORE, enrol=r.enrol,
                            default_enrol=CLIP_ENROL, enrol_voices=r.enrol_voices,
                            enrol_weight=r.enrol_weight, cache=cache,
                            speaker_mean=r.speaker_mean)
        except PairsError as e:
            where = f" ({r.out_dir})" if len(runs) > 1 else ""
            print(f"score_clips{where}: {e}", file=sys.stderr)
            return 1
        ci = {k: f" ({100 * lo:.1f}-{100 * hi:.1f})" for k, (lo, hi) in m["ci95"].items()}
        line = (f"{m['clips']} clips x {len(m['keywords'])} keywords: AP {100 * m['AP']:.2f}%"
                f"{ci['AP']}  EER {100 * m['EER']:.2f}%{ci['EER']}  AUC {100 * m['AUC']:.2f}%  "
                f"top-1 {100 * m['top1']:.2f}%")
        print(f"score_clips: {line}" + (f"  ({r.out_dir})" if len(runs) > 1 and r.out_dir else ""))
        if r.out_dir:
            from pyadml.fileio import write_text_atomic

            write_text_atomic(f"{r.out_dir}/metrics.json", json.dumps(m, indent=1) + "\n")
            write_text_atomic(f"{r.out_dir}/summary.txt", line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
