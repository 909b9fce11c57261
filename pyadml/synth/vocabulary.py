"""The word list of the embedded corpora: frequent English words that CMUdict knows.

Junk tokens that a frequency list carries (abbreviations, letter names, contraction fragments,
roman numerals) would teach the model to spell letters; they are filtered out.
"""

from __future__ import annotations

import re

from pyadml.text.g2p import cmu_dictionary

# Letter names as CMUdict spells them when a word is read letter by letter ("tv", "fbi").
_LETTER_NAMES = {
    "a": "EY1", "b": "B IY1", "c": "S IY1", "d": "D IY1", "e": "IY1", "f": "EH1 F",
    "g": "JH IY1", "h": "EY1 CH", "i": "AY1", "j": "JH EY1", "k": "K EY1", "l": "EH1 L",
    "m": "EH1 M", "n": "EH1 N", "o": "OW1", "p": "P IY1", "q": "K Y UW1", "r": "AA1 R",
    "s": "EH1 S", "t": "T IY1", "u": "Y UW1", "v": "V IY1", "w": "D AH1 B AH0 L Y UW0",
    "x": "EH1 K S", "y": "W AY1", "z": "Z IY1",
}
_JUNK = {
    # contraction fragments and web/abbreviation tokens that CMUdict happens to list
    "didn", "doesn", "isn", "wasn", "aren", "weren", "hasn", "haven", "hadn", "couldn",
    "wouldn", "shouldn", "ain", "ll", "ve", "re", "em", "etc", "vs", "com", "org", "www",
    "http", "https", "html", "php", "jpg", "pdf", "inc", "ltd", "corp", "dept", "govt",
    "ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi", "xii", "xiii", "xx", "lol", "omg",
    "ok", "okay", "yeah", "hmm", "uh", "um", "oh", "ah", "ha", "haha", "mm", "eh",
}


def _strip(pron: list[str]) -> str:
    return " ".join(re.sub(r"\d", "", p) for p in pron)


def _spelled_out(word: str, pron: list[str]) -> bool:
    letters = " ".join(_LETTER_NAMES[c] for c in word)
    return _strip(pron) == _strip(letters.split())


def is_clean_word(word: str) -> bool:
    """A plain English word: a-z only, a vowel letter, in CMUdict, not spelled letter by letter."""
    if not re.fullmatch(r"[a-z]{2,14}", word) or word in _JUNK:
        return False
    if not re.search(r"[aeiouy]", word):
        return False
    prons = cmu_dictionary().get(word)
    if not prons:
        return False
    return not any(_spelled_out(word, p) for p in prons)


def frequent_words(n: int, language: str = "en") -> list[str]:
    """The ``n`` most frequent clean words, most frequent first."""
    from wordfreq import top_n_list

    words: list[str] = []
    pool = max(4 * n, 2000)
    while True:
        candidates = top_n_list(language, pool)
        words = [w for w in candidates if is_clean_word(w)]
        if len(words) >= n or pool >= len(candidates) + 1 and len(candidates) < pool:
            break
        pool *= 2
    if len(words) < n:
        raise ValueError(f"wordfreq offers only {len(words)} clean words, {n} requested")
    return words[:n]
