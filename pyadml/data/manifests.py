"""Where a named data set's manifests are: ``<corpus>_{recordings,supervisions}_<part>.jsonl.gz``
(lhotse's naming), and the set is called ``<corpus>_<part>`` in a recipe's run.sh."""

from __future__ import annotations

import os
from pathlib import Path


class SetNotFound(FileNotFoundError):
    """A set name that no stage-1 manifest answers to."""


def find_set_manifest(manifest_dir: str | os.PathLike, set_name: str, kind: str) -> Path:
    """``<dir>/<corpus>_<kind>_<part>.jsonl.gz`` with ``<corpus>_<part> == set_name``.

    Corpus and part names may hold underscores themselves, so every split is tried; exactly
    one must exist.
    """
    d = Path(manifest_dir)
    if not set_name or "/" in set_name:
        raise ValueError(f"bad set name {set_name!r}")
    found = []
    for i, c in enumerate(set_name):
        if c == "_" and 0 < i < len(set_name) - 1:
            path = d / f"{set_name[:i]}_{kind}_{set_name[i + 1:]}.jsonl.gz"
            if path.is_file():
                found.append(path)
    if len(found) > 1:
        raise ValueError(f"set {set_name!r} is ambiguous in {d}: {[p.name for p in found]}")
    if not found:
        have = sorted(p.name for p in d.glob(f"*_{kind}_*.jsonl.gz")) if d.is_dir() else []
        raise SetNotFound(
            f"set {set_name!r}: no {kind} manifest in {d}; expected <corpus>_{kind}_<part>.jsonl.gz "
            f"with <corpus>_<part> = {set_name} (e.g. {_example(set_name, kind)}); stage 1 wrote: "
            f"{', '.join(have) or 'nothing'}")
    return found[0]


def _example(set_name: str, kind: str) -> str:
    corpus, _, part = set_name.rpartition("_")
    return f"{corpus or set_name}_{kind}_{part}.jsonl.gz"


def load_set_manifests(manifest_dir: str | os.PathLike, set_name: str):
    """(RecordingSet, SupervisionSet) of a set named in run.sh."""
    from lhotse import load_manifest

    return (load_manifest(find_set_manifest(manifest_dir, set_name, "recordings")),
            load_manifest(find_set_manifest(manifest_dir, set_name, "supervisions")))
