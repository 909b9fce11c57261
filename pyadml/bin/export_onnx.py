"""Export final.pt's two encoders to ONNX for the torch-free onnxruntime backend.

  python -m pyadml.bin.export_onnx --model exp/adml_nomal_mini/final.pt --out-dir exp/adml_nomal_mini/onnx

Writes audio_encoder.onnx, text_encoder.onnx (dynamic batch and time axes) and spotter.json
(tokenizer, fbank options, embedding size); then checks onnxruntime against torch on random
features and prints the largest difference. Detector models (scorer phonmatchnet | cmcd) have
no export; ``--print-scorer`` prints a model's scorer ("cosine" or the head's name) and exits,
for scripts that choose between onnxruntime and torch. ``--check`` exports nothing: it exits 0
when --out-dir already holds a whole export of this very model (the sha256 its spotter.json
records), else 1 with the reason, so that a script can reuse an export made before.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--out-dir", default=None)
    p.add_argument("--print-scorer", action="store_true",
                   help="print the model's scorer (cosine, or a detector head's name) and exit")
    p.add_argument("--check", action="store_true",
                   help="export nothing; exit 0 if --out-dir is already a whole export of this "
                   "model, else 1 with the reason")
    args = p.parse_args(argv)
    if args.print_scorer:
        import torch

        try:
            meta = torch.load(args.model, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            print(f"export_onnx: cannot read {args.model}: {e}", file=sys.stderr)
            return 1
        print(meta.get("scorer", "cosine") if isinstance(meta, dict) else "cosine")
        return 0
    if args.out_dir is None:
        p.error("--out-dir is required (except with --print-scorer)")

    from pyadml.spot.audio import SpotError
    from pyadml.spot.onnx_export import check_export, export_onnx, self_check

    if args.check:
        try:
            check_export(args.out_dir, args.model)
        except (SpotError, OSError) as e:
            print(f"export_onnx: {e}", file=sys.stderr)
            return 1
        print(f"export_onnx: {args.out_dir} is a whole export of {args.model}")
        return 0
    try:
        export_onnx(args.model, args.out_dir)
        diff = self_check(args.model, args.out_dir)
    except SpotError as e:
        print(f"export_onnx: {e}", file=sys.stderr)
        return 1
    print(f"export_onnx: {args.model} -> {args.out_dir}; onnxruntime vs torch max abs diff: "
          f"audio {diff['audio']:.2e}, text {diff['text']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
