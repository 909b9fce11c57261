"""Word AP per speaker with every test cut's features frequency-warped (pyadml.score.warp):
does a held-out voice fail because its formants lie outside the training voices' range?

    python -m pyadml.bin.warp_check --model exp/<tag>/final.pt \\
        --cuts data/fbank/<set>.jsonl.gz --trials data/trials/<set>.tsv \\
        [--alphas 0.8,0.9,1.0,1.1,1.2] [--speakers <spk>,<spk>] [--out-dir exp/<tag>/warp]

alpha > 1 moves spectral peaks up (a shorter vocal tract), < 1 down; 1.0 is stage 8's figure.
"""

from __future__ import annotations

import argparse
import sys

from pyadml.score.warp import format_table, warp_check, write_result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--cuts", required=True, help="fbank cuts of stage 4 (.jsonl.gz)")
    p.add_argument("--trials", required=True, help="word trial list of stage 5 (.tsv)")
    p.add_argument("--alphas", default="0.8,0.9,1.0,1.1,1.2", help="comma-separated warp factors")
    p.add_argument("--speakers", default="", help="comma-separated speakers (default: all)")
    p.add_argument("--out-dir", default="", help="write warp_check.json and warp_check.md here")
    args = p.parse_args(argv)
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        p.error(f"--alphas: expected comma-separated numbers, got {args.alphas!r}")
    speakers = [s for s in args.speakers.split(",") if s] or None
    try:
        res = warp_check(args.model, args.cuts, args.trials, alphas, speakers)
    except (ValueError, OSError) as e:
        print(f"warp_check: {e}", file=sys.stderr)
        return 1
    if args.out_dir:
        write_result(res, args.out_dir)
    print(format_table(res), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
