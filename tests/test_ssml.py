"""The SSML subset: parsing (core/text/ssml.py), and breaks as real silence in the audio, on
the kit's fake backend and on the tiny Dia model."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf

from ttsframe.core.audio_math import CROSSFADE_MS
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.core.text.ssml import parse_ssml
from ttsframe.testing.app import app_client, make_services
from ttsframe.testing.waiting import eventually


def segments(text: str) -> list[tuple[str, str | None, float]]:
    return [(s.text, s.speaker, s.pause_s) for s in parse_ssml(text).segments]


def test_breaks_end_a_segment_with_their_silence():
    assert segments('<speak>One.<break time="500ms"/>Two.<break time="1.5s"/>Three.</speak>') \
        == [("One.", None, 0.5), ("Two.", None, 1.5), ("Three.", None, 0.0)]
    assert segments('<speak>A<break strength="strong"/>B<break/>C</speak>') == \
        [("A", None, 1.0), ("B", None, 0.5), ("C", None, 0.0)]


def test_breaks_in_a_row_add_up_and_a_leading_break_is_kept():
    doc = parse_ssml('<speak><break time="1s"/>Hi.<break time="200ms"/>'
                     '<break time="300ms"/>Bye.</speak>')
    assert [(s.text, s.pause_s) for s in doc.segments] == [("", 1.0), ("Hi.", 0.5),
                                                          ("Bye.", 0.0)]


def test_paragraphs_and_sentences_are_boundaries():
    assert segments("<speak><p><s>First.</s><s>Second.</s></p><p>Third.</p></speak>") == \
        [("First.", None, 0.0), ("Second.", None, 0.0), ("Third.", None, 0.0)]


def test_sub_say_as_and_voice():
    text = ('<speak><voice name="S2">Use <sub alias="World Wide Web">WWW</sub>.</voice> '
            'Code <say-as interpret-as="characters">AB1</say-as>, '
            '<say-as interpret-as="cardinal">42</say-as>, '
            '<say-as interpret-as="ordinal">3</say-as>, '
            '<say-as interpret-as="digits">907</say-as>, '
            '<say-as interpret-as="date" format="mdy">12/25/2024</say-as>, '
            '<say-as interpret-as="time">3:05 pm</say-as>, '
            '<say-as interpret-as="telephone">555-0100</say-as>.</speak>')
    assert segments(text) == [
        ("Use World Wide Web.", "S2", 0.0),
        ("Code A B 1, forty-two, third, nine zero seven, December twenty-fifth, twenty "
         "twenty-four, three oh five p m, five five five, zero one zero zero.", None, 0.0)]


def test_say_as_follows_the_language():
    doc = parse_ssml('<speak><say-as interpret-as="cardinal">21</say-as></speak>', "de")
    assert doc.segments[0].text == "einundzwanzig"


def test_a_document_wide_prosody_rate_is_the_speed():
    assert parse_ssml('<speak><prosody rate="slow">Hi.</prosody></speak>').rate == 0.75
    assert parse_ssml('<speak><prosody rate="120%">Hi.</prosody></speak>').rate == 1.2
    inner = parse_ssml('<speak>Hi <prosody rate="fast">there</prosody>.</speak>')
    assert inner.rate is None
    assert any("whole document" in w for w in inner.warnings)


def test_other_elements_are_read_as_text_with_a_warning():
    doc = parse_ssml('<speak>Very <emphasis level="strong">important</emphasis>.</speak>')
    assert doc.segments[0].text == "Very important."
    assert doc.warnings == ["SSML element <emphasis> is not supported; its text is read as "
                            "written"]


def test_xml_entities_work_and_namespaces_are_understood():
    doc = parse_ssml('<speak xmlns="http://www.w3.org/2001/10/synthesis">Salt &amp; '
                     'pepper<break time="100ms"/>done</speak>')
    assert [(s.text, s.pause_s) for s in doc.segments] == [("Salt & pepper", 0.1),
                                                          ("done", 0.0)]


@pytest.mark.parametrize(("text", "message"), [
    ("<speak>Hello <b>there</speak>", "not well-formed at line 1, column 24"),
    ("<speak>\n  <p>Open\n</speak>", "not well-formed at line 3, column 3"),
    ("<speak>Hi", "not well-formed at line 1"),
    ('<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>', "<!DOCTYPE> or <!ENTITY>"),
    ('<speak><!ENTITY a "b">x</speak>', "<!DOCTYPE> or <!ENTITY>"),
    ("<speaker>Hi</speaker>", "<speak> as its root"),
    ("Hi <b>there", "not well-formed at line 1, column 14"),
    ('<speak>A<break time="11s"/>B</speak>', "longer than 10 s"),
    ('<speak>A<break time="soon"/>B</speak>', "not a duration"),
    ('<speak>A<break strength="huge"/>B</speak>', "not one of"),
    ('<speak><prosody rate="9000%">A</prosody></speak>', "outside 25%-400%"),
    ("<speak><break/></speak>", "no text to speak"),
    ("<speak>" + "<s>" * 40 + "deep" + "</s>" * 40 + "</speak>", "nested deeper"),
])
def test_bad_ssml_is_a_clear_400(text, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        parse_ssml(text)


def wav_of(reply) -> tuple[np.ndarray, int]:
    assert reply.status_code == 200, reply.text
    samples, rate = sf.read(io.BytesIO(reply.content), dtype="int16")
    return samples, rate


def longest_silence(samples: np.ndarray, rate: int) -> float:
    """The longest run of exactly silent samples, in seconds."""
    silent = np.concatenate([[0], (samples == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(silent))
    runs = edges[1::2] - edges[::2]
    return (runs.max() if runs.size else 0) / rate


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Iterator:
    services = make_services(tmp_path_factory.mktemp("ssml"))
    with app_client(services) as client:
        yield client


@pytest.mark.parametrize("pause", [0.25, 0.7, 2.0])
def test_a_break_adds_exactly_its_silence(fake, pause):
    body = {"voice_id": "alloy", "seed": 7}
    plain, rate = wav_of(fake.post("/generate", json={
        **body, "text": "<speak><p>Good morning.</p><p>See you.</p></speak>"}))
    paused, _ = wav_of(fake.post("/generate", json={
        **body, "text": f'<speak>Good morning.<break time="{pause}s"/>See you.</speak>'}))
    # The plain reply's two parts overlap by the crossfade; the break's parts do not.
    assert abs((paused.size - plain.size) / rate - pause - CROSSFADE_MS / 1000) < 0.001
    assert longest_silence(paused, rate) >= pause


def test_speed_does_not_shorten_a_break(fake):
    body = {"voice_id": "alloy", "seed": 7, "speed": 2.0}
    plain, rate = wav_of(fake.post("/generate", json={
        **body, "text": "<speak><p>Good morning.</p><p>See you.</p></speak>"}))
    paused, _ = wav_of(fake.post("/generate", json={
        **body, "text": '<speak>Good morning.<break time="1s"/>See you.</speak>'}))
    assert abs((paused.size - plain.size) / rate - 1.0 - CROSSFADE_MS / 2000) < 0.02


def test_streamed_and_whole_replies_carry_the_same_breaks(fake):
    text = '<speak><break time="300ms"/>Hi there.<break time="600ms"/>Bye.</speak>'
    whole, rate = wav_of(fake.post("/generate", json={"text": text, "seed": 3}))
    streamed = fake.post("/generate", json={"text": text, "seed": 3, "stream": True,
                                            "response_format": "pcm"})
    pcm = np.frombuffer(streamed.content, dtype="<i2")
    assert pcm.size == whole.size
    assert np.array_equal(pcm, whole)
    assert longest_silence(whole, rate) >= 0.6


def test_input_format_text_reads_markup_as_written(fake):
    reply = fake.post("/text/preview", json={"text": "<speak>Hi</speak>",
                                             "input_format": "text", "normalize": False})
    assert reply.json()["chunks"][0]["text"].endswith("<speak>Hi</speak>")
    # "ssml" reads a fragment as if it were inside <speak>.
    forced = fake.post("/text/preview", json={"text": "  Hi<break time='1s'/>there",
                                              "input_format": "ssml"}).json()
    assert [c["pause_after_s"] for c in forced["chunks"]] == [1.0, 0.0]


def test_malformed_ssml_over_http_names_line_and_column(fake):
    reply = fake.post("/v1/audio/speech", json={"input": "<speak>\nHello <b>x</speak>",
                                                "voice": "alloy"})
    assert reply.status_code == 400
    assert "line 2, column 13" in reply.json()["detail"]


def test_a_prosody_rate_job_is_read_again_at_the_same_speed(tmp_path):
    """A stored job's request keeps the speed the client sent: preparing it again (as a
    restart does) applies the document's rate once, not twice."""
    services = make_services(tmp_path)
    text = '<speak><prosody rate="200%">Good morning to you all.</prosody></speak>'
    with app_client(services) as client:
        whole = client.post("/generate", json={"text": text, "seed": 1})
        plain = client.post("/generate", json={"text": "Good morning to you all.", "seed": 1})
        job = client.post("/generate?async_mode=true", json={"text": text, "seed": 1}).json()
        eventually(lambda: client.get(f"/jobs/{job['job_id']}").json()["status"] ==
                   "completed", timeout=30, interval=0.05)
        stored = client.get(f"/jobs/{job['job_id']}/result")
        request = SpeechRequest(text=text, voice_id="alloy")
        first = client.blocking_portal.call(services.speech.preview, request)
        second = client.blocking_portal.call(services.speech.preview, request)
    assert abs(float(whole.headers["x-audio-duration"]) * 2
               - float(plain.headers["x-audio-duration"])) < 0.1
    assert stored.content == whole.content
    assert (request.speed, first.speed, second.speed) == (1.0, 2.0, 2.0)

