"""Stage 8: score the trial lists of the named test sets with exp/<tag>/final.pt
(pyadml.score.evaluate), print the results table and optionally update RESULTS.md."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pyadml.data.trials import parse_set_specs
from pyadml.score.evaluate import ScoreError, git_commit, score_test_sets
from pyadml.score.floor import add_floor_args
from pyadml.score.norm import add_norm_args
from pyadml.score.phrase import add_phrase_args
from pyadml.score.report import update_results_md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True, help="exp/<tag>: its final.pt is scored")
    p.add_argument("--model", default=None, help="another model file (default <exp-dir>/final.pt)")
    p.add_argument("--fbank-dir", required=True, help="data/fbank")
    p.add_argument("--trials-dir", required=True, help="data/trials")
    p.add_argument("--out-dir", default=None, help="default <exp-dir>/results")
    p.add_argument("sets", nargs="+", help="<set>:<protocol> (words or pairs), as run.sh names them")
    p.add_argument("--results-md", default=None, help="update this RESULTS.md")
    p.add_argument("--tag", default=None, help="RESULTS.md section title (default: the exp dir)")
    p.add_argument("--batch-size", type=int, default=256, help="cuts per forward pass")
    p.add_argument("--device", default="cpu")
    add_floor_args(p)
    add_norm_args(p)
    add_phrase_args(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    model = Path(args.model or Path(args.exp_dir) / "final.pt")
    out_dir = Path(args.out_dir or Path(args.exp_dir) / "results")
    try:
        sets = parse_set_specs(args.sets)
        _, table = score_test_sets(model, args.fbank_dir, args.trials_dir, out_dir,
                                   sets, batch_size=args.batch_size, device=args.device,
                                   norm=args.score_norm, cohort_size=args.cohort_size,
                                   phrase=args.phrase_score, words_onnx=args.words_onnx,
                                   jobs=args.jobs, floor_db=args.floor_db)
    except (ScoreError, ValueError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    print(table, end="")

    if args.results_md:
        config = Path(args.exp_dir) / "config.yaml"
        section = args.tag or Path(args.exp_dir).resolve().name
        command = "python -m pyadml.bin.score " + shlex.join(
            sys.argv[1:] if argv is None else list(argv))
        update_results_md(args.results_md, section, table,
                          str(config) if config.is_file() else str(model),
                          git_commit(), command)
        print(f"score: updated section {section!r} of {args.results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
