"""Kill training at N random steps (SIGKILL of the whole job or of torchrun alone), resume
each time, and compare the final model with an uninterrupted run (pyadml.train.kill_campaign).

    python -m pyadml.bin.kill_campaign --config conf/train_tiny.yaml --work-dir exp/kills \\
        [--kills 10] [--seed 0] data.train=... data.lang=... data.fbank_config=...
"""

from __future__ import annotations

import argparse
import sys

from pyadml.train.kill_campaign import run_campaign


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training yaml")
    p.add_argument("--work-dir", required=True, help="reference/ and killed/ experiments go here")
    p.add_argument("--kills", type=int, default=10, help="how many times to kill (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill times and modes")
    p.add_argument("--train-sh", default="steps/train.sh")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides of the config")
    args = p.parse_args(argv)
    if args.kills < 1:
        p.error(f"--kills must be >= 1, got {args.kills}")
    try:
        res = run_campaign(args.config, args.work_dir, args.overrides, args.kills, args.seed,
                           args.train_sh)
    except (RuntimeError, FileNotFoundError) as e:
        print(f"kill_campaign: {e}", file=sys.stderr)
        return 1
    return 0 if res.max_abs_diff == 0.0 and res.orphans == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
