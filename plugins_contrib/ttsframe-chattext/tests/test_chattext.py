"""chattext on real chat messages, each config choice, the contract suite, and the
preprocessor in a running app ahead of role tagging."""

from __future__ import annotations

import pytest
from ttsframe_chattext import ChatText, ChatTextConfig

from ttsframe import ConfigError
from ttsframe.testing.contracts import PreprocessorContract

ROLEPLAY = "*smiles warmly and sets down her cup* Oh, you're back! I missed you. 😊"
CODE = ("Here's how you do it:\n\n```python\nprint('hello')\n```\n\n"
        "That's **all** there is to it!")
MARKDOWN = ("## Summary\n\n1. First, open the file.\n2. Then edit `config.toml`\n"
            "- Finally, check https://example.com/docs?page=2 for more.")
LINKS = "Sure! Check out [the docs](https://docs.example.com/guide) or visit www.example.org."


def clean(text: str, **config) -> str:
    return ChatText(ChatTextConfig(**config)).clean(text)


def test_roleplay_actions_are_dropped_by_default():
    assert clean(ROLEPLAY) == "Oh, you're back! I missed you."


def test_actions_can_be_narrated_or_kept():
    assert clean(ROLEPLAY, actions="narrate") == (
        "Smiles warmly and sets down her cup. Oh, you're back! I missed you.")
    assert clean(ROLEPLAY, actions="keep") == (
        "smiles warmly and sets down her cup Oh, you're back! I missed you.")
    assert clean("[S1] Hello there. (laughs) *winks*", actions="narrate") == (
        "[S1] Hello there. (laughs) Winks.")


def test_code_blocks_are_announced_or_dropped():
    assert clean(CODE) == "Here's how you do it: Code omitted. That's all there is to it!"
    assert clean(CODE, code_blocks="drop") == "Here's how you do it: That's all there is to it!"
    assert clean(CODE, code_announcement="Skipping the code.") == (
        "Here's how you do it: Skipping the code. That's all there is to it!")
    # A reply cut off inside a code block (a streamed chat message) loses the rest.
    assert clean("Try this:\n```\nrm -rf build", code_blocks="drop") == "Try this:"


def test_markdown_structure_becomes_sentences():
    assert clean(MARKDOWN) == (
        "Summary. First, open the file. Then edit config.toml. Finally, check for more.")
    assert clean("Title\n=====\n\n> quoted\n\n---\n\n- [x] done item") == (
        "Title. quoted. done item.")


def test_urls_are_dropped_or_named_by_domain():
    assert clean(LINKS) == "Sure! Check out the docs or visit."
    assert clean(LINKS, urls="domain") == "Sure! Check out the docs or visit a link to example.org."
    assert clean("See <https://www.python.org/downloads/>.", urls="domain") == (
        "See a link to python.org.")
    assert clean("![diagram](https://x.io/a.png) As shown.") == "As shown."


def test_emoji_go_and_punctuation_stays():
    assert clean("And my reply... I think so?! 🤔👍🏽 🇫🇷 ❤️") == "And my reply... I think so?!"
    assert clean("Great 👍", emoji="keep") == "Great 👍"


def test_emphasis_and_strikethrough():
    text = "It is __really__ loud, **very** loud. ~~no~~ _maybe_ but snake_case_name stays."
    assert clean(text) == "It is really loud, very loud. maybe but snake_case_name stays."


def test_text_that_is_not_markdown_is_left_alone():
    for text in ["5 * 3 * 2 = 30, and 2*3 = 6.", "[S1] Hi. [S2] Hello! (laughs)",
                 "Price: $5 (about 4.50 EUR); ok?", "Ünïcödé café, naïve, 東京."]:
        assert clean(text) == text


def test_nothing_left_to_speak_is_a_clear_400(ttsframe_client):
    client = ttsframe_client({"plugins": {"chattext": {"code_blocks": "drop"}}},
                             entry_points=["chattext"])
    r = client.post("/generate", json={"text": "👍\n```\nprint(1)\n```", "voice_id": "alloy"})
    assert r.status_code == 400
    assert "nothing is left to speak" in r.json()["detail"]


class TestChatTextContract(PreprocessorContract):
    samples = [ROLEPLAY, CODE, MARKDOWN, LINKS, "*nods*  Sure.  **Bold** _it_ 🎉"]

    @pytest.fixture(params=["drop", "narrate", "keep"])
    def preprocessor(self, request):
        return ChatText(ChatTextConfig(actions=request.param, urls="domain"))


def test_runs_before_role_tagging_in_the_app(ttsframe_services, ttsframe_client):
    services = ttsframe_services(entry_points=["chattext"])
    names = [p.name for p in services.preprocessors]
    assert names.index("chattext") < names.index("roles") < names.index("speaker_tags")
    # The kit's beeper gives 0.2 s per word: "[S2] Oh, you're back! I missed you." is 7.
    client = ttsframe_client(entry_points=["chattext"])
    r = client.post("/generate", json={"text": ROLEPLAY, "voice_id": "alloy",
                                       "role": "assistant"})
    assert r.status_code == 200, r.text
    assert r.headers["x-audio-duration"] == "1.400"


def test_config_is_validated_at_startup(ttsframe_services):
    with pytest.raises(ConfigError, match=r"plugins.chattext.actions.*'drop', 'narrate'"):
        ttsframe_services({"plugins": {"chattext": {"actions": "shout"}}},
                          entry_points=["chattext"])


def test_each_request_chooses_with_chat_text(ttsframe_services):
    from ttsframe.testing.app import app_client

    services = ttsframe_services({"plugins": {"chattext": {"apply_by_default": False}}},
                                 entry_points=["chattext"])
    backend = services.backends["beeper"]
    with app_client(services) as client:
        for chat_text in (None, True, False):
            body = {"text": "**Hi** there 😊", "voice_id": "alloy", "chat_text": chat_text}
            assert client.post("/generate", json=body).status_code == 200
    assert [t.text for t in backend.tasks] == ["[S1] **Hi** there 😊", "[S1] Hi there",
                                               "[S1] **Hi** there 😊"]
