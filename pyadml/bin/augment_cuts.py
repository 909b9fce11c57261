"""Stage 3: write seeded augmented copies of word cuts (RIRs; noise, music, babble recordings).

Training: the clean cuts followed by --copies augmented copies of each. --eval: exactly one
augmented version per cut and no clean ones (the WSJ evaluation condition).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lhotse import CutSet, RecordingSet

from pyadml.data.augment import augment_cuts, augment_eval_cuts, load_augment_config, write_augmented
from pyadml.data.manifests import find_set_manifest

def _recordings(path: Path | None, what: str) -> RecordingSet | None:
    if path is None:
        print(f"augment_cuts: no {what} manifest given; {what} disabled")
        return None
    if not path.is_file():
        print(f"augment_cuts: {path} not found; {what} disabled")
        return None
    recs = RecordingSet.from_file(path)  # None for an empty file (a part the corpus lacks)
    if recs is None or len(recs) == 0:
        print(f"augment_cuts: {path} is empty; {what} disabled")
        return None
    return recs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="conf/augment.yaml")
    p.add_argument("--cuts", required=True, help="input word cuts (.jsonl.gz)")
    p.add_argument("--manifest-dir", default=None,
                   help="stage 1's manifests: --noise etc. name sets there, not files")
    p.add_argument("--noise", default=None, help="recordings of noises (MUSAN noise/)")
    p.add_argument("--music", default=None, help="recordings of music (MUSAN music/)")
    p.add_argument("--babble", default=None, help="recordings of speech for babble (MUSAN speech/)")
    p.add_argument("--rirs", default=None, help="recordings of room impulse responses")
    p.add_argument("--out", required=True, help="output cuts (.jsonl.gz)")
    p.add_argument("--copies", type=int, default=None, help="overrides the config's copies")
    p.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    p.add_argument("--eval", action="store_true",
                   help="one augmented version per cut, no clean cuts, no speed perturbation")
    args = p.parse_args(argv)

    try:
        cfg = load_augment_config(args.config)
    except (OSError, ValueError) as e:
        print(f"augment_cuts: {e}", file=sys.stderr)
        return 1
    seed = cfg["seed"] if args.seed is None else args.seed
    copies = cfg["copies"] if args.copies is None else args.copies
    if copies < 1:
        p.error("--copies must be >= 1")
    if not Path(args.cuts).is_file():
        p.error(f"no such file: {args.cuts}")
    out = Path(args.out)
    if not out.name.endswith(".jsonl.gz"):
        p.error(f"--out must end with .jsonl.gz, got {out}")

    sources = {}
    def source(name: str | None) -> Path | None:
        if not name or not args.manifest_dir:
            return Path(name) if name else None
        return find_set_manifest(args.manifest_dir, name, "recordings")

    try:
        for kind in ("noise", "music", "babble"):
            sources[kind] = _recordings(source(getattr(args, kind)), kind)
        rirs = _recordings(source(args.rirs), "RIR (reverb)")
    except (FileNotFoundError, ValueError) as e:  # a named set that stage 1 did not write
        print(f"augment_cuts: {e}", file=sys.stderr)
        return 1

    # Lazy input: the output is streamed cut by cut, never held in memory.
    cuts = CutSet.from_jsonl_lazy(args.cuts)
    t0 = time.time()
    try:
        if args.eval:
            result = augment_eval_cuts(cuts, rirs=rirs, **sources, cfg=cfg, seed=seed)
        else:
            result = augment_cuts(cuts, rirs=rirs, **sources, cfg=cfg, seed=seed,
                                  copies=copies, keep_clean=True)
        total, counts = write_augmented(result, out)
    except ValueError as e:
        print(f"augment_cuts: {e}", file=sys.stderr)
        return 1

    summary = "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"augment_cuts: {total} cuts -> {out} ({time.time() - t0:.1f} s)  {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
