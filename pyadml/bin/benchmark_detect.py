"""Benchmark the keyword spotter: offline RTF over N minutes with 10 keywords, streaming latency,
onnxruntime vs torch at batch 1; or refit the seconds-per-phone constant on a CTM.

  python -m pyadml.bin.benchmark_detect --model exp/adml_nomal_mini/final.pt [--minutes 60] [--scp wav.scp]
  python -m pyadml.bin.benchmark_detect --model exp/adml_nomal_mini/final.pt --calibrate <training corpus>/data/words.ctm
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--onnx-dir", help="an export_onnx directory (default: export to a temp dir)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--keywords", help="comma-separated (default: 10 wake words)")
    p.add_argument("--scp", help="wav.scp of recordings to loop as background (default: synthetic)")
    p.add_argument("--scan-steps", default="1,2", help="scan steps to time, e.g. 1,2,3")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--window-scale", type=float, help="KeywordSpotter's window_scale (default its own)")
    p.add_argument("--calibrate", metavar="CTM", help="only fit duration = edge + per_phone * phones")
    p.add_argument("--json", help="also write the report as JSON here")
    args = p.parse_args(argv)

    if args.calibrate:
        from pyadml.models.export import load_model
        from pyadml.spot.calibrate import fit_durations

        fit = fit_durations(args.calibrate, load_model(args.model).tokenizer)
        print(f"{args.calibrate}: duration = {fit['edge']:.3f} s + {fit['per_phone']:.4f} s x phones "
              f"(RMSE {fit['rmse']:.3f} s, {fit['words']} words; plain ratio {fit['ratio']:.4f} s/phone)")
        return 0
    from pyadml.spot.benchmark import KEYWORDS, run

    kws = [k.strip() for k in args.keywords.split(",")] if args.keywords else KEYWORDS
    steps = tuple(int(s) for s in args.scan_steps.split(","))
    report = run(args.model, args.minutes, kws, steps, args.scp, args.threshold, args.onnx_dir,
                 window_scale=args.window_scale)
    if args.json:
        from pyadml.fileio import write_text_atomic

        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
