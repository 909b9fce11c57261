"""The King-ASR-066 corpus: a Kaldi data directory ``data/`` with ``data/words.ctm``."""

from __future__ import annotations

import os
from pathlib import Path

from pyadml.data.prepare.common import CorpusError
from pyadml.data.prepare.kaldi import prepare_kaldi_dir
from pyadml.data.prepare.registry import register_corpus


@register_corpus("king_asr_066")
def prepare_king_asr_066(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """King-ASR-066 (or any corpus in its place): ``data/`` Kaldi directory + ``data/words.ctm``."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: King-ASR-066 corpus directory does not exist")
    return prepare_kaldi_dir(corpus_dir / "data", ctm=corpus_dir / "data" / "words.ctm",
                             corpus="king_asr_066", part="train", output_dir=output_dir)
