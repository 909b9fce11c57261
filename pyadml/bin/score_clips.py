"""Score keyword clips against every keyword of their set (pyadml.score.clips): AP, EER, AUC
and top-1, e.g. for a real-speech development set such as wake-word recordings.

    python -m pyadml.bin.score_clips --model exp/<tag>/final.pt --clips clips.tsv [--out-dir D]
"""

from __future__ import annotations

import argparse
import json
import sys

from pyadml.score.clips import score_clips
from pyadml.score.floor import add_floor_args
from pyadml.score.norm import add_norm_args
from pyadml.score.phrase import add_phrase_args
from pyadml.score.pairs import PairsError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--clips", required=True, help="TSV: <audio path relative to it>\\t<keyword>")
    p.add_argument("--out-dir", default=None, help="scores.tsv and metrics.json go here")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--vad", action="store_true", help="energy voice-activity front end: cut each file to the frames within 30 dB of "
                   "its loudest plus 50 ms before scoring (off: the paper's protocol, audio as given)")
    p.add_argument("--warp", type=float, default=1.0,
                   help="diagnostic: warp every clip's features by this factor (> 1 moves spectral "
                   "peaks up, as a shorter vocal tract; pyadml.score.warp); default 1, none")
    add_floor_args(p)
    add_norm_args(p)
    add_phrase_args(p)
    args = p.parse_args(argv)
    try:
        m = score_clips(args.model, args.clips, args.out_dir, args.batch_size, vad=args.vad,
                        norm=args.score_norm, cohort_size=args.cohort_size,
                        phrase=args.phrase_score, warp=args.warp,
                        words_onnx=args.words_onnx, jobs=args.jobs, floor_db=args.floor_db)
    except PairsError as e:
        print(f"score_clips: {e}", file=sys.stderr)
        return 1
    line = (f"{m['clips']} clips x {len(m['keywords'])} keywords: AP {100 * m['AP']:.2f}%  "
            f"EER {100 * m['EER']:.2f}%  AUC {100 * m['AUC']:.2f}%  top-1 {100 * m['top1']:.2f}%")
    print(f"score_clips: {line}")
    if args.out_dir:
        from pyadml.fileio import write_text_atomic

        write_text_atomic(f"{args.out_dir}/metrics.json", json.dumps(m, indent=1) + "\n")
        write_text_atomic(f"{args.out_dir}/summary.txt", line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
