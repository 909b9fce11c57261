"""Score (wav, keyword) pairs with an exported model.

Input lines: ``<wav path>\\t<keyword text>[\\t<label 0/1>]``. The output repeats each line with the
cosine score appended; with labels, AP, EER and AUC are printed. Any wav is mixed down to mono
and resampled to the model's rate, and features are computed as in training (lhotse Fbank from
the model's stored options, per-utterance mean normalisation). Any bad line is an error that
names it, and then nothing is written.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from pyadml.data.dataset import mean_normalize
from pyadml.data.features import fbank_extractor
from pyadml.data.trials import Trial
from pyadml.fileio import write_lines_atomic
from pyadml.models.export import load_model
from pyadml.score import metrics as M
from pyadml.score.embed import embed_features, embed_texts, score_trials
from pyadml.text import KeywordError


class PairsError(ValueError):
    pass


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Mono float32 at ``rate``: channels averaged, polyphase resampling."""
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt files
        raise PairsError(f"cannot read {path}: {e}") from None
    if audio.size == 0:
        raise PairsError(f"{path} holds no samples")
    audio = audio.mean(axis=1)
    if sr != rate:
        g = math.gcd(int(sr), int(rate))
        audio = resample_poly(audio, rate // g, int(sr) // g).astype(np.float32)
    if not np.all(np.isfinite(audio)):
        raise PairsError(f"{path} contains NaN or inf samples")
    return audio


def features_for(path: Path, extractor, rate: int, mean_norm: bool) -> np.ndarray:
    feats = np.asarray(extractor.extract(read_audio(path, rate), rate), dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise PairsError(f"{path} is too short for a single feature frame")
    return mean_normalize(feats) if mean_norm else feats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--pairs", required=True, help="TSV: wav<TAB>keyword[<TAB>label]")
    p.add_argument("--out", required=True, help="the input lines with a score column")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    pairs_path = Path(args.pairs)
    try:
        lines = pairs_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        print(f"score_pairs: cannot read {pairs_path}: {e}", file=sys.stderr)
        return 1
    try:
        loaded = load_model(args.model, device=args.device)
    except (OSError, ValueError) as e:
        print(f"score_pairs: {e}", file=sys.stderr)
        return 1
    feat_cfg = {k: v for k, v in loaded.features.items() if k != "mean_norm"}
    mean_norm = bool(loaded.features.get("mean_norm", True))
    rate = int(feat_cfg.get("sampling_rate", 16000))
    extractor = fbank_extractor(feat_cfg)

    rows = []  # (line number, line, wav, keyword, label or None)
    feats: dict[Path, np.ndarray] = {}
    phones_ok: set[str] = set()
    try:
        for n, line in enumerate(lines, 1):
            where = f"{pairs_path}:{n}"
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) not in (2, 3):
                raise PairsError(f"{where}: expected '<wav>\\t<keyword>[\\t<label>]', got "
                                 f"{len(parts)} tab-separated field(s)")
            wav, keyword = Path(parts[0]), parts[1]
            label = None
            if len(parts) == 3:
                if parts[2].strip() not in ("0", "1"):
                    raise PairsError(f"{where}: label must be 0 or 1, got {parts[2]!r}")
                label = int(parts[2])
            if rows and (label is None) != (rows[0][4] is None):
                raise PairsError(f"{where}: some lines have a label and some do not")
            if not wav.is_file():
                raise PairsError(f"{where}: no such wav file: {wav}")
            if keyword not in phones_ok:
                try:
                    if not loaded.phone_ids(keyword):
                        raise KeywordError(f"keyword {keyword!r} has no phones")
                except (KeywordError, KeyError) as e:
                    msg = e.args[0] if isinstance(e, KeyError) else str(e)
                    if repr(keyword) not in msg:
                        msg = f"keyword {keyword!r}: {msg}"
                    raise PairsError(f"{where}: {msg}") from None
                phones_ok.add(keyword)
            if wav not in feats:
                try:
                    feats[wav] = features_for(wav, extractor, rate, mean_norm)
                except PairsError as e:
                    raise PairsError(f"{where}: {e}") from None
            rows.append((n, line, wav, keyword, label))
    except PairsError as e:
        print(f"score_pairs: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"score_pairs: {pairs_path} holds no pairs", file=sys.stderr)
        return 1

    wavs = list(feats)
    emb = embed_features(loaded.model, [feats[w] for w in wavs], batch_size=args.batch_size)
    audio_emb = {str(w): e for w, e in zip(wavs, emb)}
    text_emb = embed_texts(loaded.model, phones_ok, loaded.phone_table, loaded.g2p)
    trials = [Trial(str(wav), kw, label or 0) for _, _, wav, kw, label in rows]
    scores = score_trials(trials, audio_emb, text_emb)
    write_lines_atomic(args.out, (f"{line}\t{s:.6f}" for (_, line, *_), s in zip(rows, scores)))
    print(f"score_pairs: {len(rows)} pairs ({len(wavs)} wavs, {len(text_emb)} keywords) -> {args.out}")

    if rows[0][4] is not None:
        labels = np.array([r[4] for r in rows])
        if 0 < labels.sum() < labels.size:
            print(f"AP  {100 * M.average_precision(scores, labels):.2f}%")
            print(f"EER {100 * M.eer(scores, labels):.2f}%")
            print(f"AUC {100 * M.auc(scores, labels):.2f}%")
        else:
            print("score_pairs: labels hold a single class; no AP/EER/AUC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
