"""Stage 2: word cuts, keyword-id map, lexicon and phone table."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import yaml

from pyadml.data.cuts import build_recipe_cuts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/data.yaml (its word_cuts section)")
    p.add_argument("--manifests", required=True, help="stage 1's manifest directory")
    p.add_argument("--out-dir", required=True, help="cut manifests go here")
    p.add_argument("--lang-dir", required=True, help="keywords.txt, lexicon.txt, phones.txt")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = (yaml.safe_load(open(args.config)) or {}).get("word_cuts", {})
    report = build_recipe_cuts(args.manifests, args.out_dir, args.lang_dir, cfg)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
