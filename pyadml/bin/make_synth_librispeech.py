"""Stage 0 of egs/librispeech_libriphrase: a miniature LibriSpeech with word alignments in
LibriSpeech's layout, plus the other embedded corpora it needs (libriphrase, musan,
rirs_noises, optionally wsj) from pyadml.synth.corpora, with the LibriPhrase stand-in's
speaker columns numbered as the LibriSpeech stand-in numbers its speakers."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from pyadml.synth.corpora import CORPORA, build_corpora, disk_usage, load_config
from pyadml.synth.librispeech import (
    build_librispeech,
    load_librispeech_config,
    relabel_libriphrase,
    speaker_numbers,
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True,
                   help="conf/synth.yaml (voices, audio, vocabulary, the other corpora)")
    p.add_argument("--librispeech-config", required=True, help="conf/synth_librispeech.yaml")
    p.add_argument("--size", default="mini", help="a key under 'sizes' in both configs")
    p.add_argument("--out-dir", required=True, help="one sub-directory per corpus is written here")
    p.add_argument("--corpora", default="librispeech,libriphrase,musan,rirs_noises",
                   help=f"comma-separated subset of librispeech,{','.join(CORPORA)}")
    p.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    p.add_argument("--nj", type=int, default=os.cpu_count() or 1, help="parallel synthesis jobs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    corpora = [c for c in args.corpora.split(",") if c]
    unknown = set(corpora) - set(CORPORA) - {"librispeech"}
    if unknown:
        print(f"make_synth_librispeech: unknown corpora {sorted(unknown)}", file=sys.stderr)
        return 1
    t0 = time.time()
    common = load_config(args.config, args.size, args.seed)
    cfg = load_librispeech_config(args.librispeech_config, common, args.size)
    out = Path(args.out_dir)
    summary = {}
    others = [c for c in corpora if c != "librispeech"]
    if others:
        summary.update(build_corpora(common, out, others, nj=args.nj))
    if "libriphrase" in others:
        n = relabel_libriphrase(out / "libriphrase", speaker_numbers(cfg))
        print(f"libriphrase: speaker columns numbered as LibriSpeech speakers ({n} rows rewritten)")
    if "librispeech" in corpora:
        summary["librispeech"] = build_librispeech(cfg, out, nj=args.nj)
    for name, stats in summary.items():
        size_mb = disk_usage(out / name) / 2**20
        print(f"{name:13s} {size_mb:8.1f} MB  {json.dumps(stats, sort_keys=True)}")
    print(f"stage 0 took {time.time() - t0:.1f} s; {disk_usage(out) / 2**20:.1f} MB under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
