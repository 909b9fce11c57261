"""Write the ablation tables (pyadml.score.ablation) of local/run_ablation.sh into RESULTS.md:
Tables 1-3 from a words test set, Table 4 from a LibriPhrase-like pairs test set."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from pyadml.score.ablation import collect, table4, tables
from pyadml.score.report import update_results_md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True, help="exp/ablation, holding <row>/seed<k>/results")
    p.add_argument("--test-set", required=True,
                   help="the trial list the paper's tables report (the recipe's words test set)")
    p.add_argument("--pairs-set", default=None,
                   help="the LibriPhrase-like pairs test set for Table 4 (its _lp_e and _lp_h lists)")
    p.add_argument("--results-md", default=None)
    p.add_argument("--note", default="", help="a line on epochs, data and wall time")
    args = p.parse_args(argv)
    ours = collect(Path(args.exp_dir), args.test_set)
    text = tables(ours)
    if args.pairs_set:
        t4 = table4(Path(args.exp_dir), args.pairs_set)
        text += "\n\n" + (t4 or f"Table 4: no row was scored on {args.pairs_set}.")
    if args.note:
        text = args.note + "\n\n" + text
    print(text)
    if args.results_md:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or None
        last = 4 if args.pairs_set else 3
        update_results_md(args.results_md, f"Ablations (Tables 1-{last}, {args.test_set} AP)", text,
                          config_path="conf/ablation/", git_commit=commit,
                          command="local/run_ablation.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
