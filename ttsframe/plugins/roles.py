"""Role tagging: chat roles become speaker tags (user -> the backend's first speaker, [S1]
for Dia; assistant/system -> its second, [S2]; a backend with one speaker gives it to all).

Only untagged text is tagged; text that already starts with a speaker tag is the
caller's explicit choice and is left alone.

A cloned voice (one with an audio prompt) is different: Dia gives the prompt's voice to
the speaker its transcript is tagged with (the voice's ``primary_speaker``), so untagged
text for a cloned voice always continues as that speaker, whatever the role. A role that
maps to the other speaker is reported as a warning instead of silently switching to a
voice the prompt never conditioned.
"""

from __future__ import annotations

from ttsframe import TextContext, TextPreprocessor, hookimpl, speaker_of_leading_tag

# Which of the backend's speakers a role takes: the first for the user, the second (the
# only one, for a backend with one) for the assistant and the system.
ROLE_SPEAKERS = {"user": 0, "assistant": 1, "system": 1}


class RoleTagger(TextPreprocessor):
    name = "roles"
    order = 20

    def process(self, text: str, ctx: TextContext) -> str:
        if not ctx.speaker_tags or not ctx.speakers or ctx.role is None \
                or speaker_of_leading_tag(text) is not None:
            return text
        speaker = ctx.speakers[min(ROLE_SPEAKERS[ctx.role], len(ctx.speakers) - 1)]
        voice = ctx.voice
        if voice.audio_prompt and speaker != voice.primary_speaker:
            ctx.warnings.append(
                f"role '{ctx.role}' maps to [{speaker}], but cloned voice '{voice.voice_id}' "
                f"speaks as [{voice.primary_speaker}] (its transcript's speaker); used "
                f"[{voice.primary_speaker}]. Start the text with a tag to choose a speaker")
            speaker = voice.primary_speaker
        return f"[{speaker}] {text}"


@hookimpl
def register_preprocessors(register):
    register("roles", lambda ctx: RoleTagger())
