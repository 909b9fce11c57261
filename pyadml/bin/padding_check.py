"""Score the same word clips with 0.05 s and 1 s of context (silence under a low white noise),
with and without the energy voice-activity front end (pyadml.score.padding); with --floor-db,
after the level-relative floor (pyadml.score.floor):

    python -m pyadml.bin.padding_check --model exp/<tag>/final.pt \\
        --cuts data/cuts/<set>.jsonl.gz --out-dir exp/<tag>/padding
"""

from __future__ import annotations

import argparse
import sys

from pyadml.score.clips import metrics_table
from pyadml.score.floor import FloorError, add_floor_args
from pyadml.score.pairs import PairsError
from pyadml.score.padding import padding_check


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--cuts", required=True, help="word cuts of stage 2 (.jsonl.gz)")
    p.add_argument("--out-dir", required=True, help="clips, scores and metrics.json go here")
    p.add_argument("--pads", default="0.05,1.0", help="seconds of context on each side")
    p.add_argument("--max-clips", type=int, default=200)
    p.add_argument("--noise-db", type=float, default=-40.0,
                   help="white noise under each clip, dB relative to the word's power")
    p.add_argument("--seed", type=int, default=0)
    add_floor_args(p)
    args = p.parse_args(argv)
    try:
        pads = tuple(float(x) for x in args.pads.split(","))
    except ValueError:
        p.error(f"--pads: expected comma-separated seconds, got {args.pads!r}")
    try:
        rows = padding_check(args.model, args.cuts, args.out_dir, pads, args.max_clips,
                             args.noise_db, args.seed, floor_db=args.floor_db)
    except (PairsError, FloorError, ValueError, OSError) as e:
        print(f"padding_check: {e}", file=sys.stderr)
        return 1
    lead = [("pad (s)", ">8", lambda r: f"{r['pad']:g}"),
            ("VAD", ">4", lambda r: "on" if r["vad"] else "off")]
    print("\n".join(metrics_table(rows, lead)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
