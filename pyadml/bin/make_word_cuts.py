"""Stage 2: word cuts of the training set (with its dev part) and of each test set, the
training keyword ids, and the lang directory (lexicon, phone table, G2P options)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import yaml

from pyadml.data.cuts import make_sets
from pyadml.data.trials import parse_set_specs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/data.yaml (its word_cuts section)")
    p.add_argument("--dev-set", default="", help="name of the dev part held out of the training set")
    p.add_argument("manifest_dir", help="stage 1's manifests")
    p.add_argument("cuts_dir", help="<set>.jsonl.gz and report.json go here")
    p.add_argument("lang_dir", help="keywords.txt, lexicon.txt, phones.txt, g2p.yaml")
    p.add_argument("train_set", help="<corpus>_<part> of the training manifests")
    p.add_argument("test_sets", nargs="*", help="<set>:<protocol>, protocol words or pairs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg = (yaml.safe_load(open(args.config)) or {}).get("word_cuts", {})
        report = make_sets(args.manifest_dir, args.cuts_dir, args.lang_dir, cfg, args.train_set,
                           args.dev_set or None, parse_set_specs(args.test_sets))
    except (OSError, ValueError) as e:
        print(f"make_word_cuts: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
