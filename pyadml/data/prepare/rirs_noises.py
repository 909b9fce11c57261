"""The RIRS_NOISES corpus (room impulse responses and noises), through lhotse's own recipe."""

from __future__ import annotations

import os
from pathlib import Path

from pyadml.data.prepare.common import CorpusError, _check_no_linked_wavs, _has_wav, note_input, write_manifest
from pyadml.data.prepare.registry import register_corpus

# Our part name -> the RIRS_NOISES directory lhotse reads it from.
RIR_PARTS = {
    "sim_rir": "simulated_rirs",
    "real_rir": "real_rirs_isotropic_noises",
    "iso_noise": "real_rirs_isotropic_noises",
    "point_noise": "pointsource_noises",
}


@register_corpus("rirs_noises")
def prepare_rir_noise(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """lhotse's RIRS_NOISES recipe over the parts whose directories exist; writes
    ``rir_recordings_<part>.jsonl.gz`` (lhotse itself would write ``sim-rir_recordings_all``).

    A part with no wavs (a copy without simulated_rirs/) gets an empty manifest: it replaces the
    one an earlier stage 1 wrote (the embedded stand-in's), which stage 3 would otherwise go on
    using without a word; stage 3 turns off a kind whose manifest is empty, and says so."""
    from lhotse import RecordingSet
    from lhotse.recipes import prepare_rir_noise as lhotse_prepare_rir_noise

    corpus_dir = Path(corpus_dir).absolute()  # manifests load from any directory (a copied recipe)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: RIRS_NOISES directory does not exist")
    note_input(corpus_dir)  # a file added to it later reruns stage 1
    _check_no_linked_wavs(corpus_dir, "RIRS_NOISES")
    parts = [p for p, d in RIR_PARTS.items() if _has_wav(corpus_dir / d)]
    if not parts:
        raise CorpusError(f"{corpus_dir}: no wavs under {', '.join(sorted(set(RIR_PARTS.values())))}")
    try:
        manifests = lhotse_prepare_rir_noise(corpus_dir, parts=parts)
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CorpusError(f"{corpus_dir}: lhotse could not prepare RIRS_NOISES: {e}") from None
    # real_rir and iso_noise share a directory: either may have found no files.
    if not any(len(m["recordings"]) for m in manifests.values()):
        raise CorpusError(f"{corpus_dir}: lhotse found no RIR or noise wavs")
    manifests = {p: manifests[p] if p in manifests else {"recordings": RecordingSet.from_recordings([])}
                 for p in RIR_PARTS}
    if output_dir is not None:
        for part, ms in manifests.items():
            write_manifest(Path(output_dir) / f"rir_recordings_{part}.jsonl.gz", ms["recordings"])
    return dict(manifests)
