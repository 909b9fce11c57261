"""Stage 0: synthesise the embedded corpora in the real corpora's layouts."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from pyadml.synth.corpora import CORPORA, build_corpora, disk_usage, load_config
from pyadml.synth.voices import SynthesisError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/synth.yaml")
    p.add_argument("--size", default="mini", help="a key under 'sizes' in the config")
    p.add_argument("--out-dir", required=True, help="one sub-directory per corpus is written here")
    p.add_argument("--corpora", default=",".join(CORPORA),
                   help=f"comma-separated subset of {','.join(CORPORA)}")
    p.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    p.add_argument("--nj", type=int, default=os.cpu_count() or 1, help="parallel synthesis jobs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    corpora = [c for c in args.corpora.split(",") if c]
    cfg = load_config(args.config, args.size, args.seed)
    t0 = time.time()
    try:
        summary = build_corpora(cfg, args.out_dir, corpora, nj=args.nj)
    except SynthesisError as e:  # a missing engine or voice package: say what to install
        print(f"make_synth_corpora: {e}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    for name, stats in summary.items():
        size_mb = disk_usage(out / name) / 2**20
        print(f"{name:13s} {size_mb:8.1f} MB  {json.dumps(stats, sort_keys=True)}")
    print(f"stage 0 took {time.time() - t0:.1f} s; {disk_usage(out) / 2**20:.1f} MB under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
