"""The bad-input catalogue (docs/bad-input.md), one case per row: each class of bad input
gets a clear 4xx whose ``detail`` says what is wrong, never a 5xx, and nothing stored
changes (files, voices, prompts, jobs and logs compared before and after). A few rows are
accepted on purpose; they are marked as such in the catalogue and here.

``test_every_row_of_the_catalogue_has_a_test`` keeps the document and these cases in step.
"""

from __future__ import annotations

import io
import json
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.job_helpers import wait_for
from tests.stored_state import stored_state
from tests.voice_fixtures import sine_wav
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "bad-input.md"
LIMIT_MB = 1


# --------------------------------------------------------------------------- hostile files


def wav_header(rate: int, channels: int, frames: int = 4410, data_size: int | None = None
               ) -> bytes:
    """A PCM WAV whose header says what we like, followed by ``frames`` of silence."""
    data = b"\0" * (frames * max(channels, 1) * 2)
    size = len(data) if data_size is None else data_size
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fmt + b"data"
            + struct.pack("<I", size) + data)


def flac_declaring(seconds: float) -> bytes:
    """One second of FLAC whose STREAMINFO claims ``seconds`` of audio."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(44100, np.float32), 44100, format="FLAC")
    data = bytearray(buf.getvalue())
    bits = int.from_bytes(data[18:26], "big")
    total_mask = (1 << 36) - 1
    bits = (bits & ~total_mask) | int(seconds * 44100)
    data[18:26] = bits.to_bytes(8, "big")
    return bytes(data)


def silent_mp3(minutes: float) -> bytes:
    """Minutes of silence in a few hundred KB: 8 kHz mono MP3 at 8 kbit/s."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=8000, layout="mono")
        stream.bit_rate = 8000
        block = np.zeros((1, 80000), np.float32)
        for _ in range(int(minutes * 6)):
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate = 8000
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    id: str
    call: Callable[[TestClient], object]
    status: int
    says: str  # a fragment of ``detail``; for accepted rows, of the content type


def raw(path: str, body: bytes, content_type: str = "application/json", method: str = "post"):
    return lambda c: c.request(method.upper(), path, content=body,
                               headers={"content-type": content_type})


def gen(**body):
    return lambda c: c.post("/generate", json=body)


def upload(data: bytes, prompt_id: str = "new", filename: str = "sample.wav"):
    return lambda c: c.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                            files={"audio_file": (filename, data, "application/octet-stream")})


def multipart(filename: bytes | None, data: bytes | None = None, *, parts: bytes = b"",
              header: bytes = b"") -> Callable[[TestClient], object]:
    """An upload written byte by byte, so that its filename can hold anything: ``None``
    sends ``audio_file`` with no filename at all (a text field)."""
    disposition = b'form-data; name="audio_file"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    body = (b'--XyZb\r\nContent-Disposition: form-data; name="prompt_id"\r\n\r\nnew\r\n'
            + parts + b"--XyZb\r\nContent-Disposition: " + disposition + b"\r\n" + header
            + b"Content-Type: audio/wav\r\n\r\n" + (sine_wav() if data is None else data)
            + b"\r\n--XyZb--\r\n")
    return raw("/audio_prompts/upload", body, "multipart/form-data; boundary=XyZb")


ID_ROUTES = [("get", "/voice_mappings/{}"), ("put", "/voice_mappings/{}"),
             ("delete", "/voice_mappings/{}"), ("delete", "/audio_prompts/{}"),
             ("get", "/jobs/{}"), ("get", "/jobs/{}/result"), ("delete", "/jobs/{}"),
             ("get", "/logs/{}"), ("get", "/logs/{}/download"), ("delete", "/logs/{}")]
ID_RULE = "use 1-64 characters: letters, digits, '_' and '-'"
HOSTILE_IDS = {  # row id: (what goes in the path, status, what the answer says)
    "id-dotdot": ("%2e%2e", 400, "contains a path separator or '..'"),
    "id-dotdot-in-name": ("a..b", 400, "contains a path separator or '..'"),
    "id-traversal": ("..%2Fx", 404, "no endpoint"),
    "id-slash": ("a%2Fb", 404, "no endpoint"),
    "id-backslash": ("a%5Cb", 400, "contains a path separator or '..'"),
    "id-too-long": ("a" * 200, 400, "is 200 characters long"),
    "id-nul": ("%00", 400, "contains characters that are not allowed"),
    "id-hidden-file": (".voices", 400, "contains characters that are not allowed"),
    "id-space": ("a%20b", 400, "contains characters that are not allowed"),
    "id-not-utf8": ("%ff", 400, "contains characters that are not allowed"),
}


def id_cases() -> Iterator[Case]:
    for row, (value, status, says) in HOSTILE_IDS.items():
        for method, path in ID_ROUTES:
            route = path.format(value)
            kwargs = {"json": {"style": "x"}} if method == "put" else {}
            yield Case(f"{row}[{method.upper()} {path.format('{id}')}]",
                       lambda c, m=method, r=route, k=kwargs: c.request(m.upper(), r, **k),
                       status, says)


HALF_WAV = sine_wav(2.0)[: len(sine_wav(2.0)) // 2]


def float_wav(samples: np.ndarray, rate: int = 44100) -> bytes:
    """A 32-bit float WAV written by soundfile, values as given (NaN and infinity too)."""
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def near_constant(seconds: float = 1.0) -> np.ndarray:
    """A DC offset with a wobble at -80 dBFS: no voice in it."""
    noise = np.random.default_rng(0).standard_normal(int(44100 * seconds))
    return 0.5 + 1e-4 * noise
CASES: list[Case] = [
    # JSON bodies
    Case("json-malformed", raw("/generate", b'{"text": "hi"'), 400, "not valid JSON"),
    Case("json-not-an-object", raw("/generate", b"[1, 2]"), 400, "Invalid request: data: "),
    Case("json-empty-body", raw("/generate", b""), 400, "the request body is empty"),
    Case("json-invalid-utf8", raw("/generate", b'{"text": "\xff\xfe"}'), 400, "not UTF-8"),
    Case("json-lone-surrogate", raw("/generate", b'{"text": "\\ud800"}'), 400,
         "not valid JSON"),
    Case("json-raw-control-char", raw("/generate", b'{"text": "a\x00b"}'), 400,
         "not valid JSON"),
    Case("json-deeply-nested", raw("/generate", b"[" * 100_000 + b"]" * 100_000), 400,
         "nested too deeply"),
    Case("json-number-overflow", raw("/generate", b'{"text": "hi", "speed": 1e999}'), 400,
         "Number out of range"),
    Case("json-wrong-type", gen(text=5), 400, "Invalid request: text: "),
    Case("json-out-of-range", gen(text="hi", temperature=9), 400, "temperature"),
    Case("json-negative-seed", gen(text="hi", seed=-1), 400, "seed"),
    Case("json-too-large", raw("/generate", b'{"text": "' + b"a" * (2 << 20) + b'"}'), 413,
         "larger than the 1 MB the server accepts"),
    Case("json-form-encoded", lambda c: c.post("/generate", data={"text": "hi"}), 415,
         "Content-Type: application/x-www-form-urlencoded"),
    Case("json-multipart", lambda c: c.post("/generate", files={"f": ("a", b"x")}), 415,
         "Content-Type: multipart/form-data"),
    Case("json-text-plain", raw("/voice_mappings", b'{"voice_id": "plain"}', "text/plain"),
         415, "send the JSON body with the header Content-Type: application/json"),
    Case("json-no-content-type",
         lambda c: c.post("/generate", content=b'{"text": "hi"}'), 415, "no Content-Type"),
    Case("json-large-wrong-type", raw("/generate", b'{"text": 5, "pad": "' + b"a" * 300_000
                                      + b'"}'), 400,
         "Invalid request: Expected `str | null`, got `int` - at `$.text`"),
    Case("json-large-malformed", raw("/generate", b'{"text": "hi", "pad": "' + b"a" * 300_000),
         400, "not valid JSON"),
    Case("json-untyped-too-large", lambda c: c.put(
        "/config", content=b'{"pad": "' + b"a" * ((1 << 20) + 1000) + b'"}',
        headers={"content-type": "application/json"}), 413,
         "the JSON body is 1049587 bytes; this route reads at most 1024 KiB of JSON"),
    Case("json-unknown-fields (accepted)", gen(text="hi", colour="blue"), 200, "audio/wav"),
    Case("json-numbers-as-strings (accepted)", gen(text="hi", speed="1.5"), 200, "audio/wav"),
    # the text
    Case("text-missing", gen(voice_id="alloy"), 400, "missing text"),
    Case("text-empty", gen(text=""), 400, "text is empty"),
    Case("text-whitespace", gen(text=" \n\t "), 400, "text is empty"),
    Case("text-too-long", gen(text="a" * 100_000), 400,
         "text is 100000 characters; the limit is 4096"),
    Case("text-only-speaker-tags", gen(text="[S1] [S2]"), 400, "only speaker tags"),
    Case("text-unknown-speaker", gen(text="[S3] hello"), 400, "[S3]"),
    Case("text-both-fields-differ", gen(text="a", input="b"), 400, "both set and differ"),
    Case("text-only-nonverbals (accepted)", gen(text="(laughs) (sighs)"), 200, "audio/wav"),
    Case("text-control-and-header-chars (accepted)",
         gen(text="one\r\nX-Injected: 1\u0000 \u00e9\u4e2d\U0001f600"), 200, "audio/wav"),
    # parameters
    Case("param-unknown-voice", gen(text="hi", voice_id="nobody"), 404,
         "Voice 'nobody' not found"),
    Case("param-hostile-voice", gen(text="hi", voice_id="../../etc/passwd"), 404,
         "Voice '../../etc/passwd' not found"),
    Case("param-unknown-format", gen(text="hi", response_format="wma"), 400,
         "supported formats: aac, flac, mp3, opus, pcm, wav"),
    Case("param-unknown-model", gen(text="hi", model="gpt-9"), 400, "Model 'gpt-9' not found"),
    Case("param-stream-and-async",
         lambda c: c.post("/generate?async_mode=true", json={"text": "hi", "stream": True}),
         400, "cannot be combined"),
    Case("query-not-a-bool", lambda c: c.post("/generate?async_mode=maybe",
                                              json={"text": "hi"}), 400, "async_mode"),
    Case("query-not-an-int", lambda c: c.get("/jobs?limit=abc"), 400, "limit"),
    Case("query-out-of-range", lambda c: c.get("/logs?limit=0"), 400,
         "limit must be between 1 and 1000"),
    Case("query-unknown-status", lambda c: c.get("/jobs?status=done"), 400,
         "unknown job status 'done'"),
    Case("query-repeated-key", lambda c: c.post("/generate?async_mode=false&async_mode=true",
                                                json={"text": "hi"}), 400,
         "query parameter 'async_mode' is sent more than once; send each query parameter once"),
    # voices and prompts by body
    Case("voice-hostile-id", lambda c: c.post("/voice_mappings", json={"voice_id": "../x"}),
         400, "voice_id '../x' contains a path separator"),
    Case("voice-hostile-prompt", lambda c: c.post(
        "/voice_mappings", json={"voice_id": "v2", "audio_prompt": "a/b"}), 400,
         "audio_prompt 'a/b' contains a path separator"),
    Case("voice-missing-prompt", lambda c: c.post(
        "/voice_mappings", json={"voice_id": "v2", "audio_prompt": "ghost"}), 404,
         "Audio prompt 'ghost' not found"),
    Case("voice-duplicate", lambda c: c.post("/voice_mappings", json={"voice_id": "mine"}),
         409, "already exists"),
    Case("voice-builtin", lambda c: c.put("/voice_mappings/alloy", json={"style": "x"}), 409,
         "built-in voice"),
    Case("voice-transcript-without-prompt", lambda c: c.post(
        "/voice_mappings", json={"voice_id": "v2", "audio_prompt_transcript": "[S1] hi"}),
         400, "audio_prompt is not"),
    Case("prompt-in-use", lambda c: c.delete("/audio_prompts/kept"), 409,
         "used by voice(s) mine"),
    # uploads
    Case("upload-hostile-id", upload(sine_wav(), prompt_id="../../etc/passwd"), 400,
         "prompt_id '../../etc/passwd' contains a path separator"),
    Case("upload-duplicate-id", upload(sine_wav(), prompt_id="kept"), 409, "already exists"),
    Case("upload-not-audio", upload(b"this is not audio\n" * 100, filename="notes.txt"), 400,
         "is not in a supported format"),
    Case("upload-image", upload(b"\x89PNG\r\n\x1a\n" + b"\0" * 4000, filename="x.png"), 400,
         "is not in a supported format"),
    Case("upload-playlist", upload(b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",
                                   filename="x.m3u8"), 400, "is not in a supported format"),
    Case("upload-empty", upload(b""), 400, "audio is empty"),
    Case("upload-header-only", upload(wav_header(44100, 1, frames=0)[:44]), 400, "audio"),
    Case("upload-truncated", upload(HALF_WAV), 400, "truncated"),
    Case("upload-huge-sample-rate", upload(wav_header(1_000_000_000, 1)), 400,
         "sample rate 1000000000 Hz is not supported"),
    Case("upload-many-channels", upload(wav_header(44100, 64, frames=100)), 400,
         "64 channels; at most 16"),
    Case("upload-zero-channels", upload(wav_header(44100, 0)), 400, "channels"),
    Case("upload-bomb-wav-header", upload(wav_header(44100, 1, data_size=44100 * 2 * 7200)),
         400, "longer than 60 s"),
    Case("upload-bomb-flac-header", upload(flac_declaring(7200), filename="x.flac"), 400,
         "longer than 60 s"),
    Case("upload-bomb-long-mp3", upload(silent_mp3(10), filename="x.mp3"), 400,
         "longer than 60 s"),
    Case("upload-too-short", upload(sine_wav(0.2)), 400, "0.2 s long"),
    Case("upload-nan", upload(float_wav(np.full(44100, np.nan))), 400,
         "44100 of 44100 samples that are not numbers (NaN or infinity)"),
    Case("upload-infinite", upload(float_wav(np.full(44100, np.inf))), 400,
         "samples that are not numbers (NaN or infinity)"),
    Case("upload-some-nan", upload(float_wav(np.where(
        np.arange(44100) % 1000 == 0, np.nan, np.sin(np.arange(44100) / 10)))), 400,
         "45 of 44100 samples that are not numbers"),
    Case("upload-silent", upload(float_wav(np.zeros(44100))), 400,
         "audio is silent or constant (no variation at all"),
    Case("upload-constant", upload(float_wav(np.full(44100, 0.5))), 400,
         "audio is silent or constant"),
    Case("upload-near-constant", upload(float_wav(near_constant())), 400,
         "audio is silent or constant (-80 dBFS, below -60 dBFS"),
    Case("upload-too-large", upload(b"\0" * ((LIMIT_MB << 20) + 1000)), 413,
         "larger than the 1 MB limit (storage.max_upload_mb)"),
    Case("upload-missing-file", lambda c: c.post("/audio_prompts/upload",
                                                 data={"prompt_id": "p"}), 400,
         "multipart/form-data"),
    Case("upload-missing-id", lambda c: c.post(
        "/audio_prompts/upload", files={"audio_file": ("a.wav", sine_wav(), "audio/wav")}), 400,
         "missing form field 'prompt_id'"),
    Case("upload-as-json", lambda c: c.post("/audio_prompts/upload", json={"prompt_id": "p"}),
         400, "send multipart/form-data"),
    Case("upload-filename-crlf", multipart(b"a\r\nb.wav"), 400,
         "the multipart/form-data body is malformed"),
    Case("upload-filename-header-break", multipart(b"a.wav\r\n\r\n"), 400,
         "form field 'audio_file' has no filename, so it is read as text, and is longer"),
    Case("upload-filename-line-break", multipart(b"a%0D%0Ab.wav"), 400,
         "contains control characters such as a line break or NUL"),
    Case("upload-filename-nul", multipart(b"a\x00b.wav"), 400,
         "contains control characters such as a line break or NUL"),
    Case("upload-filename-escape", multipart(b"a\x1b[31m.wav"), 400,
         "contains control characters such as a line break or NUL"),
    Case("upload-filename-not-utf8", multipart(b"\xff\xfe.wav"), 400,
         "the filename of form field 'audio_file' is not UTF-8 text"),
    Case("upload-filename-too-long", multipart(b"a" * 5000 + b".wav"), 400,
         "the filename of form field 'audio_file' is 5004 characters long; at most 255"),
    Case("upload-header-too-long", multipart(b"a" * 20_000 + b".wav"), 400,
         "a header line over 16 KiB"),
    Case("upload-file-without-filename", multipart(None, b"RIFF\xff\xfe\x00\x00WAVE"), 400,
         "form field 'audio_file' has no filename, so it is read as text, and is not UTF-8"),
    Case("upload-field-twice", multipart(b"a.wav", parts=(
        b'--XyZb\r\nContent-Disposition: form-data; name="prompt_id"\r\n\r\nkept\r\n')),
         400, "form field 'prompt_id' is sent more than once"),
    Case("upload-part-without-name", multipart(b"a.wav", parts=(
        b"--XyZb\r\nContent-Disposition: form-data\r\n\r\nx\r\n")), 400,
         "a part of the form has no name"),
    Case("upload-too-many-parts", multipart(b"a.wav", parts=b"".join(
        b'--XyZb\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i
        for i in range(20))), 400, "the form has more than 16 parts"),
    Case("upload-no-boundary", raw("/audio_prompts/upload", b"x", "multipart/form-data"), 400,
         "the multipart Content-Type has no boundary"),
    Case("upload-cut-short", raw("/audio_prompts/upload",
                                 b'--XyZb\r\nContent-Disposition: form-data; name="prompt_id"',
                                 "multipart/form-data; boundary=XyZb"), 400,
         "the multipart/form-data body is malformed"),
    # configuration
    Case("config-unknown-key", lambda c: c.put("/config", json={"colour": "blue"}), 400,
         "colour"),
    Case("config-restart-key", lambda c: c.put("/config", json={"port": 1}), 400, "port"),
    Case("config-wrong-type", lambda c: c.put("/config", json={"workers": "many"}), 400,
         "workers"),
    Case("config-null", lambda c: c.put("/config", json={"workers": None}), 400, "workers"),
    Case("config-not-an-object", lambda c: c.put("/config", json=[1]), 400,
         "Invalid request: data: "),
    # routes
    Case("route-unknown", lambda c: c.get("/nothing/here"), 404,
         "no endpoint GET /nothing/here"),
    Case("write-cross-site",
         lambda c: c.post("/voice_mappings", json={"voice_id": "xsite"},
                          headers={"origin": "http://attacker.example"}), 403,
         "[security] cors_origins"),
    Case("host-unknown", lambda c: c.post("/voice_mappings", json={"voice_id": "rebound"},
                                          headers={"host": "attacker.example"}), 421,
         "[server] allowed_hosts"),
    Case("route-wrong-method", lambda c: c.patch("/generate", json={}), 405,
         "PATCH is not allowed on /generate"),
    Case("job-unknown", lambda c: c.get("/jobs/" + "0" * 32), 404, "not found"),
    *id_cases(),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[TestClient, Path]]:
    """One server with something stored of every kind: a prompt, a voice using it, a
    finished job, a generation log with saved audio."""
    root = tmp_path_factory.mktemp("bad-input")
    services = make_services(root, storage={"max_upload_mb": LIMIT_MB},
                             logging={"save_outputs": True})
    with TestClient(app=create_app(services)) as client:
        assert upload(sine_wav(), prompt_id="kept")(client).status_code == 201
        assert client.post("/voice_mappings", json={"voice_id": "mine",
                                                     "audio_prompt": "kept"}).status_code == 201
        job = client.post("/generate?async_mode=true", json={"text": "Stored."}).json()
        wait_for(client, job["job_id"], "completed")
        yield client, root


def settled_state(root: Path) -> dict:
    """What is stored once earlier requests' late writes (a generation's log row and its
    saved audio, written after the reply) have landed: the same twice, no temp file."""
    seen: list[dict] = []

    def quiet() -> bool:
        seen.append(stored_state(root))
        return (len(seen) > 1 and seen[-1] == seen[-2]
                and not any(".tmp-" in name for name in seen[-1]["files"]))

    eventually(quiet, timeout=30, interval=0.05, message="stored state settles")
    return seen[-1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_4xx_and_changes_nothing(server, case):
    client, root = server
    before = settled_state(root)
    reply = case.call(client)
    assert reply.status_code == case.status, reply.text[:500]
    if case.status < 300:  # an accepted row: audio, as for any good request
        assert reply.headers["content-type"] == case.says
        assert sf.read(io.BytesIO(reply.content))[0].size > 0
        assert "x-injected" not in reply.headers
        return
    detail = reply.json()["detail"]
    assert case.says in detail, detail
    if case.id.startswith("id-") and case.status == 400:
        assert ID_RULE in detail  # the answer states the rule
    after = stored_state(root)
    assert after == before


def catalogue_rows() -> dict[str, str]:
    """Row id -> the whole row, from the catalogue's tables."""
    rows = {}
    for line in CATALOGUE.read_text().splitlines():
        m = re.match(r"\| `([a-z0-9-]+)`", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_every_row_of_the_catalogue_has_a_test():
    rows = catalogue_rows()
    tested = {re.sub(r" \(accepted\)|\[.*\]$", "", c.id) for c in CASES}
    elsewhere = {row: line for row, line in rows.items() if row not in tested}
    assert not tested - set(rows), f"cases missing from {CATALOGUE.name}: {tested - set(rows)}"
    for row, line in elsewhere.items():  # rows tested in other modules name their test
        ref = re.search(r"`(tests/[\w/]+\.py)::(\w+)`", line)
        assert ref, f"row {row} names no test"
        assert f"def {ref.group(2)}(" in (ROOT / ref.group(1)).read_text(), line
    accepted = {re.sub(r" \(accepted\)$", "", c.id) for c in CASES if c.status < 300}
    for row in accepted:
        assert "accepted" in rows[row], f"row {row} is accepted but not marked so"



def test_the_reliability_page_counts_the_catalogue_as_it_is():
    rows = catalogue_rows()
    tested = {re.sub(r" \(accepted\)|\[.*\]$", "", c.id) for c in CASES}
    elsewhere = [row for row in rows if row not in tested]
    page = (ROOT / "docs" / "reliability.md").read_text()
    claim = (f"{len(rows)} classes of bad input, hostile ids sent to all ten id routes: "
             f"{len(CASES)} cases here, {len(elsewhere)} rows in other tests")
    assert claim in page, f"docs/reliability.md should say: {claim}"

def test_catalogue_answers_match_the_cases():
    """The status in each row is the one its case asserts."""
    rows = catalogue_rows()
    for case in CASES:
        row = re.sub(r" \(accepted\)|\[.*\]$", "", case.id)
        assert re.search(rf"\| {case.status}\b", rows[row]), (row, case.status)


def test_json_parsing_is_quick_even_for_hostile_bodies(server):
    """A nested or huge body is refused fast, not after seconds of work (generous)."""
    client, _ = server
    started = time.perf_counter()
    raw("/generate", b"[" * 100_000 + b"]" * 100_000)(client)
    raw("/generate", json.dumps({"text": "a" * 900_000}).encode())(client)
    assert time.perf_counter() - started < 5
