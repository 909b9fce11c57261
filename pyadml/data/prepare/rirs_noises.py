"""The RIRS_NOISES corpus (room impulse responses and noises), through lhotse's own recipe."""

from __future__ import annotations

import os
from pathlib import Path

from pyadml.data.prepare.common import (CorpusError, _check_no_linked_wavs, _check_unique_stems,
                                        _corpus_dir_hint, _has_wav, _lines, _unreadable_wav, _where,
                                        note_input, write_manifest)
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

    The real RIRs are those ``real_rirs_isotropic_noises/rir_list`` names, as Kaldi reads them,
    where there is one: lhotse takes the wavs with "rir" in their names, which leaves out the
    AIR database's (``air_type1_air_binaural_office_0_1.wav``) without a word.

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
        dirs = sorted(set(RIR_PARTS.values()))
        # OpenSLR 26 ships the simulated RIRs alone as simulated_rirs_{8k,16k} (the DNS
        # challenge's copy as simulated_rirs_48k): lhotse's recipe reads only simulated_rirs/
        renamed = sorted(d for d in corpus_dir.glob("simulated_rirs_*") if _has_wav(d))
        hint = (f"; {renamed[0]} is OpenSLR 26's simulated RIRs under another name: rename it "
                f"to simulated_rirs (the name lhotse's recipe reads; RIRs at another rate than "
                f"the speech are resampled as they load)" if renamed else
                _corpus_dir_hint(corpus_dir, 'RIRS_NOISES', ('RIRS_NOISES',), dirs))
        raise CorpusError(f"{corpus_dir}: no wavs under {', '.join(dirs)}{hint}")
    for d in sorted({RIR_PARTS[p] for p in parts}):
        if d == "simulated_rirs":  # lhotse: <size>-<name> for <size>room/RoomNNN/<name>.wav
            for size in ("small", "medium", "large"):
                if (corpus_dir / d / f"{size}room").is_dir():
                    _check_unique_stems(corpus_dir / d / f"{size}room", f"RIRS_NOISES's {d}/",
                                        lambda wav, size=size: f"{size}-")
        else:
            _check_unique_stems(corpus_dir / d, f"RIRS_NOISES's {d}/")
    listed = _listed_real_rirs(corpus_dir)
    from lhotse.audio.utils import AudioLoadingError
    try:
        manifests = lhotse_prepare_rir_noise(
            corpus_dir, parts=[p for p in parts if not (p == "real_rir" and listed is not None)])
    except AudioLoadingError as e:
        raise _unreadable_wav(e, "RIRS_NOISES", "rirs_noises.zip") from None
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CorpusError(f"{corpus_dir}: lhotse could not prepare RIRS_NOISES: {e}") from None
    if listed is not None:
        manifests["real_rir"] = {"recordings": listed}
    # lhotse validates none of them: an empty wav (an interrupted unzip) failed in stage 3 with
    # 'empty range for randrange()' (a noise) or in stage 4 with 'attempt to get argmax of an
    # empty sequence' (an RIR), naming no file.
    for part, ms in manifests.items():
        for rec in ms["recordings"]:
            if rec.num_samples == 0:
                raise CorpusError(f"{rec.sources[0].source}: no samples (an empty wav); a "
                                  f"{part} recording needs audio: unpack rirs_noises.zip again, "
                                  f"or remove it")
    # real_rir and iso_noise share a directory: either may have found no files.
    if not any(len(m["recordings"]) for m in manifests.values()):
        raise CorpusError(f"{corpus_dir}: lhotse found no RIR or noise wavs")
    empty = {"recordings": RecordingSet.from_recordings([])}
    manifests = {p: manifests[p] if p in manifests else empty for p in RIR_PARTS}
    if output_dir is not None:
        for part, ms in manifests.items():
            write_manifest(Path(output_dir) / f"rir_recordings_{part}.jsonl.gz", ms["recordings"])
    return dict(manifests)


def _listed_real_rirs(corpus_dir: Path):
    """The RecordingSet of the RIRs that ``real_rirs_isotropic_noises/rir_list`` names, in its
    order, or None where there is no rir_list. A line is ``--rir-id <id> --room-id <room> <path>``
    with the path relative to the directory above RIRS_NOISES
    (``RIRS_NOISES/real_rirs_isotropic_noises/<name>.wav``); it is found under ``corpus_dir``
    whatever that directory is called. Recording ids are the file names without .wav, as
    lhotse's."""
    from lhotse import Recording, RecordingSet

    real = corpus_dir / RIR_PARTS["real_rir"]
    rir_list = real / "rir_list"
    if not rir_list.is_file():
        return None
    recordings, lines_of = [], {}
    for n, line in _lines(rir_list):
        fields = line.split()
        if len(fields) % 2 == 0 or fields[-1].startswith("--") or not all(
                f.startswith("--") for f in fields[:-1:2]):
            raise CorpusError(f"{_where(rir_list, n)}: expected '--rir-id <id> --room-id <room> "
                              f"<path>', found {line.strip()!r}")
        path = Path(fields[-1])
        if not path.is_absolute():
            inside = path.parts.index(real.name) + 1 if real.name in path.parts else None
            path = real.joinpath(*path.parts[inside:]) if inside else corpus_dir.parent / path
        if not path.is_file():
            raise CorpusError(f"{_where(rir_list, n)}: {path} does not exist (an interrupted "
                              f"unpacking of rirs_noises.zip?)")
        try:
            rec = Recording.from_file(path)
        except Exception as e:  # soundfile, audioread and lhotse raise several types
            raise CorpusError(f"{_where(rir_list, n)}: cannot read {path}: {e}") from None
        if rec.id in lines_of:
            raise CorpusError(f"{_where(rir_list, n)}: {path.name} repeats line {lines_of[rec.id]}")
        lines_of[rec.id] = n
        recordings.append(rec)
    if not recordings:  # cut short: it would leave every real RIR out
        raise CorpusError(f"{rir_list}: names no RIR; expected '--rir-id <id> --room-id <room> "
                          f"<path>' lines (an interrupted unpacking of rirs_noises.zip?)")
    return RecordingSet.from_recordings(recordings)
