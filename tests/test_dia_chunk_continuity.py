"""One voice across chunks on the tiny Dia model: a long text's later chunks are generated
by the cloning call, with the first chunk's audio as the prompt and its text as the
transcript, and only when that is on.

The server's own request path runs (``POST /generate`` -> speech service -> scheduler ->
``DiaBackend``); the backend's ``generate_codes`` is wrapped to record what each call was
given and produced. The tiny checkpoint with a scaled EOS row stops on its own, so the
first chunk ends on EOS (not on its budget) as real speech does.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import make_services
from tests.dia_fixtures import count_codec_encodes, tiny_eos_model_dir  # noqa: F401
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

# About 480 bytes: more than Dia's 256-byte chunk, so several generations.
TEXT = " ".join(f"[S1] Sentence number {i} of a story that goes on for a while."
                for i in range(8))


@pytest.fixture(scope="module")
def dia(tmp_path_factory, tiny_eos_model_dir) -> Iterator[tuple[TestClient, object, list]]:  # noqa: F811
    services = make_services(tmp_path_factory.mktemp("dia-continuity"),
                             generation={"default_backend": "dia", "workers": 8},
                             plugins={"dia": {"model": str(tiny_eos_model_dir),
                                              "device": "cpu", "cpu_threads": 1}})
    backend = services.backends["dia"]
    # Each generation's task and codes as its row leaves the decoding loop, and each
    # decoded result, in the order they end.
    calls: list[tuple[object, object]] = []
    row_result, finish = backend._row_result, backend._finish

    def recording_rows(done):
        out = row_result(done)
        calls.append((done.task, out))
        return out

    def recording(out):
        result = finish(out)
        backend.results.append(result)
        return result

    backend._row_result, backend._finish, backend.results = recording_rows, recording, []
    with TestClient(app=create_app(services), timeout=120) as client:
        eventually(lambda: client.get("/health").json()["status"] == "healthy", timeout=120,
                   interval=0.1, message=lambda: f"healthy: {client.get('/health').json()}")
        yield client, backend, calls


def speak(dia, **body) -> tuple[list, list]:
    client, backend, calls = dia
    calls.clear()
    backend.results.clear()
    r = client.post("/generate", json={"text": TEXT, "seed": 7, **body})
    assert r.status_code == 200, r.text
    assert int(r.headers["x-text-chunks"]) == len(calls)
    # As (tasks, outputs) groups: the first generation, then the rest.
    (first, first_out), rest = calls[0], calls[1:]
    groups = [([first], [first_out]), ([t for t, _ in rest], [o for _, o in rest])]
    return groups, r.headers.get("x-ttsframe-warnings", "")


def test_later_chunks_are_the_cloning_call_with_the_first_chunk_as_prompt(dia):
    _, backend, _ = dia
    calls, warnings = speak(dia)
    ((first,), (first_out,)), (later, later_out) = calls  # chunk 1 alone, then the rest
    assert "generated on their own" not in warnings
    assert first.prompt is None and not first_out.info["budget_limited"]
    assert len(later) >= 2  # chunks 2..n: together in the loop
    assert all(out.info["batch_size"] >= 2 for out in later_out)
    chunk_1_audio = backend.results[0].samples  # what chunk 1 returned
    for task, out in zip(later, later_out, strict=True):
        assert task.prompt_transcript == first.text
        np.testing.assert_array_equal(task.prompt.samples, chunk_1_audio)
        assert out.info["prompt_frames"] > 0
        # The same generation as cloning a voice whose prompt is chunk 1, asked directly.
        clone = msgspec.structs.replace(
            task, task_id="clone", cancel=type(task.cancel)(), on_progress=None,
            prompt=AudioPrompt("chunk-1", chunk_1_audio.copy(), 44100),
            prompt_transcript=first.text)
        (direct,) = backend.generate_codes([clone])
        np.testing.assert_array_equal(out.codes, direct.codes)


def test_switched_off_every_chunk_starts_afresh(dia):
    _, backend, _ = dia
    calls, _ = speak(dia, chunk_continuity=False)
    tasks = [task for call, _ in calls for task in call]
    outs = [out for _, call in calls for out in call]
    assert len(tasks) >= 2 and all(task.prompt is None for task in tasks)
    for task, out in zip(tasks, outs, strict=True):
        assert out.info["prompt_frames"] == 0
        plain = msgspec.structs.replace(task, task_id="plain", cancel=type(task.cancel)(),
                                        on_progress=None)
        (direct,) = backend.generate_codes([plain])
        np.testing.assert_array_equal(out.codes, direct.codes)


def test_the_first_chunk_is_encoded_once_and_kept_apart_from_voices(dia, monkeypatch):
    client, backend, _ = dia
    encoded = count_codec_encodes(backend, monkeypatch)
    before = client.get("/health").json()
    calls, _ = speak(dia)
    (_, _), (later, _) = calls
    assert len(later) >= 2 and all(task.prompt.transient for task in later)
    assert len(encoded) == 1  # one encoding for every row of the batch
    after = client.get("/health").json()
    cache_before, cache_after = (h["backends"]["dia"]["info"]["prompt_cache"]
                                 for h in (before, after))
    # Voices' prompts: untouched by the long text's one-off prompt.
    for figure in ("entries", "hits", "misses"):
        assert cache_after[figure] == cache_before[figure], (cache_before, cache_after)
    one_off_before, one_off_after = cache_before["one_off"], cache_after["one_off"]
    assert one_off_after["misses"] - one_off_before["misses"] == 1
    assert one_off_after["hits"] - one_off_before["hits"] == len(later) - 1
    assert 1 <= one_off_after["entries"] <= one_off_after["max"]
    assert one_off_after["max"] == backend.config.max_batch_size  # a whole batch's worth



# A dialogue: [S2] answers after one sentence of [S1], then they take turns.
DIALOGUE = " ".join(f"[S1] Question number {i} is asked by the first speaker here. "
                    f"[S2] And answer {i} comes from the second one." for i in range(6))


def test_the_prompt_of_later_chunks_holds_every_speaker(dia):
    """Chunk 1 is cut so that it holds both speakers' first words: its audio, the prompt
    of chunks 2..n, anchors [S2]'s voice as well as [S1]'s."""
    _, backend, _ = dia
    calls, warnings = speak(dia, text=DIALOGUE)
    ((first,), _), (later, _) = calls
    assert "[S1]" in first.text and "[S2]" in first.text
    assert "holds no turn" not in warnings
    assert len(later) >= 2 and any("[S2]" in task.text for task in later)
    chunk_1_audio = backend.results[0].samples
    for task in later:
        assert task.prompt_transcript == first.text
        np.testing.assert_array_equal(task.prompt.samples, chunk_1_audio)


def test_a_speaker_too_late_for_the_first_chunk_is_reported(dia):
    late = ("[S1] " + " ".join(f"Sentence {i} of a long opening monologue." for i in range(12))
            + " [S2] At last the second voice speaks, once.")
    calls, warnings = speak(dia, text=late)
    ((first,), _), (later, _) = calls
    assert "[S2]" not in first.text
    assert "holds no turn of S2" in warnings
    assert all(task.prompt_transcript == first.text for task in later)
