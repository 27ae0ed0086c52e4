"""Speaker-tag normalisation: canonical ``[S1]``/``[S2]`` spelling, a leading tag always.

Runs after role tagging, so text that is still untagged gets the voice's primary speaker.
Tags the model does not know (``[S3]``) are rejected instead of being read aloud.
"""

from __future__ import annotations

from ttsframe import (
    InvalidInput,
    TextContext,
    TextPreprocessor,
    canonical_tags,
    hookimpl,
    speaker_of_leading_tag,
    without_speaker_tags,
)


class SpeakerTagNormaliser(TextPreprocessor):
    name = "speaker_tags"
    order = 30

    def process(self, text: str, ctx: TextContext) -> str:
        if not ctx.speaker_tags:
            return without_speaker_tags(text)

        text = canonical_tags(text, lambda tag: (
            f"unknown speaker tag [{tag}]: backend '{ctx.backend}' knows "
            f"{', '.join(f'[{s}]' for s in ctx.speakers)}"), ctx.speakers)
        if speaker_of_leading_tag(text) is None:
            text = f"[{ctx.voice.primary_speaker}] {text}"
        if not without_speaker_tags(text):
            raise InvalidInput("text contains only speaker tags; add words to speak")
        return text


@hookimpl
def register_preprocessors(register):
    register("speaker_tags", lambda ctx: SpeakerTagNormaliser())
