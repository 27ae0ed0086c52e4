"""What a request sends comes back short and harmless: error replies quote a prefix of a
long value, header values carry no control characters and have a length limit, and
log records are cut and not repeated without end."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import make_services
from ttsframe.http.errors import MAX_DETAIL_CHARS, clip_detail
from ttsframe.http.log_limits import MAX_MESSAGE_CHARS, ClipLongRecords, DropRepeats
from ttsframe.http.responses import MAX_HEADER_CHARS, header_value
from ttsframe.testing.app import app_client

HUGE = "v" * 2_000_000


@pytest.fixture
def c(tmp_path):
    with app_client(make_services(tmp_path)) as client:
        yield client


@pytest.mark.parametrize(("path", "body"), [
    ("/generate", {"text": "hi", "voice_id": HUGE}),
    ("/generate", {"text": "hi", "model": HUGE}),
    ("/generate", {"text": "hi", "response_format": HUGE}),
    ("/v1/audio/speech", {"input": "hi", "voice": HUGE}),
    ("/v1/audio/speech", {"input": "hi", "voice": "alloy", "response_format": HUGE}),
])
def test_an_error_quotes_only_a_prefix_of_a_huge_value(c, path, body):
    r = c.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert len(r.content) < 3 * MAX_DETAIL_CHARS, len(r.content)
    assert "characters)" in r.json()["detail"]


def test_clip_detail_keeps_the_advice_around_a_long_quote():
    detail = clip_detail(f"Voice '{'x' * 5000}' not found; list voices with GET /voices")
    assert detail == (f"Voice '{'x' * 199}... (5002 characters) not found; list voices "
                      "with GET /voices")


def test_header_values_are_one_short_latin1_line():
    assert header_value("one\r\nX-Injected: 1\x00two\x7f") == "one X-Injected: 1 two "
    assert len(header_value("w" * 100_000)) == MAX_HEADER_CHARS
    assert header_value("é中") == "é?"


def _records(*filters: logging.Filter) -> tuple[logging.Logger, list[str]]:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(self.format(record))

    handler = Keep()
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger(f"test-bounds-{id(seen)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger, seen


def test_a_log_record_repeats_at_most_a_bounded_part_of_a_request():
    logger, seen = _records(ClipLongRecords())
    logger.warning("request x: %s", "z" * 1_000_000)
    assert len(seen[0]) < MAX_MESSAGE_CHARS + 100


def test_the_same_error_is_logged_once_per_interval_with_a_count():
    repeats = DropRepeats(interval_s=3600)
    logger, seen = _records(repeats)

    def accept_failed() -> None:  # one place in the code, as asyncio's accept loop
        logger.error("socket.accept() out of system resource")

    for _ in range(1000):
        accept_failed()
    assert len(seen) == 1
    repeats._last = {k: (v[0] - 3600, v[1]) for k, v in repeats._last.items()}
    accept_failed()
    assert seen[1].endswith("(and 999 more like it not logged)")


@pytest.mark.parametrize("language", ["en\r\nX-Injected: 1", "en\x00", "e" * 100_000,
                                      "english please"])
def test_a_language_that_is_not_a_short_code_is_refused(tmp_path, language):
    import asyncio

    from ttsframe.core.errors import InvalidInput
    from ttsframe.core.interfaces.speech_types import SpeechRequest

    services = make_services(tmp_path)
    request = SpeechRequest(text="[S1] Hello.", voice_id="alloy", language=language)
    with pytest.raises(InvalidInput, match="is not a language code") as refused:
        asyncio.run(services.speech.prepare(request))
    assert len(refused.value.message) < 200
    ok = SpeechRequest(text="[S1] Hello.", voice_id="alloy", language="zh-cn")
    asyncio.run(services.speech.prepare(ok))
