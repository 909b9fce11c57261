import pytest

from pyadml.text import G2P, KeywordError, PhoneTable, Tokenizer, normalize_text

LEXICON = {"hello": ["HH", "EH1", "L", "OW0"], "mister": ["M", "IH1", "S", "T", "ER0"]}


def test_lexicon_first_then_g2p_and_ids_from_the_table():
    g2p = G2P()
    tok = Tokenizer(PhoneTable(g2p.inventory), LEXICON)
    assert tok.phones("Hello, people!") == LEXICON["hello"] + g2p.word("people")
    assert tok.encode("hello") == tok.phone_table.encode(LEXICON["hello"])
    # Case, punctuation and abbreviations reach the same lexicon entry.
    assert tok.encode("MR.") == tok.encode("mister") == tok.phone_table.encode(LEXICON["mister"])


def test_word_boundary_and_stress_options_are_kept():
    g2p = G2P(strip_stress=True, word_boundary="<wb>")
    tok = Tokenizer.build(["hello world"], {"strip_stress": True, "word_boundary": "<wb>"})
    assert tok.phones("hello world") == g2p.word("hello") + ["<wb>"] + g2p.word("world")
    assert len(tok.phone_table) == 1 + 39 + 1
    with pytest.raises(ValueError, match="unknown G2P option"):
        Tokenizer.build(["x"], {"stress": True})
    with pytest.raises(ValueError, match="word_boundary"):
        Tokenizer.build(["x"], {"word_boundary": "a b"})


def test_lang_dir_and_dict_round_trip(tmp_path):
    tok = Tokenizer.build(["hello world", "2nd"], {"strip_stress": False, "word_boundary": None})
    assert set(tok.lexicon) == {"hello", "world", "second"}
    tok.write_lang_dir(tmp_path / "lang")
    assert sorted(p.name for p in (tmp_path / "lang").iterdir()) == ["g2p.yaml", "lexicon.txt", "phones.txt"]
    again = Tokenizer.from_lang_dir(tmp_path / "lang")
    assert again == tok and Tokenizer.from_dict(tok.to_dict()) == tok
    (tmp_path / "lang" / "g2p.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="g2p.yaml"):
        Tokenizer.from_lang_dir(tmp_path / "lang")


def test_keywords_without_phones_are_clear_errors():
    tok = Tokenizer.build(["hello"])
    for bad in ("", "   ", "!!!", "[]"):
        with pytest.raises(KeywordError, match="keyword|empty"):
            tok.encode(bad)
    with pytest.raises(KeywordError, match="cannot pronounce"):
        tok.encode("привет")
    narrow = Tokenizer(PhoneTable(["HH", "EH1", "L", "OW0"]), LEXICON)
    with pytest.raises(KeywordError, match="'people'.*not in the phone table"):
        narrow.encode("people")


@pytest.mark.parametrize("text, words", [
    ("MR.", ["mister"]), ("Mrs. Smith", ["missus", "smith"]), ("ST. LOUIS", ["saint", "louis"]),
    ("2ND", ["second"]), ("21st", ["twenty", "first"]), ("1990S", ["nineteen", "nineties"]),
    ("'80s", ["eighties"]), ("1984", ["nineteen", "eighty", "four"]), ("1905", ["nineteen", "oh", "five"]),
    ("1900", ["nineteen", "hundred"]), ("2005", ["two", "thousand", "five"]),
    ("1,984", ["one", "thousand", "nine", "hundred", "eighty", "four"]),
    ("O'CLOCK", ["o'clock"]), ("DON'T", ["don't"]), ("mr", ["mr"]), ("3.5", ["three", "point", "five"]),
])
def test_normaliser_reads_real_transcripts(text, words):
    assert normalize_text(text) == words
