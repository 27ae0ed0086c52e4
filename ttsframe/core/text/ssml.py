"""A safe SSML subset: what a request written as ``<speak>...</speak>`` means for the
speech path, as segments of text with the silence after each.

Parsed with the standard library's expat parser after refusing any document type
declaration, so no entity can be declared (no expansion bombs) and nothing external is
ever read; size is bounded by ``generation.max_text_chars`` before this runs, depth and
element count here. What each element does:

- ``<break time="500ms">`` / ``strength``: real silence of that length in the audio.
- ``<p>``, ``<s>``: a chunk boundary (the text before and after is generated apart).
- ``<sub alias="...">``: the alias is read instead of the content.
- ``<say-as interpret-as="characters|spell-out|cardinal|ordinal|digits|date|time|
  telephone">``: the content written out as those words (num2words, in the request's
  language where num2words has it).
- ``<voice name="S1|S2">``: the content is spoken by that speaker (its speaker tag).
- ``<prosody rate>`` around the whole document: the reply's speed; elsewhere ignored.
- anything else: its text is read as written, with a warning naming the element.
"""

from __future__ import annotations

import calendar
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from num2words import num2words

from ttsframe.core.errors import InvalidInput

MAX_DEPTH = 32
MAX_ELEMENTS = 2000
MAX_BREAK_S = 10.0
# SSML's break strengths as seconds of silence.
STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.25, "medium": 0.5, "strong": 1.0,
             "x-strong": 2.0}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25,
         "x-fast": 1.5}
SPEAKER_NAMES = re.compile(r"^\s*\[?\s*[sS]\s*(\d+)\s*\]?\s*$")
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class Segment:
    """Text generated apart from its neighbours, then ``pause_s`` of silence."""

    text: str
    speaker: str | None = None
    pause_s: float = 0.0


@dataclass
class SsmlDocument:
    segments: list[Segment]
    # The document's <prosody rate>, as a speed factor; None when it sets none.
    rate: float | None = None
    warnings: list[str] = field(default_factory=list)


def is_ssml(text: str) -> bool:
    return text.lstrip().startswith("<speak")


def parse_ssml(text: str, language: str | None = None) -> SsmlDocument:
    """The segments ``text`` (a ``<speak>`` document, or a fragment of one: it is then
    read as if inside ``<speak>``) asks for; malformed SSML raises ``InvalidInput``
    naming its line and column (of the text as sent)."""
    if _DECLARATION.search(text):
        raise InvalidInput("SSML may not contain a <!DOCTYPE> or <!ENTITY> declaration; "
                           "write the text itself (the five XML entities such as &amp; work)")
    text = text.strip()
    wrapped = not is_ssml(text)
    try:
        root = ET.fromstring(f"<speak>{text}</speak>" if wrapped else text)
    except ET.ParseError as exc:
        line, column = exc.position
        if wrapped and line == 1:
            column -= len("<speak>")
        reason = str(exc).split(":")[0]
        raise InvalidInput(f"SSML is not well-formed at line {line}, column {column + 1}: "
                           f"{reason}") from None
    if _local(root.tag) != "speak":
        raise InvalidInput(f"SSML must have <speak> as its root element, not <{root.tag}>")
    reader = _Reader(language)
    rate = None
    children = [c for c in root if isinstance(c.tag, str)]
    if (len(children) == 1 and _local(children[0].tag) == "prosody"
            and not (root.text or "").strip() and not (children[0].tail or "").strip()):
        rate = _rate(children[0].get("rate"))
        reader.whole = children[0]
    reader.walk(root, depth=0, speaker=None)
    reader.close()
    doc = SsmlDocument([s for s in reader.segments if s.text or s.pause_s], rate,
                       list(dict.fromkeys(reader.warnings)))
    if not any(s.text.strip() for s in doc.segments):
        raise InvalidInput("the SSML document has no text to speak")
    return doc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # "{http://www.w3.org/2001/10/synthesis}speak" -> "speak"


class _Reader:
    def __init__(self, language: str | None) -> None:
        self.lang = (language or "en").lower().replace("-", "_")
        self.segments: list[Segment] = [Segment("")]
        self.warnings: list[str] = []
        self.elements = 0
        self.whole: ET.Element | None = None  # a <prosody> around the whole document

    def text(self, words: str | None, speaker: str | None) -> None:
        if not words or not words.strip():
            if words and self.segments[-1].text:
                self.segments[-1].text += " "
            return
        current = self.segments[-1]
        if current.text.strip() and current.speaker != speaker:
            self.boundary(0.0)
            current = self.segments[-1]
        current.speaker = speaker
        current.text += re.sub(r"\s+", " ", words)

    def boundary(self, pause: float) -> None:
        current = self.segments[-1]
        current.text = current.text.strip()
        if current.text or pause:
            if current.text:
                current.pause_s += pause
            elif len(self.segments) > 1:  # silence after silence: one longer pause
                self.segments[-2].pause_s += pause
                return
            else:
                current.pause_s += pause  # a document that starts with a break
            self.segments.append(Segment(""))

    def close(self) -> None:
        self.segments[-1].text = self.segments[-1].text.strip()

    def walk(self, element: ET.Element, depth: int, speaker: str | None) -> None:
        self.elements += 1
        if depth > MAX_DEPTH or self.elements > MAX_ELEMENTS:
            raise InvalidInput(f"SSML is nested deeper than {MAX_DEPTH} elements or has more "
                               f"than {MAX_ELEMENTS}; simplify the document")
        name = _local(element.tag)
        if name == "break":
            self.boundary(_break_seconds(element))
            return
        if name == "sub":
            self.text(element.get("alias") or "".join(element.itertext()), speaker)
            return
        if name == "say-as":
            self.text(self._say_as(element), speaker)
            return
        if name == "voice":
            speaker = self._speaker(element, speaker)
        elif name in ("p", "s"):
            self.boundary(0.0)
        elif name == "prosody":
            if element.get("rate") is not None and element is not self.whole:
                self.warnings.append("<prosody rate> applies only around the whole "
                                     "document; this one was ignored")
        elif name != "speak":
            self.warnings.append(f"SSML element <{name}> is not supported; its text is read "
                                 "as written")
        self.text(element.text, speaker)
        for child in element:
            self.walk(child, depth + 1, speaker)
            self.text(child.tail, speaker)
        if name in ("p", "s"):
            self.boundary(0.0)

    def _speaker(self, element: ET.Element, current: str | None) -> str | None:
        name = element.get("name", "")
        match = SPEAKER_NAMES.match(name)
        if match:
            return f"S{int(match.group(1))}"
        self.warnings.append(f"<voice name=\"{name}\"> is not a speaker tag (S1, S2, ...); "
                             "its text keeps the surrounding speaker")
        return current

    def _say_as(self, element: ET.Element) -> str:
        kind = (element.get("interpret-as") or "").lower()
        content = "".join(element.itertext()).strip()
        try:
            return _SAY_AS[kind](content, self.lang, element.get("format"))
        except KeyError:
            self.warnings.append(f"<say-as interpret-as=\"{kind}\"> is not supported; its "
                                 "text is read as written")
        except (ValueError, NotImplementedError, OverflowError):
            self.warnings.append(f"<say-as interpret-as=\"{kind}\"> could not read "
                                 f"\"{content[:40]}\"; it is read as written")
        return content


def _break_seconds(element: ET.Element) -> float:
    time = element.get("time")
    if time is not None:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", time)
        if not match:
            raise InvalidInput(f"<break time=\"{time}\"> is not a duration; write it as "
                               "\"500ms\" or \"1.5s\"")
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        if seconds > MAX_BREAK_S:
            raise InvalidInput(f"<break time=\"{time}\"> is longer than {MAX_BREAK_S:g} s; "
                               "use several breaks or a shorter one")
        return seconds
    strength = element.get("strength", "medium")
    if strength not in STRENGTHS:
        raise InvalidInput(f"<break strength=\"{strength}\"> is not one of "
                           f"{', '.join(STRENGTHS)}")
    return STRENGTHS[strength]


def _rate(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value in RATES:
        return RATES[value]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", value)
    if not match:
        raise InvalidInput(f"<prosody rate=\"{value}\"> is not a rate; use x-slow, slow, "
                           "medium, fast, x-fast or a percentage such as 120%")
    rate = float(match.group(1)) / (100 if match.group(2) else 1)
    if not 0.25 <= rate <= 4.0:
        raise InvalidInput(f"<prosody rate=\"{value}\"> is outside 25%-400%")
    return rate


def _words(number: int | float, lang: str, **kwargs) -> str:
    try:
        spoken = num2words(number, lang=lang, **kwargs)
    except NotImplementedError:
        lang, spoken = "en", num2words(number, lang="en", **kwargs)
    return spoken.replace(",", "") if lang == "en" else spoken


def _characters(content: str, lang: str, fmt: str | None) -> str:
    return " ".join(c for c in content if not c.isspace())


def _cardinal(content: str, lang: str, fmt: str | None) -> str:
    return _words(int(content.replace(",", "")), lang)


def _ordinal(content: str, lang: str, fmt: str | None) -> str:
    return _words(int(re.sub(r"(st|nd|rd|th|\.)$", "", content.replace(",", ""))), lang,
                  to="ordinal")


def _digits(content: str, lang: str, fmt: str | None) -> str:
    return " ".join(_words(int(d), lang) for d in content if d.isdigit())


def _telephone(content: str, lang: str, fmt: str | None) -> str:
    groups = re.findall(r"\+?\d+", content)
    if not groups:
        raise ValueError(content)
    return ", ".join(("plus " if g.startswith("+") else "") + _digits(g, lang, None)
                     for g in groups)


def _date(content: str, lang: str, fmt: str | None) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", content)]
    order = (fmt or ("ymd" if re.match(r"\d{4}", content) else "mdy")).lower()
    if len(numbers) != len(order) or set(order) - set("ymd"):
        raise ValueError(content)
    parts = dict(zip(order, numbers, strict=True))
    spoken = []
    if "m" in parts:
        if not 1 <= parts["m"] <= 12:
            raise ValueError(content)
        spoken.append(calendar.month_name[parts["m"]])
    if "d" in parts:
        spoken.append(_words(parts["d"], "en", to="ordinal"))
    text = " ".join(spoken)
    if "y" in parts:
        text = f"{text}, {_words(parts['y'], 'en', to='year')}" if text else \
            _words(parts["y"], "en", to="year")
    return text


def _time(content: str, lang: str, fmt: str | None) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?\s*([ap]\.?m\.?)?", content.lower())
    if not match:
        raise ValueError(content)
    hour, minute = int(match.group(1)), int(match.group(2))
    spoken = _words(hour, "en")
    if minute:
        spoken += f" oh {_words(minute, 'en')}" if minute < 10 else f" {_words(minute, 'en')}"
    elif not match.group(3):
        spoken += " o'clock"
    if match.group(3):
        spoken += " a m" if match.group(3).startswith("a") else " p m"
    return spoken


_SAY_AS = {"characters": _characters, "spell-out": _characters, "cardinal": _cardinal,
           "number": _cardinal, "ordinal": _ordinal, "digits": _digits, "date": _date,
           "time": _time, "telephone": _telephone}
