"""Stage 5: the trial lists of a recipe's dev and test sets (protocols words and pairs)."""

from __future__ import annotations

import argparse
import sys

import yaml

from pyadml.data.trials import make_set_trials, parse_set_specs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/data.yaml (its trials section)")
    p.add_argument("--train-set", required=True, help="its words are 'seen', the others 'unseen'")
    p.add_argument("--aug-sets", default="", help="words sets whose <set>_aug copy gets the same trials")
    p.add_argument("cuts_dir")
    p.add_argument("manifest_dir", help="stage 1's manifests (the pairs of a pairs set)")
    p.add_argument("out_dir")
    p.add_argument("sets", nargs="+", help="<set>:<protocol>, protocol words or pairs")
    args = p.parse_args(argv)
    try:
        sets = parse_set_specs(args.sets)
        cfg = (yaml.safe_load(open(args.config)) or {}).get("trials", {})
        lists = make_set_trials(args.cuts_dir, args.manifest_dir, args.out_dir, cfg,
                                args.train_set, sets, args.aug_sets.split())
    except (OSError, ValueError) as e:
        print(f"make_trials: {e}", file=sys.stderr)
        return 1
    for name, summary in lists.items():
        print(f"{name:24s} {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
