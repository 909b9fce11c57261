"""Stage 1: corpus preparation into lhotse manifests, one preparer per corpus, by name.

Each ``prepare_<corpus>()`` validates its input and returns the manifests; with ``output_dir`` it
also writes ``<corpus>_{recordings,supervisions}_<part>.jsonl.gz`` there, atomically. Every
problem in the input raises :class:`CorpusError` naming the file (``file:line`` where there is a
line) and what was expected; nothing is dropped or resampled silently.

Preparers are registered by corpus name (:mod:`.registry`); a recipe adds its own with
``@register_corpus("mycorpus")`` in a file loaded by :func:`load_plugin` (``--plugin`` of
``pyadml.bin.prepare_manifests``). A corpus that is a Kaldi data directory plus a word CTM
needs no code: it is the built-in corpus ``kaldi``.

Kaldi data directories are parsed here rather than by ``lhotse.kaldi.load_kaldi_data_dir``:
that loader floors durations to milliseconds (so ``num_samples`` drifts from the file's), drops
unreadable recordings with a warning, needs ``kaldi_native_io`` for pipes and reports no line
numbers. The manifests are lhotse's own classes all the same, checked at the end by lhotse's
``validate_recordings_and_supervisions``.
"""

# Importing the corpus modules registers their preparers.
from pyadml.data.prepare.audio import read_sphere_header
from pyadml.data.prepare.common import SAMPLING_RATE, TIME_TOLERANCE, CorpusError, write_manifest
from pyadml.data.prepare.kaldi import prepare_kaldi, prepare_kaldi_dir
from pyadml.data.prepare.king_asr_066 import prepare_king_asr_066
from pyadml.data.prepare.librispeech import prepare_librispeech
from pyadml.data.prepare.libriphrase import LIBRIPHRASE_COLUMNS, LIBRIPHRASE_TYPES, prepare_libriphrase
from pyadml.data.prepare.musan import prepare_musan
from pyadml.data.prepare.registry import (
    corpora,
    get_preparer,
    load_plugin,
    prepare_corpus,
    register_corpus,
    summarize,
    summary_lines,
)
from pyadml.data.prepare.rirs_noises import RIR_PARTS, prepare_rir_noise
from pyadml.data.prepare.wsj import normalise_wsj_text, prepare_wsj

__all__ = [
    "CorpusError",
    "LIBRIPHRASE_COLUMNS",
    "LIBRIPHRASE_TYPES",
    "RIR_PARTS",
    "SAMPLING_RATE",
    "TIME_TOLERANCE",
    "corpora",
    "get_preparer",
    "load_plugin",
    "normalise_wsj_text",
    "prepare_corpus",
    "prepare_kaldi",
    "prepare_kaldi_dir",
    "prepare_king_asr_066",
    "prepare_wsj",
    "prepare_libriphrase",
    "prepare_librispeech",
    "prepare_musan",
    "prepare_rir_noise",
    "read_sphere_header",
    "register_corpus",
    "summarize",
    "summary_lines",
    "write_manifest",
]
