"""Every status code the OpenAPI schema declares is real: for each operation and each
status it documents, a request that gets exactly that status (and an error body of the
declared shape). Adding a status to a route without a way to reach it fails here, as does
a route whose declared statuses differ from this table. (That nothing undeclared is ever
answered is the fuzz test's part: ``test_fuzz_schema.py``.)"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.job_helpers import logged, wait_for
from tests.voice_fixtures import sine_wav
from ttsframe.assembly import Services
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

LIMIT_MB = 1
TOO_LARGE = b'{"text": "' + b"a" * (2 << 20) + b'"}'
JSON = {"content-type": "application/json"}


class World:
    """The servers the table needs, each built on first use: ``main`` (tone backend,
    saved outputs), ``failing`` (a model that cannot load), ``busy`` (a one-place queue
    held by a long job), ``readonly`` (the read-only built-in voice store) and
    ``broken`` (its disk and database refuse writes)."""

    def __init__(self, tmp_path_factory, stack: ExitStack) -> None:
        self.factory, self.stack = tmp_path_factory, stack
        self.apps: dict[str, tuple[TestClient, Services]] = {}
        self.n = 0

    def _app(self, name: str, **overrides) -> tuple[TestClient, Services]:
        if name not in self.apps:
            services = make_services(self.factory.mktemp(name),
                                     storage={"max_upload_mb": LIMIT_MB}, **overrides)
            client = self.stack.enter_context(TestClient(app=create_app(services)))
            self.apps[name] = (client, services)
        return self.apps[name]

    @property
    def main(self) -> TestClient:
        return self._app("main", logging={"save_outputs": True})[0]

    @property
    def failing(self) -> TestClient:
        return self._app("failing", plugins={"tone-plugin": {"fail_load": "no weights"}})[0]

    @property
    def readonly(self) -> TestClient:
        return self._app("readonly", generation={"voice_store": "builtin"})[0]

    @property
    def busy(self) -> TestClient:
        new = "busy" not in self.apps
        client, _ = self._app("busy", generation={"queue_size": 1, "workers": 1},
                              plugins={"tone-plugin": {"step_delay_s": 0.05,
                                                       "slow_factor": 1000}})
        if new:  # one job generating for minutes, one waiting: the queue is full
            self.slow = self.job(client, "[S1] Endless (slow)", wait=False)
            wait_for(client, self.slow, "processing")
            self.waiting = self.job(client, "[S1] Waiting.", wait=False)
        return client

    @property
    def broken(self) -> TestClient:
        """Refuses every write: files as a full disk does (fsync fails), the database
        as a read-only one (``PRAGMA query_only``)."""
        new = "broken" not in self.apps
        client, services = self._app("broken")
        if new:
            self.prompt(client, "kept")
            self.voice(client, "mine", prompt="kept")
            self.done = self.job(client, "[S1] Done.")
            self.kept_entry = self.entry(client)
            self.logged = eventually(lambda: logged(client, self.done),
                                     message="the job's log entry")["log_id"]

            root, real_fsync = str(services.settings.base_dir), os.fsync

            def fsync(fd: int) -> None:  # only this server's files meet a full disk
                if os.readlink(f"/proc/self/fd/{fd}").startswith(root):
                    raise OSError(28, os.strerror(28))
                real_fsync(fd)

            self.stack.callback(setattr, os, "fsync", real_fsync)
            os.fsync = fsync
            client.blocking_portal.call(services.database.call,
                                        lambda c: c.execute("PRAGMA query_only = ON"))
        return client

    # things to act on, made fresh for each request that needs one

    def entry(self, client: TestClient) -> str:
        """A new pronunciation entry's id."""
        reply = client.post("/pronunciations", json={"term": self.fresh("t"), "spoken": "x"})
        assert reply.status_code == 201, reply.text
        return reply.json()["id"]

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def prompt(self, client: TestClient, prompt_id: str | None = None) -> str:
        prompt_id = prompt_id or self.fresh("p")
        r = client.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                        files={"audio_file": ("a.wav", sine_wav(), "audio/wav")})
        assert r.status_code == 201, r.text
        return prompt_id

    def voice(self, client: TestClient, voice_id: str | None = None,
              prompt: str | None = None) -> str:
        voice_id = voice_id or self.fresh("v")
        body = {"voice_id": voice_id, **({"audio_prompt": prompt} if prompt else {})}
        assert client.post("/voice_mappings", json=body).status_code == 201
        return voice_id

    def job(self, client: TestClient, text: str = "[S1] Hello.", wait: bool = True) -> str:
        r = client.post("/generate?async_mode=true", json={"text": text})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        if wait:
            wait_for(client, job_id, "completed", "failed")
        return job_id

    def log(self, client: TestClient) -> str:
        assert client.post("/generate", json={"text": "Logged."}).status_code == 200
        return client.get("/logs").json()["logs"][0]["log_id"]

    def voice_prompt_in_use(self) -> str:
        prompt = self.prompt(self.main)
        self.voice(self.main, prompt=prompt)
        return prompt

    def config_being_edited(self):
        """The config file is not valid TOML at this moment (someone is editing it)."""
        path = self._app("main")[1].config_editor.config_file
        before = path.read_bytes()
        path.write_text("[logging\nsave_outputs = ")
        try:
            return self.main.put("/config", json={"show_prompts": False})
        finally:
            path.write_bytes(before)


Trigger = Callable[[World], object]
BAD_ID = "a..b"
UNKNOWN = "0" * 32


def raw(client: Callable[[World], TestClient], method: str, path: str, body: bytes) -> Trigger:
    return lambda w: client(w).request(method, path, content=body, headers=JSON)


def main(w: World) -> TestClient:
    return w.main


TABLE: dict[str, dict[int, Trigger]] = {
    "GET /health": {200: lambda w: w.main.get("/health")},
    "POST /generate": {
        200: lambda w: w.main.post("/generate", json={"text": "Hello."}),
        202: lambda w: w.main.post("/generate?async_mode=true", json={"text": "Hello."}),
        400: lambda w: w.main.post("/generate", json={"text": ""}),
        404: lambda w: w.main.post("/generate", json={"text": "Hi", "voice_id": "nobody"}),
        413: raw(main, "POST", "/generate", TOO_LARGE),
        429: lambda w: w.busy.post("/generate", json={"text": "One more."}),
        500: lambda w: w.main.post("/generate", json={"text": "[S1] (explode)"}),
        503: lambda w: w.failing.post("/generate", json={"text": "Hello."}),
        507: lambda w: w.broken.post("/generate?async_mode=true", json={"text": "Hello."}),
    },
    "GET /models": {200: lambda w: w.main.get("/models")},
    "GET /voices": {200: lambda w: w.main.get("/voices")},
    "POST /v1/audio/speech": {
        200: lambda w: w.main.post("/v1/audio/speech", json={"input": "Hello."}),
        400: lambda w: w.main.post("/v1/audio/speech", json={"voice": "alloy"}),
        413: raw(main, "POST", "/v1/audio/speech", TOO_LARGE),
        429: lambda w: w.busy.post("/v1/audio/speech", json={"input": "One more."}),
        500: lambda w: w.main.post("/v1/audio/speech", json={"input": "[S1] (explode)"}),
        503: lambda w: w.failing.post("/v1/audio/speech", json={"input": "Hello."}),
    },
    "GET /v1/models": {200: lambda w: w.main.get("/v1/models")},
    "GET /v1/models/{model_id}": {200: lambda w: w.main.get("/v1/models/tts-1"),
                                  404: lambda w: w.main.get("/v1/models/gpt-9")},
    "GET /v1/audio/voices": {200: lambda w: w.main.get("/v1/audio/voices"),
                             400: lambda w: w.main.get("/v1/audio/voices?model=a&model=b"),
                             404: lambda w: w.main.get("/v1/audio/voices?model=gpt-9")},
    "GET /v1/audio/voices/{model}": {200: lambda w: w.main.get("/v1/audio/voices/tone"),
                                     404: lambda w: w.main.get("/v1/audio/voices/gpt-9")},
    "GET /voice_mappings": {200: lambda w: w.main.get("/voice_mappings")},
    "POST /voice_mappings": {
        201: lambda w: w.main.post("/voice_mappings", json={"voice_id": w.fresh("v")}),
        400: lambda w: w.main.post("/voice_mappings", json={"voice_id": BAD_ID}),
        404: lambda w: w.main.post("/voice_mappings",
                                   json={"voice_id": "v0", "audio_prompt": "ghost"}),
        405: lambda w: w.readonly.post("/voice_mappings", json={"voice_id": "v0"}),
        409: lambda w: w.main.post("/voice_mappings", json={"voice_id": "alloy"}),
        413: raw(main, "POST", "/voice_mappings", TOO_LARGE),
        507: lambda w: w.broken.post("/voice_mappings", json={"voice_id": "v0"}),
    },
    "GET /voice_mappings/{voice_id}": {
        200: lambda w: w.main.get("/voice_mappings/alloy"),
        400: lambda w: w.main.get(f"/voice_mappings/{BAD_ID}"),
        404: lambda w: w.main.get("/voice_mappings/nobody"),
    },
    "PUT /voice_mappings/{voice_id}": {
        200: lambda w: w.main.put(f"/voice_mappings/{w.voice(w.main)}", json={"style": "x"}),
        400: lambda w: w.main.put(f"/voice_mappings/{BAD_ID}", json={"style": "x"}),
        404: lambda w: w.main.put("/voice_mappings/nobody", json={"style": "x"}),
        405: lambda w: w.readonly.put("/voice_mappings/alloy", json={"style": "x"}),
        409: lambda w: w.main.put("/voice_mappings/alloy", json={"style": "x"}),
        413: raw(main, "PUT", "/voice_mappings/alloy", TOO_LARGE),
        507: lambda w: w.broken.put("/voice_mappings/mine", json={"style": "x"}),
    },
    "DELETE /voice_mappings/{voice_id}": {
        200: lambda w: w.main.delete(f"/voice_mappings/{w.voice(w.main)}"),
        400: lambda w: w.main.delete(f"/voice_mappings/{BAD_ID}"),
        404: lambda w: w.main.delete("/voice_mappings/nobody"),
        405: lambda w: w.readonly.delete("/voice_mappings/alloy"),
        409: lambda w: w.main.delete("/voice_mappings/alloy"),
        507: lambda w: w.broken.delete("/voice_mappings/mine"),
    },
    "GET /audio_prompts": {200: lambda w: w.main.get("/audio_prompts")},
    "POST /audio_prompts/upload": {
        201: lambda w: w.main.post("/audio_prompts/upload", data={"prompt_id": w.fresh("p")},
                                   files={"audio_file": ("a.wav", sine_wav(), "audio/wav")}),
        400: lambda w: w.main.post("/audio_prompts/upload", data={"prompt_id": "p0"},
                                   files={"audio_file": ("a.txt", b"text", "text/plain")}),
        405: lambda w: w.readonly.post("/audio_prompts/upload", data={"prompt_id": "p0"},
                                       files={"audio_file": ("a.wav", sine_wav(), "audio/wav")}),
        409: lambda w: w.main.post("/audio_prompts/upload", data={"prompt_id": w.prompt(w.main)},
                                   files={"audio_file": ("a.wav", sine_wav(), "audio/wav")}),
        413: lambda w: w.main.post("/audio_prompts/upload", data={"prompt_id": "p0"},
                                   files={"audio_file": ("a.wav", TOO_LARGE, "audio/wav")}),
        507: lambda w: w.broken.post("/audio_prompts/upload", data={"prompt_id": "p0"},
                                     files={"audio_file": ("a.wav", sine_wav(), "audio/wav")}),
    },
    "DELETE /audio_prompts/{prompt_id}": {
        200: lambda w: w.main.delete(f"/audio_prompts/{w.prompt(w.main)}"),
        400: lambda w: w.main.delete(f"/audio_prompts/{BAD_ID}"),
        404: lambda w: w.main.delete("/audio_prompts/ghost"),
        405: lambda w: w.readonly.delete("/audio_prompts/any"),
        409: lambda w: w.main.delete(f"/audio_prompts/{w.voice_prompt_in_use()}"),
        507: lambda w: w.broken.delete("/audio_prompts/kept?cascade=true"),
    },
    "GET /jobs": {200: lambda w: w.main.get("/jobs"),
                  400: lambda w: w.main.get("/jobs?status=done")},
    "DELETE /jobs": {200: lambda w: w.main.delete("/jobs?status=cancelled"),
                     400: lambda w: w.main.delete("/jobs?status=pending"),
                     507: lambda w: w.broken.delete("/jobs")},
    "GET /jobs/{job_id}": {200: lambda w: w.main.get(f"/jobs/{w.job(w.main)}"),
                           400: lambda w: w.main.get(f"/jobs/{BAD_ID}"),
                           404: lambda w: w.main.get(f"/jobs/{UNKNOWN}")},
    "DELETE /jobs/{job_id}": {200: lambda w: w.main.delete(f"/jobs/{w.job(w.main)}"),
                              400: lambda w: w.main.delete(f"/jobs/{BAD_ID}"),
                              404: lambda w: w.main.delete(f"/jobs/{UNKNOWN}"),
                              507: lambda w: w.broken.delete(f"/jobs/{w.done}")},
    "GET /jobs/{job_id}/result": {
        200: lambda w: w.main.get(f"/jobs/{w.job(w.main)}/result"),
        400: lambda w: w.main.get(f"/jobs/{BAD_ID}/result"),
        404: lambda w: w.main.get(f"/jobs/{UNKNOWN}/result"),
        409: lambda w: w.main.get(f"/jobs/{w.job(w.main, '[S1] (explode)')}/result"),
    },
    "GET /queue/stats": {200: lambda w: w.main.get("/queue/stats")},
    "GET /config": {200: lambda w: w.main.get("/config")},
    "PUT /config": {
        200: lambda w: w.main.put("/config", json={"show_prompts": True}),
        400: lambda w: w.main.put("/config", json={"port": 1}),
        409: lambda w: w.config_being_edited(),
        413: raw(main, "PUT", "/config", TOO_LARGE),
        507: lambda w: w.broken.put("/config", json={"show_prompts": True}),
    },
    "GET /logs": {200: lambda w: w.main.get("/logs"),
                  400: lambda w: w.main.get("/logs?limit=0")},
    "DELETE /logs": {200: lambda w: w.main.delete("/logs"),
                     507: lambda w: w.broken.delete("/logs")},
    "GET /logs/{log_id}": {200: lambda w: w.main.get(f"/logs/{w.log(w.main)}"),
                           400: lambda w: w.main.get(f"/logs/{BAD_ID}"),
                           404: lambda w: w.main.get(f"/logs/{UNKNOWN}")},
    "DELETE /logs/{log_id}": {200: lambda w: w.main.delete(f"/logs/{w.log(w.main)}"),
                              400: lambda w: w.main.delete(f"/logs/{BAD_ID}"),
                              404: lambda w: w.main.delete(f"/logs/{UNKNOWN}"),
                              507: lambda w: w.broken.delete(f"/logs/{w.logged}")},
    "GET /logs/{log_id}/download": {
        200: lambda w: w.main.get(f"/logs/{w.log(w.main)}/download"),
        400: lambda w: w.main.get(f"/logs/{BAD_ID}/download"),
        404: lambda w: w.main.get(f"/logs/{UNKNOWN}/download"),
    },
    "POST /cleanup": {200: lambda w: w.main.post("/cleanup"),
                      507: lambda w: w.broken.post("/cleanup")},
    "POST /text/preview": {
        200: lambda w: w.main.post("/text/preview", json={"text": "Hello."}),
        400: lambda w: w.main.post("/text/preview", json={"text": "<speak>Hi <b></speak>"}),
        404: lambda w: w.main.post("/text/preview", json={"text": "Hi", "voice_id": "nobody"}),
        413: raw(main, "POST", "/text/preview", TOO_LARGE),
    },
    "GET /pronunciations": {200: lambda w: w.main.get("/pronunciations")},
    "POST /pronunciations": {
        201: lambda w: w.main.post("/pronunciations",
                                   json={"term": w.fresh("t"), "spoken": "x"}),
        400: lambda w: w.main.post("/pronunciations", json={"term": "[S1]", "spoken": "x"}),
        413: raw(main, "POST", "/pronunciations", TOO_LARGE),
        507: lambda w: w.broken.post("/pronunciations", json={"term": "new", "spoken": "x"}),
    },
    "GET /pronunciations/{entry_id}": {
        200: lambda w: w.main.get(f"/pronunciations/{w.entry(w.main)}"),
        400: lambda w: w.main.get(f"/pronunciations/{BAD_ID}"),
        404: lambda w: w.main.get("/pronunciations/nope"),
    },
    "PUT /pronunciations/{entry_id}": {
        200: lambda w: w.main.put(f"/pronunciations/{w.entry(w.main)}",
                                  json={"term": w.fresh("t"), "spoken": "y"}),
        400: lambda w: w.main.put(f"/pronunciations/{w.entry(w.main)}",
                                  json={"term": "a\nb", "spoken": "y"}),
        404: lambda w: w.main.put("/pronunciations/nope", json={"term": "a", "spoken": "y"}),
        413: raw(main, "PUT", "/pronunciations/nope", TOO_LARGE),
        507: lambda w: w.broken.put(f"/pronunciations/{w.kept_entry}",
                                    json={"term": "kept", "spoken": "z"}),
    },
    "DELETE /pronunciations/{entry_id}": {
        200: lambda w: w.main.delete(f"/pronunciations/{w.entry(w.main)}"),
        400: lambda w: w.main.delete(f"/pronunciations/{BAD_ID}"),
        404: lambda w: w.main.delete("/pronunciations/nope"),
        507: lambda w: w.broken.delete(f"/pronunciations/{w.kept_entry}"),
    },
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with ExitStack() as stack:
        world = World(tmp_path_factory, stack)
        yield world
        if "busy" in world.apps:  # stop the endless job so the app can stop at once
            world.busy.delete(f"/jobs/{world.slow}")


@pytest.fixture(scope="module")
def declared(tmp_path_factory) -> dict[str, set[int]]:
    services = make_services(tmp_path_factory.mktemp("schema"))
    with TestClient(app=create_app(services)) as client:
        schema = client.get("/schema/openapi.json").json()
    return {f"{method.upper()} {path}": {int(code) for code in op["responses"]}
            for path, ops in schema["paths"].items() for method, op in ops.items()}


def test_the_table_covers_exactly_what_the_schema_declares(declared):
    assert {op: set(codes) for op, codes in TABLE.items()} == declared


CASES = [(op, status) for op, codes in TABLE.items() for status in codes]


@pytest.mark.parametrize(("operation", "status"), CASES, ids=[f"{o} {s}" for o, s in CASES])
def test_every_declared_status_is_reachable(world, operation, status):
    reply = TABLE[operation][status](world)
    assert reply.status_code == status, reply.text[:300]
    if status >= 400:
        body = reply.json()
        assert set(body) <= {"detail", "request_id", "errors", "error"} and body["detail"]
