"""Written forms a TTS model misreads, rewritten as the words a person would say.

Each rule is one regular expression and one function, applied in a fixed order (URLs
before symbols, dates before fractions, money before plain numbers ...) to the parts of
the text outside markup: ``[S1]`` speaker tags and ``(laughs)``-style nonverbals are
never touched. Number words come from num2words in the request's language; the
surrounding words (units, months, abbreviations, "percent") are English, so for another
language only what num2words covers (numbers, ordinals, decimals, percentages, money)
is rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from num2words import CONVERTER_CLASSES, num2words

from ttsframe import outside_markup
from ttsframe.plugins.normalize import words

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def language_of(language: str | None, default: str) -> str | None:
    """num2words' code for a request's language (``en-US`` -> ``en``), None if unknown."""
    wanted = (language or default).lower().replace("-", "_")
    for code in (wanted, wanted.split("_")[0]):
        if code in CONVERTER_CLASSES:
            return code
    return None


@dataclass
class Speller:
    """Number words in one language, with the English-only rules switched by ``english``."""

    lang: str
    date_order: str = "mdy"

    @property
    def english(self) -> bool:
        return self.lang == "en"

    def cardinal(self, number: str | int | float) -> str:
        value = _number(number)
        spoken = num2words(value, lang=self.lang)
        return spoken.replace(",", "") if self.english else spoken

    def ordinal(self, number: int) -> str:
        return num2words(number, lang=self.lang, to="ordinal")

    def year(self, number: int) -> str:
        if not self.english:
            return self.cardinal(number)
        return num2words(number, lang="en", to="year").replace(",", "")

    def digits(self, text: str) -> str:
        return " ".join(self.cardinal(int(d)) for d in text if d.isdigit())

    def word(self, key: str) -> str:
        return words.VOCABULARY.get(self.lang, words.VOCABULARY["en"])[key]


def _number(text: str | int | float) -> int | float:
    if isinstance(text, int | float):
        return text
    text = text.replace(",", "")
    if "." in text:
        whole, _, frac = text.partition(".")
        # Keep the digits as written ("1.50" -> one point five zero is wrong; one point
        # five is what people say), but never lose a leading zero of the fraction.
        return float(f"{int(whole or 0)}.{frac}")
    return int(text)


Rule = tuple[re.Pattern[str], Callable[[re.Match[str], Speller], str], bool]
RULES: list[Rule] = []


def rule(pattern: str, *, english_only: bool = False, flags: int = 0):
    def add(fn: Callable[[re.Match[str], Speller], str]):
        RULES.append((re.compile(pattern, flags), fn, english_only))
        return fn
    return add


# --- addresses ------------------------------------------------------------------------

@rule(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b", english_only=True)
def _email(m: re.Match[str], s: Speller) -> str:
    user, _, host = m.group(0).partition("@")
    return f"{_spell_address(user)} at {_spell_address(host)}"


@rule(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]", english_only=True)
def _url(m: re.Match[str], s: Speller) -> str:
    url = re.sub(r"^https?://", "", m.group(0))
    return _spell_address(url.rstrip("/"))


def _spell_address(text: str) -> str:
    parts = re.split(r"([./_@:?=&-])", text)
    spoken = []
    for part in parts:
        if part in words.ADDRESS_SYMBOLS:
            spoken.append(words.ADDRESS_SYMBOLS[part])
        elif part.isdigit():
            spoken.append(" ".join(num2words(int(d)) for d in part))
        elif part:
            spoken.append(part)
    return " ".join(spoken)


@rule(words.ABBREVIATION_PATTERN, english_only=True)
def _abbreviation(m: re.Match[str], s: Speller) -> str:
    written = m.group(0)
    if written in ("St.", "St") and m.end() < len(m.string):
        # "St. Louis" is Saint, "Main St." is Street: a capitalised word after it.
        following = m.string[m.end():].lstrip()
        return "Saint" if following[:1].isupper() else "Street"
    key = written.lower().rstrip(".")
    spoken = words.ABBREVIATIONS[key]
    following = m.string[m.end():].lstrip()
    if written.endswith(".") and key not in words.TITLES and (
            not following or following[:1].isupper()):
        spoken += "."  # the abbreviation's dot also ended the sentence
    return spoken


# --- phone numbers, dates, times ------------------------------------------------------

@rule(r"(?<![\w.])(?:\+\d{1,3}[ .-])?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}\b",
      english_only=True)
def _phone(m: re.Match[str], s: Speller) -> str:
    groups = re.findall(r"\+?\d+", m.group(0))
    spoken = []
    for group in groups:
        prefix = "plus " if group.startswith("+") else ""
        spoken.append(prefix + s.digits(group))
    return ", ".join(spoken)


@rule(r"\b(\d{4})-(\d{2})-(\d{2})\b", english_only=True)
def _iso_date(m: re.Match[str], s: Speller) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return _date(s, year, month, day, m.group(0))


@rule(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b", english_only=True)
def _local_date(m: re.Match[str], s: Speller) -> str:
    a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    month, day = (a, b) if s.date_order == "mdy" else (b, a)
    return _date(s, year, month, day, m.group(0))


def _date(s: Speller, year: int, month: int, day: int, written: str) -> str:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return written
    return f"{words.MONTHS[month - 1]} {s.ordinal(day)}, {s.year(year)}"


@rule(r"\b([01]?\d|2[0-3]):([0-5]\d)(?:\s?([AaPp])\.?[Mm]\b)?(?!\d)", english_only=True)
def _time(m: re.Match[str], s: Speller) -> str:
    hour, minute, half = int(m.group(1)), int(m.group(2)), m.group(3)
    spoken = s.cardinal(hour)
    if minute == 0:
        oclock = m.string[m.end():].lstrip().startswith("o'clock")
        spoken += "" if half or oclock else " hundred" if hour >= 13 or hour == 0 else \
            " o'clock"
    elif minute < 10:
        spoken += f" oh {s.cardinal(minute)}"
    else:
        spoken += f" {s.cardinal(minute)}"
    if half:
        spoken += " a m" if half.lower() == "a" else " p m"
    return spoken


# --- money, percentages, units --------------------------------------------------------

_SCALE = r"(?:\s?(k|m|bn|b|tn|thousand|million|billion|trillion)\b)?"


@rule(rf"(-)?([$€£¥₹])\s?({_NUM}){_SCALE}", flags=re.IGNORECASE)
def _money_symbol(m: re.Match[str], s: Speller) -> str:
    return _money(s, m.group(1), words.CURRENCY_SYMBOLS[m.group(2)], m.group(3), m.group(4))


@rule(rf"(-)?\b({_NUM}){_SCALE}\s?([$€£¥₹])")
def _money_symbol_after(m: re.Match[str], s: Speller) -> str:
    return _money(s, m.group(1), words.CURRENCY_SYMBOLS[m.group(4)], m.group(2), m.group(3))


@rule(rf"\b({_NUM}){_SCALE}\s?(USD|EUR|GBP|JPY|INR|CHF|CAD|AUD)\b", flags=re.IGNORECASE)
def _money_code_after(m: re.Match[str], s: Speller) -> str:
    return _money(s, None, m.group(3).upper(), m.group(1), m.group(2))


@rule(rf"\b(USD|EUR|GBP|JPY|INR|CHF|CAD|AUD)\s?({_NUM}){_SCALE}")
def _money_code_before(m: re.Match[str], s: Speller) -> str:
    return _money(s, None, m.group(1), m.group(2), m.group(3))


def _money(s: Speller, minus: str | None, currency: str, amount: str,
           scale: str | None) -> str:
    sign = f"{s.word('minus')} " if minus else ""
    value = _number(amount)
    unit, units, cent, cents = words.CURRENCY_NAMES[currency]
    if scale:
        return f"{sign}{s.cardinal(value)} {words.SCALES[scale.lower()]} {units}"
    whole = int(value)
    fraction = round((value - whole) * 100) if isinstance(value, float) else 0
    if not s.english:
        try:
            spoken = num2words(float(value), lang=s.lang, to="currency", currency=currency)
        except NotImplementedError:
            return f"{sign}{s.cardinal(value)} {currency}"
        if not fraction:  # num2words always names the cents, "... und null Cent"
            zero = re.escape(num2words(0, lang=s.lang))
            spoken = re.sub(rf"\s*(?:,|\S+)?\s*{zero}\s+\S+$", "", spoken)
        return sign + spoken
    spoken = f"{s.cardinal(whole)} {unit if whole == 1 else units}"
    if fraction and whole == 0:
        spoken = f"{s.cardinal(fraction)} {cent if fraction == 1 else cents}"
    elif fraction:
        spoken += f" and {s.cardinal(fraction)} {cent if fraction == 1 else cents}"
    return sign + spoken


@rule(rf"(-)?\b({_NUM})\s?%")
def _percent(m: re.Match[str], s: Speller) -> str:
    sign = f"{s.word('minus')} " if m.group(1) else ""
    return f"{sign}{s.cardinal(m.group(2))} {s.word('percent')}"


@rule(r"\b(\d{2})(\d{2})s\b|'(\d)0s\b|\b(\d)0s\b", english_only=True)
def _decade(m: re.Match[str], s: Speller) -> str:
    if m.group(1):
        century, decade = int(m.group(1)), int(m.group(2))
        if decade == 0:
            return f"{s.year(century * 100)}s".replace("ys", "ies")
        return f"{s.cardinal(century)} {words.DECADES[decade // 10]}"
    return words.DECADES[int(m.group(3) or m.group(4))]


@rule(rf"(-|\u2212)?\b({_NUM})\s?(°\s?[CFK]|{words.UNIT_PATTERN})(?![\w°])",
      english_only=True)
def _unit(m: re.Match[str], s: Speller) -> str:
    sign = "minus " if m.group(1) else ""
    amount = m.group(2)
    unit = re.sub(r"\s", "", m.group(3))
    single, plural = words.UNITS[unit]
    name = single if _number(amount) == 1 and not m.group(1) else plural
    return f"{sign}{s.cardinal(amount)} {name}"


# --- years, ordinals, ranges, fractions -----------------------------------------------

@rule(r"\b(\d{4})\s?[-\u2013]\s?(\d{4})\b", english_only=True)
def _year_range(m: re.Match[str], s: Speller) -> str:
    return f"{s.year(int(m.group(1)))} to {s.year(int(m.group(2)))}"


@rule(r"\b(\d{1,4})\s?(BC|BCE|AD|CE)\b", english_only=True)
def _era(m: re.Match[str], s: Speller) -> str:
    return f"{s.year(int(m.group(1)))} {' '.join(m.group(2))}"


@rule(r"\b(in|since|by|from|until|of|year|before|after|around|circa|during|c\.)\s"
      r"(\d{4})\b(?![.,]\d)", english_only=True, flags=re.IGNORECASE)
def _year(m: re.Match[str], s: Speller) -> str:
    return f"{m.group(1)} {s.year(int(m.group(2)))}"


@rule(r"\b(\d+)(st|nd|rd|th)\b", english_only=True, flags=re.IGNORECASE)
def _ordinal(m: re.Match[str], s: Speller) -> str:
    return s.ordinal(int(m.group(1)))


@rule(rf"\b({_NUM})\s?[-\u2013]\s?({_NUM})\b(?!-)", english_only=True)
def _range(m: re.Match[str], s: Speller) -> str:
    return f"{s.cardinal(m.group(1))} to {s.cardinal(m.group(2))}"


@rule(r"(?<![\d/])\b(\d{1,3})/(\d{1,3})\b(?![\d/])", english_only=True)
def _fraction(m: re.Match[str], s: Speller) -> str:
    top, bottom = int(m.group(1)), int(m.group(2))
    if bottom == 0:
        return m.group(0)
    if bottom == 1:
        return f"{s.cardinal(top)} over one"
    if bottom == 2:
        name = "half" if top == 1 else "halves"
    elif bottom == 4:
        name = "quarter" if top == 1 else "quarters"
    else:
        name = s.ordinal(bottom) + ("" if top == 1 else "s")
    return f"{s.cardinal(top)} {name}"


# --- plain numbers --------------------------------------------------------------------

@rule(r"#(?=\d)", english_only=True)
def _number_sign(m: re.Match[str], s: Speller) -> str:
    return "number "


@rule(rf"(?<![\w.])([-\u2212])({_NUM})\b")
def _negative(m: re.Match[str], s: Speller) -> str:
    return f"{s.word('minus')} {s.cardinal(m.group(2))}"


@rule(rf"\b({_NUM})\s?(k|thousand|million|billion|trillion|bn|m)\b(?!\.\d)",
      english_only=True)
def _scaled(m: re.Match[str], s: Speller) -> str:
    return f"{s.cardinal(m.group(1))} {words.SCALES[m.group(2).lower()]}"


@rule(rf"\b({_NUM})\b")
def _cardinal(m: re.Match[str], s: Speller) -> str:
    return s.cardinal(m.group(1))


# --- abbreviations and symbols --------------------------------------------------------

@rule(r"\s([&@+=#])\s|(?<=\w)([&+])(?=\w)")
def _symbol(m: re.Match[str], s: Speller) -> str:
    symbol = m.group(1) or m.group(2)
    return f" {s.word(words.SYMBOL_WORDS[symbol])} "


def normalize_text(text: str, lang: str, date_order: str = "mdy") -> str:
    """``text`` with every rule applied outside markup, in ``lang`` (a num2words code);
    ``date_order`` reads ``03/04/2025`` as month first (``mdy``) or day first (``dmy``)."""
    speller = Speller(lang, date_order)
    return re.sub(r"[ \t]{2,}", " ", outside_markup(text, lambda part: _apply(part, speller)))


def _apply(text: str, speller: Speller) -> str:
    if speller.lang in words.DECIMAL_COMMA:
        # "1.234,5" -> "1234.5": the rules read numbers the English way.
        text = re.sub(r"(?<=\d)\.(?=\d{3}\b)", "", text)
        text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    if not any(c.isdigit() or c in words.TRIGGERS for c in text) and not (
            speller.english and ("www." in text or words.ABBREVIATION_HINT.search(text))):
        return text
    for pattern, fn, english_only in RULES:
        if english_only and not speller.english:
            continue
        text = pattern.sub(lambda m, fn=fn: fn(m, speller), text)
    return text
