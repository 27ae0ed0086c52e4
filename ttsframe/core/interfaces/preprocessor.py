"""The text-preprocessor plugin kind: rewrites or checks request text before a backend."""

from __future__ import annotations

import abc

import msgspec

from ttsframe.core.interfaces.speech_types import Role
from ttsframe.core.voices.voice import Voice


class TextContext(msgspec.Struct, kw_only=True):
    """Request facts a preprocessor may use, and where it reports warnings."""

    role: Role | None
    voice: Voice
    backend: str
    speaker_tags: bool
    # The speaker tags the backend understands (``Capabilities.speakers``).
    speakers: tuple[str, ...] = ("S1", "S2")
    # The request's language code, None when it named none.
    language: str | None = None
    # The request's "normalize" field: None leaves it to each normalizing preprocessor's
    # own setting, False asks for the text as written.
    normalize: bool | None = None
    # The request's "chat_text" field: clean up chat markup (markdown, emoji, actions);
    # None leaves it to the chat-text preprocessor's own setting.
    chat_text: bool | None = None
    warnings: list[str] = msgspec.field(default_factory=list)


class TextPreprocessor(abc.ABC):
    """Rewrites or validates request text; preprocessors run in ascending ``order``."""

    name: str
    order: int = 100
    # The request field this preprocessor answers to ("normalize", "chat_text"), if any:
    # a request that turns an option on that no loaded preprocessor answers to is told so.
    request_option: str | None = None

    @abc.abstractmethod
    def process(self, text: str, ctx: TextContext) -> str:
        """Return the new text; raise ``InvalidInput`` to reject the request (400)."""
