"""Stage 8: score the WSJ and LibriPhrase trial lists with an exported model
(pyadml.score.evaluate), print the results table and optionally update RESULTS.md."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pyadml.score.evaluate import TEST_SETS, ScoreError, git_commit, score_test_sets
from pyadml.score.report import update_results_md


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

    try:
        _, table = score_test_sets(args.model, args.fbank_dir, args.trials_dir, args.out_dir,
                                   sets, batch_size=args.batch_size, device=args.device)
    except ScoreError as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
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
