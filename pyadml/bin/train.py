"""Train the keyword-spotting encoders; launched by steps/train.sh through torchrun."""

from __future__ import annotations

import argparse
import sys

from pyadml.train.lifeline import die_with_parent


def main(argv=None) -> int:
    die_with_parent()  # before the seconds of imports below: the launcher may die meanwhile
    from pyadml.train.config import load_config
    from pyadml.train.trainer import Trainer, report_training_error

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="training yaml (conf/train_*.yaml)")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--fresh", action="store_true",
                   help="move earlier checkpoints and metrics to <exp-dir>/previous/ and start anew")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume although the config differs from the checkpoint's (recorded)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. epochs=3")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        Trainer(cfg, args.exp_dir, resume=args.resume, fresh=args.fresh,
                allow_config_change=args.allow_config_change).run()
    except Exception as e:
        return report_training_error(e, args.exp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
