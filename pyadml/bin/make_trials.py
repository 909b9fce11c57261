"""Stage 5: WSJ-protocol and LibriPhrase trial lists."""

from __future__ import annotations

import argparse
import sys

import yaml

from pyadml.data.trials import build_recipe_trials


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/data.yaml (its trials section)")
    p.add_argument("--cuts-dir", required=True)
    p.add_argument("--manifests", required=True)
    p.add_argument("--out-dir", required=True)
    args = p.parse_args(argv)
    cfg = (yaml.safe_load(open(args.config)) or {}).get("trials", {})
    for name, summary in build_recipe_trials(args.cuts_dir, args.manifests, args.out_dir, cfg).items():
        print(f"{name:20s} {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
