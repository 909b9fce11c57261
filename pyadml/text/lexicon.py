"""Kaldi-format lexicon.txt and phones.txt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from pyadml.fileio import write_lines_atomic

EPS = "<eps>"


class PhoneTable:
    """Symbol table with ``<eps>`` at 0, which doubles as the padding id of the text encoder.

    The table holds the whole G2P inventory, not only the phones seen in some corpus, so ids
    are the same for every corpus and a keyword typed later always maps.
    """

    def __init__(self, symbols: Sequence[str]):
        symbols = [s for s in symbols if s != EPS]
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicate phone symbols")
        self.symbols = [EPS] + list(symbols)
        self.ids = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, phones: Sequence[str]) -> list[int]:
        try:
            return [self.ids[p] for p in phones]
        except KeyError as e:
            raise KeyError(f"phone {e.args[0]!r} is not in the phone table") from None

    def write(self, path: str | os.PathLike) -> None:
        write_lines_atomic(path, (f"{s} {i}" for i, s in enumerate(self.symbols)))

    @classmethod
    def read(cls, path: str | os.PathLike) -> "PhoneTable":
        entries = []
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{n}: expected '<symbol> <id>', got {line!r}")
            entries.append((int(parts[1]), parts[0]))
        entries.sort()
        if [i for i, _ in entries] != list(range(len(entries))) or entries[0][1] != EPS:
            raise ValueError(f"{path}: ids must run 0..N-1 with {EPS} at 0")
        return cls([s for _, s in entries])


def write_lexicon(path: str | os.PathLike, lexicon: Mapping[str, Sequence[str]]) -> None:
    """One ``word phone phone ...`` line per word, sorted by word, as Kaldi's lexicon.txt."""
    write_lines_atomic(path, (f"{w} {' '.join(lexicon[w])}" for w in sorted(lexicon)))


def read_lexicon(path: str | os.PathLike) -> dict[str, list[str]]:
    lex: dict[str, list[str]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"{path}:{n}: expected 'word phone [phone ...]', got {line!r}")
        lex.setdefault(parts[0], parts[1:])
    return lex
