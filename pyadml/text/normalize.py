"""Text normalisation for keywords and transcripts: case, punctuation, apostrophes, numbers,
currency, units, Roman numerals and initialisms."""

from __future__ import annotations

import re
import unicodedata


class KeywordError(ValueError):
    """A keyword or transcript that cannot be turned into phonemes."""


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> list[str]:
    """Cardinal number as words: 1984 -> one thousand nine hundred eighty four."""
    if n < 0:
        return ["minus"] + number_to_words(-n)
    if n >= 10**15:
        # Read very long digit strings digit by digit, as people do with ids.
        return [_ONES[int(d)] for d in str(n)]
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words += _below_thousand(n // value) + [name]
            n %= value
    if n or not words:
        words += _below_thousand(n)
    return words


def ordinal_to_words(n: int) -> list[str]:
    words = number_to_words(n)
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return words


def year_to_words(n: int) -> list[str]:
    """A year as people say it: 1990 -> nineteen ninety, 1905 -> nineteen oh five, 1900 ->
    nineteen hundred, 2005 -> two thousand five (as the usual TTS text normalisers read them)."""
    if 2000 <= n <= 2009 or n % 1000 == 0:
        return number_to_words(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return _below_thousand(head) + ["hundred"]
    return _below_thousand(head) + (["oh", _ONES[tail]] if tail < 10 else _below_thousand(tail))


def _plural(word: str) -> str:
    if word.endswith("y"):
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("s", "x")) else "s")


# Title and company abbreviations, expanded only when written with their period ("st" alone
# stays a word for the lexicon; "dr" without a period is CMUdict's "drive").
ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "jr": "junior",
    "sr": "senior", "co": "company", "corp": "corporation", "inc": "incorporated",
    "ltd": "limited", "bros": "brothers", "vs": "versus", "gov": "governor", "sen": "senator",
    "rep": "representative", "gen": "general", "lt": "lieutenant", "col": "colonel",
    "capt": "captain", "sgt": "sergeant", "prof": "professor", "rev": "reverend", "mt": "mount",
    "ft": "fort", "ave": "avenue", "blvd": "boulevard", "dept": "department", "messrs": "messieurs",
}
_ABBREVIATION = re.compile(r"(?<![a-z'])(" + "|".join(ABBREVIATIONS) + r")\.")
# "St", "Dr" and "Ft", with or without their period, read by their neighbours as TTS front ends
# read them: after a capitalised name and before no capitalised word, a street ("Baker St.",
# "Mulholland Dr"); before a capitalised word, a title ("St Albans", "Dr Who", "Ft Worth").
# Elsewhere the period decides (ABBREVIATIONS), and without one CMUdict's "street", "drive".
_STREET = re.compile(r"\b([A-Z][a-z]+ )(St|Dr)\b\.?(?!\s*[A-Z])")
_TITLE = re.compile(r"(?<![A-Za-z\d])(?<!\d )(St|Dr|Ft)\b\.?(?=\s+[A-Z])")
_STREETS, _TITLES = {"St": "Street", "Dr": "Drive"}, {"St": "Saint", "Dr": "Doctor", "Ft": "Fort"}
# Decades: 1990s, '80s, 1990's -> nineteen nineties, eighties.
_DECADE = re.compile(r"(?<![a-z\d])'?(\d{2}|\d{4})'?s(?![a-z\d])")
# A number's thousands separators: other commas between digits separate numbers.
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
# A number's commas are inside it: "In 1990, the" ends the year at its digits.
_NUMBER = re.compile(r"(?<![a-z])(\d(?:[\d,]*\d)?)(?:\.(\d+))?(st|nd|rd|th)?(?![a-z\d])")


# Currency before its amount: "$5" -> five dollars, "$2.50" -> two dollars fifty cents, "$3.5
# million" -> three point five million dollars (as TTS text normalisers read them).
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", None, None)}
_CURRENCY = re.compile(r"([$£€¥]) ?(\d(?:[\d,]*\d)?)(?:\.(\d+))?"
                       r"(?: (thousand|million|billion|trillion))?(?![\d,]*\d)")
# An initialism written with periods ("U.S.A.", "a.m.", "A.I"): one word of dotted letters,
# spelled by the G2P (the word "a" is the article, AH0; the letter is EY1). A run of two to four
# capitals ending a mixed-case word ("ChatGPT", "iOS") is spelled the same way; longer runs are
# a word in capitals ("McDONALD").
# Its possessive stays on it ("U.S.'s" -> "u.s.'s", which the G2P spells, then adds Z).
_INITIALISM = re.compile(r"(?<![a-z\d'.])((?:[a-z]\.)+[a-z])\.?('s)?(?![a-z\d])")
_CAPITALS_RUN = re.compile(r"(?<=[a-z])([A-Z]{2,4})(?![A-Za-z])")
# Initialisms that CMUdict reads first as a word ("ai" AY1, "us" AH1 S, "id" IH1 D): in capitals
# among lower-case words ("Hey AI", "the US army", "IT support") they are spelled as if written
# with periods. In a text all in capitals (as transcripts are written) only "AI" is, since
# CMUdict's "ai" is no English word.
_CAPITAL_INITIALISMS = ("AI", "AR", "ID", "IT", "OS", "UN", "US")
_CAPITAL_INITIALISM = re.compile(r"(?<![A-Za-z'.])(" + "|".join(_CAPITAL_INITIALISMS)
                                 + r")(?![A-Za-z\d.])")
# "#1" and "No. 5" are read "number one", "number five".
_NUMBER_SIGN = re.compile(r"(?:#|(?<![a-z'])no\.) ?(?=\d)")
# "am"/"pm" after a time are the initialisms ("10am", "7:30 PM"), not the verb "am".
_CLOCK = re.compile(r"(?<=\d) ?([ap])\.?m\b\.?")
_DOT = "\x01"  # an initialism's period while the other punctuation is removed
# A sharp or flat after a note name: "C#", "F# minor", "B♭" (before "#" as "number").
_ACCIDENTAL = re.compile(r"(?<![a-z\d'])([a-g])([#♯♭])(?![a-z\d#])")
# A minus sign before a number (not a hyphen between words or numbers): "-5", "(−3)".
_MINUS = re.compile(r"(?<![\w.,\-−)])[-−](?=\.?\d)")
# Degrees after a number: "100°F", "20 °C", "90°".
_DEGREES = re.compile(r"(?<=\d) ?° ?([cf](?![a-z" + _DOT + "]))?")
# A fraction written with a slash, a digit over 2..10 ("1/2", "3/4", "5 1/2"); "24/7", "9/11"
# and dates ("1/2/2024") stay numbers.
_SLASH_FRACTION = re.compile(r"(?<![\d/.,])(?:(\d+) )?(\d)/(\d{1,2})(?![\d/]|[.,]\d)")
_DENOMINATORS = {2: ("half", "halves"), 3: ("third", "thirds"), 4: ("quarter", "quarters"),
                 5: ("fifth", "fifths"), 6: ("sixth", "sixths"), 7: ("seventh", "sevenths"),
                 8: ("eighth", "eighths"), 9: ("ninth", "ninths"), 10: ("tenth", "tenths")}
# Units after a number, as text normalisers read them: "5 km" -> five kilometers, "1 ft" -> one
# foot. Only units that cannot be mistaken for a word or a letter after a number ("5G", "4K",
# "m", "in" and "s" stay as they are).
_UNITS = {
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "mi": ("mile", "miles"),
    "mph": ("mile per hour", "miles per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "ml": ("milliliter", "milliliters"),
    "kb": ("kilobyte", "kilobytes"), "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"), "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"), "mhz": ("megahertz", "megahertz"),
    "ghz": ("gigahertz", "gigahertz"), "kw": ("kilowatt", "kilowatts"),
    "kwh": ("kilowatt hour", "kilowatt hours"), "mah": ("milliamp hour", "milliamp hours"),
    "min": ("minute", "minutes"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "sec": ("second", "seconds")}
_UNIT = re.compile(r"(?<![\w.,])(\d(?:[\d,]*\d)?(?:\.\d+)?) ?("
                   + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
                   + r")(?![a-z\d/])\.?")
# Roman numerals II-XXXIX after a capitalised word: "World War II" -> two, "Final Fantasy VII"
# -> seven; after a monarch's or pope's name the ordinal, "Henry VIII" -> the eighth. One
# letter ("I", "V", "X") is left alone: "When I" is the pronoun.
_ROMAN = re.compile(r"\b([A-Z][A-Za-z]*)(\s+)([IVX]{2,6})(?![A-Za-z\d])")
_REGNAL_NAMES = frozenset("""alexander benedict catherine charles clement edward elizabeth
    ferdinand francis frederick george gregory henry innocent james john leo louis mary nicholas
    paul peter philip pius richard victor william""".split())
# A clock time: "10:05" -> ten oh five, "10:00" -> ten o'clock, "10:00 p.m." -> ten p.m., "14:00"
# -> fourteen hundred. "3:45:10" and "16:9" are not times and stay numbers.
_TIME = re.compile(r"(?<![\d:.,])(\d{1,2}):([0-5]\d)(?![\d:]|[.,]\d)(?=\s*([ap]" + _DOT + "m" + _DOT
                   + ")?)")
# A decimal without its leading zero: ".5" -> point five, "$.50" -> fifty cents.
_LEADING_POINT = re.compile(r"(?<![\w.$£€¥])\.(\d+)(?![\d.])")
_CURRENCY_POINT = re.compile(r"([$£€¥]) ?\.(?=\d)")
# Emergency and service numbers are said digit by digit ("911" -> nine one one).
_SPOKEN_CODES = frozenset({"311", "411", "911"})


# Latin letters that Unicode does not decompose into a base letter and an accent, as English
# spells them in names and loanwords ("Straße", "Encyclopædia", "Øresund", "Łódź").
_LATIN_LETTERS = str.maketrans({
    "ß": "ss", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "th", "Ð": "Th", "þ": "th", "Þ": "Th", "ı": "i", "ħ": "h", "Ħ": "H"})
# Fraction characters (before NFKD, which would make "½" into "1/2", read "one two").
_FRACTIONS = {"½": "one half", "⅓": "one third", "⅔": "two thirds", "¼": "one quarter",
              "¾": "three quarters", "⅕": "one fifth", "⅛": "one eighth"}
_FRACTION = re.compile(r"(\d*)\s*([" + "".join(_FRACTIONS) + "])")


def _digits(digits: str) -> list[str]:
    return [_ONES[int(d)] for d in digits]


def _spell_fraction(m: re.Match) -> str:
    whole = f"{m.group(1)} and " if m.group(1) else ""
    return f" {whole}{_FRACTIONS[m.group(2)]} "


def _spell_currency(m: re.Match) -> str:
    symbol, integer, fraction, scale = m.groups()
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    value = int(integer.replace(",", ""))
    decimals = ["point"] + _digits(fraction) if fraction else []
    if scale or (fraction and (sub_one is None or len(fraction) > 2)):
        words = number_to_words(value) + decimals + ([scale] if scale else []) + [many]
    else:
        words = number_to_words(value) + [one if value == 1 else many]
        cents = int(fraction.ljust(2, "0")) if fraction else 0
        if cents:
            words = ((words if value else []) + number_to_words(cents)
                     + [sub_one if cents == 1 else sub_many])
    return " " + " ".join(words) + " "


def _spell_initialism(m: re.Match) -> str:
    return " " + _DOT.join(m.group(1).split(".")) + _DOT + (m.group(2) or "") + " "


def _spell_capital_initialisms(s: str) -> str:
    mixed = any(c.islower() for c in s)
    return _CAPITAL_INITIALISM.sub(
        lambda m: ".".join(m.group(1)) + "." if mixed or m.group(1) == "AI" else m.group(1), s)


def _spell_decade(m: re.Match) -> str:
    value = int(m.group(1))
    words = year_to_words(value) if len(m.group(1)) == 4 else number_to_words(value)
    return " " + " ".join(words[:-1] + [_plural(words[-1])]) + " "

def _roman_value(token: str) -> int | None:
    """The value of a Roman numeral written the standard way (I, V, X only), else None."""
    values = {"I": 1, "V": 5, "X": 10}
    total = 0
    for i, c in enumerate(token):
        v = values[c]
        total += -v if i + 1 < len(token) and values[token[i + 1]] > v else v
    # Only the standard spelling of that value ("IIII", "VX" and "IIV" are not numerals).
    tens, ones = divmod(total, 10)
    ones_spelled = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"][ones]
    return total if 0 < total < 40 and "X" * tens + ones_spelled == token else None


def _spell_roman(m: re.Match) -> str:
    word, space, token = m.groups()
    value = _roman_value(token)
    if value is None:
        return m.group(0)
    if word.lower() in _REGNAL_NAMES:
        return f"{word}{space}the {' '.join(ordinal_to_words(value))}"
    return f"{word}{space}{' '.join(number_to_words(value))}"


def _spell_time(m: re.Match) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24:
        return m.group(0)
    words = number_to_words(hour)
    if minute == 0:
        if m.group(3):
            pass  # "ten p.m."
        elif 1 <= hour <= 12:
            words.append("o'clock")
        else:
            words.append("hundred")
    else:
        words += (["oh"] if minute < 10 else []) + number_to_words(minute)
    return " " + " ".join(words) + " "


def _spell_slash_fraction(m: re.Match) -> str:
    whole, num, den = m.group(1), int(m.group(2)), int(m.group(3))
    if not 0 < num < den <= 10:
        return m.group(0)
    name = _DENOMINATORS[den][num > 1]
    return f" {whole + ' and ' if whole else ''}{_ONES[num]} {name} "


def _spell_unit(m: re.Match) -> str:
    one, many = _UNITS[m.group(2)]
    return f" {m.group(1)} {one if m.group(1) == '1' else many} "


def _spell_degrees(m: re.Match) -> str:
    scale = {"c": " celsius", "f": " fahrenheit"}.get(m.group(1) or "", "")
    return f" degrees{scale} "


_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}


def _spell_number(m: re.Match) -> str:
    integer, fraction, suffix = m.group(1), m.group(2), m.group(3)
    if "," in integer and not _THOUSANDS.fullmatch(integer):
        # Commas that do not group the digits in threes separate numbers, each read alone as
        # espeak-ng reads them: "1,2,3" -> one two three, "1,5" -> one five (not "fifteen").
        *first, last = integer.split(",")
        return " ".join([_number_words(n, None, None) for n in first]
                        + [_number_words(last, fraction, suffix)])
    return _number_words(integer, fraction, suffix)


def _number_words(integer: str, fraction: str | None, suffix: str | None) -> str:
    value = int(integer.replace(",", ""))
    if suffix and fraction is None:
        words = ordinal_to_words(value)
    elif (len(integer) > 1 and integer[0] == "0" and integer.isdigit()) or (
            fraction is None and integer in _SPOKEN_CODES):
        words = _digits(integer)  # a code, read digit by digit: "007", "0800", "911"
    elif fraction is None and "," not in integer and len(integer) == 4 and 1100 <= value <= 2099:
        words = year_to_words(value)  # a bare four-digit number in running text is a year
    else:
        words = number_to_words(value)
        if fraction is not None:
            words += ["point"] + _digits(fraction)
    return " " + " ".join(words) + " "


def normalize_text(text: str) -> list[str]:
    """Return the lower-case words of ``text``, numbers spelled out and punctuation removed.

    Abbreviations with their period are expanded ("Mr." -> "mister", "St." -> "saint"), years
    and decades read as years ("1990" -> "nineteen ninety", "1990s" -> "nineteen nineties"),
    ordinals as ordinals ("2nd" -> "second").

    Currency is read with its unit ("$5" -> "five dollars"), and so are degrees and the common
    units after a number ("100°F", "5 km", "128GB"); "-5" is "minus five", "1/2" "one half",
    "C#" "c sharp", "911" "nine one one", "10:05" "ten oh five", "10:00" "ten o'clock", and
    Roman numerals after a capitalised word are numbers ("World War II" -> "two", "Henry VIII"
    -> "the eighth"). An initialism written with periods is one word of dotted letters
    ("U.S.A." -> "u.s.a.", "a.m." -> "a.m.", "U.S.'s" -> "u.s.'s"), as are two to four capitals
    ending a mixed-case word ("ChatGPT" -> "chat g.p.t.") and the initialisms that CMUdict
    reads as words, in capitals among lower-case words ("Hey AI" -> "a.i.", "the US" ->
    "u.s.", "IT", "ID"; "AI" in any text); the G2P spells them.

    Apostrophes inside a word are kept ("don't", "o'clock"); leading and trailing ones are
    dropped ("students'" -> "students"). Accents are folded ("café" -> "cafe"), and the Latin
    letters that carry none are spelled as English writes them ("Straße" -> "strasse", "æ" ->
    "ae"); "½" is "one half". Letters outside the Latin alphabet raise KeywordError, since no
    English G2P can pronounce them.
    """
    if not isinstance(text, str):
        raise KeywordError(f"expected a keyword string, got {type(text).__name__}")
    # Invisible format characters (a soft hyphen, a zero-width space or joiner, a byte-order
    # mark), as text copied from a web page carries them inside words, are dropped: the word
    # reads whole ("com\u00adputer" is "computer"), not as two words.
    s = "".join(c for c in text if unicodedata.category(c) != "Cf")
    # Apostrophes typed with another key: the acute accent ("don\u00b4t", a European keyboard's
    # dead key; NFKD would make it a space), the modifier letter and the prime.
    s = s.replace("\u00b4", "'").replace("\u02bc", "'").replace("\u2032", "'")
    s = _FRACTION.sub(_spell_fraction, s.translate(_LATIN_LETTERS))
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = _STREET.sub(lambda m: m.group(1) + _STREETS[m.group(2)], s)
    s = _TITLE.sub(lambda m: _TITLES[m.group(1)], s)
    s = _ROMAN.sub(_spell_roman, s)
    s = _spell_capital_initialisms(s)
    s = _CAPITALS_RUN.sub(lambda m: " " + ".".join(m.group(1)) + ". ", s).lower()
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    s = _CLOCK.sub(lambda m: f" {m.group(1)}.m. ", s)
    s = _ACCIDENTAL.sub(lambda m: f" {m.group(1)} {'flat' if m.group(2) == '♭' else 'sharp'} ", s)
    s = _NUMBER_SIGN.sub(" number ", s)
    s = _INITIALISM.sub(_spell_initialism, s)
    s = _UNIT.sub(_spell_unit, s)  # before the abbreviations: "5 ft." is feet, not "fort"
    s = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1)] + " ", s)
    s = _CURRENCY.sub(_spell_currency, _CURRENCY_POINT.sub(r"\g<1>0.", s))
    s = _DECADE.sub(_spell_decade, s)
    s = _TIME.sub(_spell_time, s)
    s = _DEGREES.sub(_spell_degrees, s)
    s = _SLASH_FRACTION.sub(_spell_slash_fraction, s)
    s = _MINUS.sub(" minus ", s)
    s = _LEADING_POINT.sub(lambda m: " point " + " ".join(_digits(m.group(1))) + " ", s)
    for sym, word in _SYMBOLS.items():
        s = s.replace(sym, word)
    # "r2d2" -> "r 2 d 2", but keep ordinal suffixes on their digits ("21st").
    s = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])(?!(?:st|nd|rd|th)\b)", " ", s)
    s = _NUMBER.sub(_spell_number, s)
    out = []
    bad = []
    for c in s:
        if "a" <= c <= "z" or c == "'" or c == _DOT:
            out.append(c)
        elif c.isalpha() or c.isdigit():
            bad.append(c)
        else:  # punctuation, symbols, whitespace, hyphens: word separators
            out.append(" ")
    if bad:
        raise KeywordError(
            f"keyword {text!r} contains characters that English G2P cannot pronounce: "
            f"{''.join(dict.fromkeys(bad))!r}"
        )
    words = []
    for token in "".join(out).split():
        token = re.sub(r"'+", "'", token).strip("'").replace(_DOT, ".")
        if token:
            words.append(token)
    return words


def spoken_text(words) -> str:
    """Normalised words as a text for a speech synthesiser: initialisms in capitals ("a.i." ->
    "A.I."), which the Debian engines read as letters (the word "a" alone they read as the
    article)."""
    def spoken(w: str) -> str:
        cut = w.rfind(".") + 1  # a possessive after the letters stays lower case ("U.S.'s")
        return w[:cut].upper() + w[cut:]

    return " ".join(spoken(w) for w in words)
