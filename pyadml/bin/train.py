"""Train the keyword-spotting encoders; launched by steps/train.sh through torchrun."""

from __future__ import annotations

import argparse
import sys

from pyadml.train.config import load_config
from pyadml.train.trainer import Trainer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="training yaml (conf/train_*.yaml)")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. epochs=3")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    Trainer(cfg, args.exp_dir, resume=args.resume).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
