"""Stage 7: average the last epoch checkpoints of exp/<tag> into the self-contained final.pt;
how many (up to N), or one of the last checkpoint's moving averages of the weights, is chosen
by dev AP when the training config's dev set is there.

Everything comes from the experiment directory: config.yaml, checkpoints/, and the lang
directory and fbank options that stage 6 copied into it."""

from __future__ import annotations

import argparse
import sys
import warnings

from pyadml.models.export import SELECT_MODES, export_experiment


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True, help="exp/<tag> with checkpoints/epoch-*.pt")
    p.add_argument("--avg", type=int, default=None,
                   help="average at most the last N epoch checkpoints (default: the config's 'average')")
    p.add_argument("--select", choices=SELECT_MODES, default="auto",
                   help="dev: keep the average of the last 1..N with the best dev AP (the training "
                        "config's data.dev and data.dev_trials); last: the last N; auto (default): "
                        "dev where the dev set is there, else last")
    p.add_argument("--weights", default=None, metavar="emaDECAY",
                   help="export this moving average of the last checkpoint's weights (training's "
                        "ema.decays; e.g. ema0.99, as the training log names it), not scored")
    p.add_argument("--out", default=None, help="default: <exp-dir>/final.pt")
    args = p.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, summary = export_experiment(args.exp_dir, args.avg, args.out, args.select,
                                           args.weights)
    except (OSError, ValueError) as e:
        print(f"export_model: {e}", file=sys.stderr)
        return 1
    for w in caught:
        print(f"export_model: warning: {w.message}", file=sys.stderr)
    print(f"export_model: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
