"""Turn a chat message into what a person would say aloud.

Chat front-ends send LLM replies verbatim: markdown emphasis, headings, lists, code
blocks, links and emoji, which a TTS model reads as "asterisk" or spells out. Roleplay
messages mark actions with single asterisks (``*waves*``); they are dropped, narrated as
a sentence of their own, or kept as words, per config. Dia's speaker tags (``[S1]``)
and nonverbals (``(laughs)``) pass through untouched.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from ttsframe import InvalidInput, TextContext, TextPreprocessor


class ChatTextConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.chattext]``."""

    actions: Literal["drop", "narrate", "keep"] = "drop"
    code_blocks: Literal["drop", "announce"] = "announce"
    code_announcement: str = "Code omitted."
    urls: Literal["drop", "domain"] = "drop"  # "domain": "a link to example.com"
    emoji: Literal["drop", "keep"] = "drop"
    order: int = 10  # before role tagging (20) and speaker-tag normalisation (30)
    # Clean every request that does not say; false: only requests with "chat_text": true.
    apply_by_default: bool = True


_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]+|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?://|www\.)[^>\s]+)>")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.M)
_SETEXT = re.compile(r"^[ \t]*(=+|-+)[ \t]*$", re.M)
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.M)
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.M)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?", re.M)
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$",
                         re.M)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)
_ACTION = re.compile(r"\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*")
_UNDERSCORE_EM = re.compile(r"(?<![\w])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w])")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols, flags' letters
    "\U00002600-\U000027bf"  # miscellaneous symbols and dingbats
    "\U00002b00-\U00002bff"  # arrows and stars used as emoji
    "\U0000fe00-\U0000fe0f"  # variation selectors
    "\U0000200d"  # zero-width joiner
    "\U000020e3"  # combining keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_SENTENCE_END = ".!?…:;"


def _sentence(text: str) -> str:
    """``text`` as a sentence of its own: trimmed and ending in punctuation."""
    text = text.strip()
    if text and text[-1] not in _SENTENCE_END and not text.endswith(("]", ")", '"')):
        text += "."
    return text


class ChatText(TextPreprocessor):
    name = "chattext"
    request_option = "chat_text"

    def __init__(self, config: ChatTextConfig | None = None) -> None:
        self.config = config or ChatTextConfig()
        self.order = self.config.order

    def process(self, text: str, ctx: TextContext) -> str:
        if not (self.config.apply_by_default if ctx.chat_text is None else ctx.chat_text):
            return text
        cleaned = self.clean(text)
        if not cleaned:
            raise InvalidInput("nothing is left to speak once markdown, code, links and emoji "
                               "are removed; send words, or turn the chattext plugin off")
        return cleaned

    def clean(self, text: str) -> str:
        cfg = self.config
        text = text.replace("\r\n", "\n")
        announce = f"\n{cfg.code_announcement}\n" if cfg.code_blocks == "announce" else "\n"
        text = _FENCE.sub(announce, text)
        text = _HTML_TAG.sub(" ", text)
        text = _IMAGE.sub(" ", text)
        text = _LINK.sub(lambda m: m.group(1), text)
        text = _AUTOLINK.sub(lambda m: m.group(1), text)
        text = _URL.sub(self._url, text)
        text = _INLINE_CODE.sub(lambda m: m.group(2).strip(), text)
        text = _RULE.sub("", text)
        text = _TABLE_RULE.sub("", text)
        text = _HEADING.sub(lambda m: _sentence(m.group(1)), text)
        text = _SETEXT.sub("", text)
        text = _QUOTE.sub("", text)
        text = _LIST_ITEM.sub("\u2022", text)  # a marker, made a sentence break below
        text = _STRONG.sub(lambda m: m.group(2), text)
        text = _STRIKE.sub(" ", text)  # struck-out words were taken back
        text = _ACTION.sub(self._action, text)
        text = _UNDERSCORE_EM.sub(lambda m: m.group(1), text)
        if cfg.emoji == "drop":
            text = _EMOJI.sub(" ", text)
        return self._tidy(text)

    def _url(self, match: re.Match[str]) -> str:
        if self.config.urls == "drop":
            return " "
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", match.group(0)).split("/")[0]
        return f"a link to {host}"

    def _action(self, match: re.Match[str]) -> str:
        action = match.group(1).strip()
        if self.config.actions == "drop":
            return " "
        if self.config.actions == "keep":
            return action
        return f"\n{_sentence(action[:1].upper() + action[1:])}\n"

    @staticmethod
    def _tidy(text: str) -> str:
        lines = []
        for line in text.split("\n"):
            line = line.replace("|", " ").strip()
            if line.startswith("\u2022"):
                line = _sentence(line[1:])
            if line:
                lines.append(line)
        # A line that ends without punctuation still ends a thought when the next starts.
        text = " ".join(_sentence(line) if i < len(lines) - 1 else line
                        for i, line in enumerate(lines))
        text = re.sub(r"[ \t]+", " ", text)
        text = re.sub(r"\s+([,.!?;:…])", r"\1", text)
        text = re.sub(r"([.!?…])(?:\s+[.!?])+", r"\1", text)  # ". ." left by removals
        text = re.sub(r"^[\s,.;:]+", "", text)
        return text.strip()
