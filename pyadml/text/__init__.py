"""Offline G2P, text normalisation, lexicon and phone table, and the one tokenizer built on them."""

from pyadml.text.g2p import G2P, PHONES_NO_STRESS, PHONES_WITH_STRESS, cmu_dictionary
from pyadml.text.lexicon import PhoneTable, read_lexicon, write_lexicon
from pyadml.text.normalize import KeywordError, normalize_text, number_to_words
from pyadml.text.tokenizer import Tokenizer

__all__ = [
    "G2P", "KeywordError", "PHONES_NO_STRESS", "PHONES_WITH_STRESS", "PhoneTable", "Tokenizer",
    "cmu_dictionary", "normalize_text", "number_to_words", "read_lexicon", "write_lexicon",
]
