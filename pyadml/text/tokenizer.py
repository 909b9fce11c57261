"""The one text-to-phones route: normalise, look each word up in the lexicon, else the offline
G2P with the lang directory's options, then phone ids from its phone table.

Training, dev AP, export, scoring, ``score_pairs`` and the keyword spotter all build their
``Tokenizer`` from the lang directory that stage 2 writes (``lexicon.txt``, ``phones.txt``,
``g2p.yaml``), or from the copy that ``final.pt`` carries, so a word is pronounced the same
way everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from pyadml.fileio import write_text_atomic
from pyadml.text.g2p import G2P
from pyadml.text.lexicon import PhoneTable, read_lexicon, write_lexicon
from pyadml.text.normalize import KeywordError

G2P_OPTIONS = ("strip_stress", "word_boundary")


def check_g2p_options(options: Mapping, where: str) -> dict:
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}: expected a mapping of G2P options {G2P_OPTIONS}")
    unknown = set(options) - set(G2P_OPTIONS)
    if unknown:
        raise ValueError(f"{where}: unknown G2P option(s) {sorted(unknown)}; known: {G2P_OPTIONS}")
    strip = options.get("strip_stress", False)
    if not isinstance(strip, bool):
        raise ValueError(f"{where}: strip_stress must be true or false, got {strip!r}")
    wb = options.get("word_boundary")
    if wb is not None and (not isinstance(wb, str) or not wb or any(c.isspace() for c in wb)):
        raise ValueError(f"{where}: word_boundary must be a token without spaces or null, got {wb!r}")
    return {"strip_stress": strip, "word_boundary": wb}


class Tokenizer:
    """Keyword or transcript text -> phones -> phone ids.

    ``words(text)`` are the normalised words (KeywordError when nothing is pronounceable);
    a word's phones come from ``lexicon`` when it is there, else from the offline G2P;
    ``word_boundary`` (a G2P option) goes between the words of a phrase.
    """

    def __init__(self, phone_table: PhoneTable, lexicon: Mapping[str, Sequence[str]],
                 g2p_options: Mapping | None = None):
        self.g2p_options = check_g2p_options(g2p_options or {}, "tokenizer")
        self.g2p = G2P(**self.g2p_options)
        self.phone_table = phone_table
        self.lexicon = {w: list(p) for w, p in lexicon.items()}
        self._ids: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_lang_dir(cls, lang_dir: str | os.PathLike) -> "Tokenizer":
        lang = Path(lang_dir)
        for name in ("phones.txt", "lexicon.txt", "g2p.yaml"):
            if not (lang / name).is_file():
                raise FileNotFoundError(
                    f"{lang / name}: missing; a lang directory holds phones.txt, lexicon.txt and "
                    f"g2p.yaml (stage 2 writes them)")
        options = yaml.safe_load((lang / "g2p.yaml").read_text(encoding="utf-8")) or {}
        check_g2p_options(options, str(lang / "g2p.yaml"))
        return cls(PhoneTable.read(lang / "phones.txt"), read_lexicon(lang / "lexicon.txt"),
                   options)

    @classmethod
    def build(cls, texts: Iterable[str], g2p_options: Mapping | None = None) -> "Tokenizer":
        """A lexicon over every word of ``texts`` and the G2P's whole phone inventory."""
        options = check_g2p_options(g2p_options or {}, "g2p options")
        g2p = G2P(**options)
        return cls(PhoneTable(g2p.inventory), g2p.lexicon(list(texts)), options)

    @classmethod
    def build_from_files(cls, kaldi_texts: Iterable[str | os.PathLike],
                         keyword_lists: Iterable[str | os.PathLike] = (),
                         g2p_options: Mapping | None = None) -> "Tokenizer":
        """``build`` over Kaldi text files (``<utt-id> <words>``) and keyword lists (one per
        line); a line that cannot be pronounced is a KeywordError naming file:line."""
        options = check_g2p_options(g2p_options or {}, "g2p options")
        g2p = G2P(**options)
        lexicon: dict[str, list[str]] = {}
        for where, text in read_text_lines(kaldi_texts, keyword_lists):
            try:
                for w in g2p.words(text):
                    if w not in lexicon:
                        lexicon[w] = g2p.word(w)
            except KeywordError as e:
                raise KeywordError(f"{where}: {e}") from None
        return cls(PhoneTable(g2p.inventory), lexicon, options)

    def to_dict(self) -> dict:
        """Plain data for ``final.pt``: phones (without <eps>), lexicon and G2P options."""
        return {"phones": self.phone_table.symbols[1:], "lexicon": dict(self.lexicon),
                "g2p": dict(self.g2p_options)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Tokenizer":
        return cls(PhoneTable(d["phones"]), d.get("lexicon") or {}, d.get("g2p") or {})

    def write_lang_dir(self, lang_dir: str | os.PathLike) -> None:
        lang = Path(lang_dir)
        write_lexicon(lang / "lexicon.txt", self.lexicon)
        self.phone_table.write(lang / "phones.txt")
        write_text_atomic(lang / "g2p.yaml", yaml.safe_dump(self.g2p_options, sort_keys=True))

    # ------------------------------------------------------------------ text to phones
    def words(self, text: str) -> list[str]:
        return self.g2p.words(text)

    def word_phones(self, word: str) -> list[str]:
        pron = self.lexicon.get(word)
        return list(pron) if pron is not None else self.g2p.word(word)

    def phones(self, text: str) -> list[str]:
        out: list[str] = []
        for i, w in enumerate(self.words(text)):
            if i and self.g2p.word_boundary:
                out.append(self.g2p.word_boundary)
            out += self.word_phones(w)
        return out

    def encode(self, text: str) -> list[int]:
        """Phone ids of a keyword or phrase (cached per text); KeywordError names the text."""
        ids = self._ids.get(text)
        if ids is None:
            phones = self.phones(text)
            try:
                ids = self.phone_table.encode(phones)
            except KeyError as e:
                raise KeywordError(f"keyword {text!r}: {e.args[0]}") from None
            if not ids:
                raise KeywordError(f"keyword {text!r} has no phones")
            self._ids[text] = ids
        return ids

    __call__ = encode

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()


def read_text_lines(kaldi_texts, keyword_lists) -> list[tuple[str, str]]:
    """(file:line, text) of Kaldi text files and keyword lists."""
    texts = []
    for path in kaldi_texts:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise KeywordError(f"{path}:{n}: expected '<utt-id> <words>', got {line!r}")
            texts.append((f"{path}:{n}", parts[1]))
    for path in keyword_lists:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                raise KeywordError(f"{path}:{n}: empty keyword")
            texts.append((f"{path}:{n}", line.strip()))
    return texts
