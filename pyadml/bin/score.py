"""Stage 8: score the trial lists of the named test sets with exp/<tag>/final.pt
(pyadml.score.evaluate), print the results table and optionally update RESULTS.md.

    python -m pyadml.bin.score --exp-dir exp/<tag> --fbank-dir data/fbank --trials-dir data/trials \\
      [--out-dir D] [--results-md RESULTS.md --tag T] <set>:<protocol> ...

--run OPTS (repeatable) scores again in the same process with other scoring options, its own
--out-dir and --tag, and optionally its own sets: stage 8's back-ends in one start of Python and
torch, the model loaded and each cut and keyword embedded once for all runs that share them.

    python -m pyadml.bin.score ... --out-dir exp/t/results <words-set>:words <phrase-set>:pairs \\
      --run "--out-dir exp/t/results_tnorm --score-norm tnorm --tag 't, T-norm'" \\
      --run "--out-dir exp/t/results_words --phrase-score words <phrase-set>:pairs"

--speaker-mean: each clip's embedding less the shrunk mean of its speaker's other clips in the
set (pyadml.score.speaker_mean), a back-end for test sets whose speakers are known.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pyadml.bin import parse_run_options
from pyadml.data.trials import parse_set_specs
from pyadml.score.evaluate import ScoreError, git_commit, score_test_sets
from pyadml.score.enrol import add_enrol_args
from pyadml.score.floor import FloorError, add_floor_args, check_floor_option
from pyadml.score.norm import add_norm_args
from pyadml.score.phrase import add_phrase_args
from pyadml.score.report import read_results_md, update_results_md

# Options of the command line that every --run shares; the others are each run's own.
SHARED = ("--exp-dir", "--model", "--fbank-dir", "--trials-dir", "--results-md", "--batch-size",
          "--device")


def parser(shared: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyadml.bin.score" if shared else "--run",
                                description=__doc__ if shared else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if shared:
        p.add_argument("--exp-dir", required=True, help="exp/<tag>: its final.pt is scored")
        p.add_argument("--model", default=None, help="another model file (default <exp-dir>/final.pt)")
        p.add_argument("--fbank-dir", required=True, help="data/fbank")
        p.add_argument("--trials-dir", required=True, help="data/trials")
        p.add_argument("--results-md", default=None, help="update this RESULTS.md")
        p.add_argument("--batch-size", type=int, default=256, help="cuts per forward pass")
        p.add_argument("--device", default="cpu")
        p.add_argument("--run", action="append", default=[], metavar="OPTS",
                       help="after the command line's scoring, another in this process with these "
                       "options instead (quoted as one argument; sets default to the command "
                       f"line's; {', '.join(SHARED)} carry over); repeatable")
    p.add_argument("sets", nargs="+" if shared else "*",
                   help="<set>:<protocol> (words or pairs), as run.sh names them")
    p.add_argument("--out-dir", default=None, help="default <exp-dir>/results")
    p.add_argument("--tag", default=None, help="RESULTS.md section title (default: the exp dir)")
    add_floor_args(p)
    add_norm_args(p)
    add_phrase_args(p)
    add_enrol_args(p)
    p.add_argument("--speaker-mean", action="store_true",
                   help="each clip's embedding less the shrunk mean of its speaker's other clips "
                   "in the set, before T-norm (pyadml.score.speaker_mean; the cuts' supervision "
                   "speakers); off in the paper's protocol")
    return p


def parse_runs(argv: list[str]) -> tuple[argparse.Namespace, list[tuple[argparse.Namespace, list[str]]]]:
    """The command line and its runs, each with the tokens of the one command that would score it
    alone (for RESULTS.md). Every run is parsed, and its floor checked, before any is scored, so a
    bad --run fails before anything is written. A run that fails later (e.g. the words back-end
    on a detector model) stops the command; the runs before it keep their complete outputs."""
    p = parser()
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    own, i = [], 0  # the command line without its --run options
    while i < len(argv):
        if argv[i] == "--run" or argv[i].startswith("--run="):
            i += 2 if argv[i] == "--run" else 1
            continue
        own.append(argv[i])
        i += 1
    shared = []  # the shared options a run's own command needs (those not at their default)
    for opt in SHARED:
        dest = opt[2:].replace("-", "_")
        if getattr(args, dest) != p.get_default(dest):
            shared += [opt, str(getattr(args, dest))]
    runs = [(args, own)]
    run_parser = parser(shared=False)
    for r, tokens in parse_run_options(run_parser, args.run, SHARED):
        if not r.sets:
            r.sets = args.sets
            tokens = tokens + args.sets
        runs.append((r, shared + tokens))
    outs = [str(Path(r.out_dir or Path(args.exp_dir) / "results")) for r, _ in runs]
    if len(set(outs)) < len(outs):
        run_parser.error(f"two runs write to the same --out-dir: {sorted(outs)}")
    for n, (r, _) in enumerate(runs):
        where = f"--run {n}: " if n else ""
        if r.jobs < 1:
            run_parser.error(f"{where}--jobs must be >= 1, got {r.jobs}")
        try:
            check_floor_option(r.floor_db)
        except FloorError as e:
            run_parser.error(f"{where}{e}")
    return args, runs


def main(argv=None) -> int:
    args, runs = parse_runs(sys.argv[1:] if argv is None else list(argv))
    model = Path(args.model or Path(args.exp_dir) / "final.pt")
    try:
        plans = [(r, tokens, parse_set_specs(r.sets)) for r, tokens in runs]
        if args.results_md:
            read_results_md(args.results_md)  # one we cannot update: before any scoring
    except (ValueError, OSError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    cache: dict = {}  # the model and the embeddings, shared by the runs
    commit = git_commit() if args.results_md else None
    for r, tokens, sets in plans:
        out_dir = Path(r.out_dir or Path(args.exp_dir) / "results")
        try:
            _, table = score_test_sets(model, args.fbank_dir, args.trials_dir, out_dir,
                                       sets, batch_size=args.batch_size, device=args.device,
                                       norm=r.score_norm, cohort_size=r.cohort_size,
                                       phrase=r.phrase_score, words_onnx=r.words_onnx,
                                       jobs=r.jobs, floor_db=r.floor_db, cache=cache,
                                       enrol=r.enrol, enrol_voices=r.enrol_voices,
                                       enrol_weight=r.enrol_weight,
                                       speaker_mean=r.speaker_mean)
        except (ScoreError, ValueError) as e:
            where = f" ({out_dir})" if len(runs) > 1 else ""
            print(f"score{where}: {e}", file=sys.stderr)
            return 1
        print(table, end="")

        if args.results_md:
            config = Path(args.exp_dir) / "config.yaml"
            section = r.tag or Path(args.exp_dir).resolve().name
            try:
                update_results_md(args.results_md, section, table,
                                  str(config) if config.is_file() else str(model), commit,
                                  "python -m pyadml.bin.score " + shlex.join(tokens))
            except (ValueError, OSError) as e:
                print(f"score: cannot update {args.results_md} (the scores are in {out_dir}): "
                      f"{e}", file=sys.stderr)
                return 1
            print(f"score: updated section {section!r} of {args.results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
