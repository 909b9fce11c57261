"""The MUSAN noise corpus, through lhotse's own recipe."""

from __future__ import annotations

import os
from pathlib import Path

from pyadml.data.prepare.common import (CorpusError, _check_no_linked_wavs, _check_unique_stems,
                                        _corpus_dir_hint, _has_wav, _lines, _unreadable_wav, _where,
                                        note_input, write_manifest)
from pyadml.data.prepare.registry import register_corpus

MUSAN_PARTS = ("music", "noise", "speech")


@register_corpus("musan")
def prepare_musan(corpus_dir: str | os.PathLike, output_dir=None) -> dict:
    """lhotse's MUSAN recipe over the parts (music, noise, speech) that hold wavs; writes
    ``musan_recordings_<part>.jsonl.gz`` (and ``musan_supervisions_music.jsonl.gz``).

    A part with no wavs (a partial copy: only noise/) gets empty manifests: they replace those
    an earlier stage 1 wrote (the embedded stand-in's), which stage 3 would otherwise go on
    mixing in without a word; stage 3 turns off a kind whose manifest is empty, and says so."""
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_musan as lhotse_prepare_musan

    corpus_dir = Path(corpus_dir).absolute()  # manifests load from any directory (a copied recipe)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: MUSAN directory does not exist")
    note_input(corpus_dir)  # a file added to it later reruns stage 1
    _check_no_linked_wavs(corpus_dir, "MUSAN")
    parts = [p for p in MUSAN_PARTS if _has_wav(corpus_dir / p)]
    if not parts:
        raise CorpusError(f"{corpus_dir}: no wavs under music/, noise/ or speech/"
                          f"{_corpus_dir_hint(corpus_dir, 'MUSAN', ('musan',), MUSAN_PARTS)}")
    for part in parts:
        _check_unique_stems(corpus_dir / part, f"MUSAN's {part}/")
    # Music with no ANNOTATIONS line (its wavs copied without them): lhotse's validation of the
    # empty supervision set stopped with 'IndexError: list index out of range'. The annotations
    # (genres, vocals) are not needed to mix music in: its recordings, with no supervisions.
    unannotated = "music" in parts and not _check_music_annotations(corpus_dir / "music")
    from lhotse.audio.utils import AudioLoadingError
    try:
        by_lhotse = [p for p in parts if not (p == "music" and unannotated)]
        manifests = lhotse_prepare_musan(corpus_dir, parts=by_lhotse) if by_lhotse else {}
        if unannotated:
            from lhotse.qa import validate
            from lhotse.recipes.musan import scan_recordings

            music = scan_recordings(corpus_dir / "music")
            validate(music)
            manifests["music"] = {"recordings": music,
                                  "supervisions": SupervisionSet.from_segments([])}
    except AudioLoadingError as e:
        raise _unreadable_wav(e, "MUSAN", "musan.tar.gz") from None
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CorpusError(f"{corpus_dir}: lhotse could not prepare MUSAN: {e}") from None
    for part in MUSAN_PARTS:
        if part not in manifests:
            manifests[part] = {"recordings": RecordingSet.from_recordings([])}
            if part == "music":
                manifests[part]["supervisions"] = SupervisionSet.from_segments([])
    if output_dir is not None:
        for part, ms in manifests.items():
            for key, m in ms.items():
                write_manifest(Path(output_dir) / f"musan_{key}_{part}.jsonl.gz", m)
    return manifests


def _check_music_annotations(music: Path) -> int:
    """Each line of music/*/ANNOTATIONS, as lhotse reads them, is '<utt> <genres> <vocals Y|N>
    <musician>' and names a wav under music/ (lhotse stopped with 'generator raised
    StopIteration' or 'not enough values to unpack', naming no file). Returns the line count."""
    wavs = {p.stem for p in music.rglob("*.wav")}
    count = 0
    annotated: dict[str, str] = {}
    for ann in sorted(music.rglob("ANNOTATIONS")):
        with open(ann, "rb") as f:
            if f.read(3) == b"\xef\xbb\xbf":
                # lhotse reads it as part of the first file name: 'generator raised StopIteration'
                raise CorpusError(f"{_where(ann, 1)}: starts with a byte-order mark (a Windows "
                                  f"editor's), which lhotse's MUSAN recipe reads as part of the "
                                  f"first file name; save it as UTF-8 without one")
        for n, line in _lines(ann):
            count += 1
            fields = line.split()
            if len(fields) < 4:
                raise CorpusError(f"{_where(ann, n)}: expected '<file> <genres> <vocals Y|N> "
                                  f"<musician>' (4 fields), found {len(fields)}: {line.strip()!r}")
            if fields[0] not in wavs:
                raise CorpusError(f"{_where(ann, n)}: {fields[0]}.wav is not under {music} (an "
                                  f"interrupted unpacking of musan.tar.gz?); unpack it again")
            if fields[0] in annotated:  # lhotse: 'SupervisionSet has supervisions with duplicated IDs'
                raise CorpusError(f"{_where(ann, n)}: {fields[0]} is annotated a second time (first "
                                  f"at {annotated[fields[0]]}); expected one line per file")
            annotated[fields[0]] = _where(ann, n)
    return count
