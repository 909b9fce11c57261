"""Score the words of a test set's held-out espeak-ng and festival utterances spoken alone and
spoken as connected speech, by the same voice (pyadml.score.connected):

    python -m pyadml.bin.connected_check --model exp/<tag>/final.pt \\
        --cuts data/cuts/<set>.jsonl.gz --synth-config conf/synth.yaml \\
        --out-dir exp/<tag>/connected
"""

from __future__ import annotations

import argparse
import sys

from pyadml.score.clips import metrics_table
from pyadml.score.connected import connected_check
from pyadml.score.floor import FloorError, add_floor_args
from pyadml.score.pairs import PairsError
from pyadml.synth.voices import SynthesisError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--cuts", required=True, help="word cuts of stage 2 (.jsonl.gz)")
    p.add_argument("--synth-config", required=True, help="stage 0's conf/synth.yaml (its voices)")
    p.add_argument("--out-dir", required=True, help="clips, scores and metrics.json go here")
    p.add_argument("--max-utts", type=int, default=None, help="utterances per voice (default all)")
    p.add_argument("--seed", type=int, default=0)
    add_floor_args(p)
    args = p.parse_args(argv)
    try:
        from pyadml.synth.corpora import load_config

        cfg = load_config(args.synth_config, "mini")
        voices = cfg["voices"]["train"] + cfg["voices"]["heldout"]
        rows = connected_check(args.model, args.cuts, args.out_dir, voices, args.max_utts,
                               args.seed, floor_db=args.floor_db)
    except (PairsError, FloorError, SynthesisError, ValueError, OSError) as e:
        print(f"connected_check: {e}", file=sys.stderr)
        return 1
    lead = [("speaker", "<30", lambda r: r["speaker"]), ("mode", "<10", lambda r: r["mode"])]
    print("\n".join(metrics_table(rows, lead)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
