"""The pronunciation dictionary: matching rules, the admin routes, what the backend
receives, and durability under SIGKILL on a real server."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.job_helpers import tone_server
from ttsframe.core.errors import InvalidInput, NotFound
from ttsframe.core.text.pronunciations import PronunciationIn, PronunciationStore
from ttsframe.testing.app import app_client, make_services


def entry(term: str, spoken: str, **fields) -> PronunciationIn:
    return PronunciationIn(term=term, spoken=spoken, **fields)


def test_whole_words_any_case_by_default(tmp_path):
    store = PronunciationStore(tmp_path)
    store.add(entry("Nguyen", "Win"))
    assert store.apply("Ms. nguyen and NGUYEN met Nguyenson.") == \
        "Ms. Win and Win met Nguyenson."


def test_case_sensitive_and_inside_words(tmp_path):
    store = PronunciationStore(tmp_path)
    store.add(entry("SQL", "sequel", case_sensitive=True))
    store.add(entry("colour", "color", whole_word=False))
    assert store.apply("SQL or sql; colourful") == "sequel or sql; colorful"


def test_longest_term_wins_and_symbols_match_as_written(tmp_path):
    store = PronunciationStore(tmp_path)
    store.add(entry("New York", "the Big Apple"))
    store.add(entry("York", "Yorrk"))
    store.add(entry("C++", "C plus plus"))
    store.add(entry("R2-D2", "Artoo Deetoo"))
    assert store.apply("New York, York, C++ and R2-D2.") == \
        "the Big Apple, Yorrk, C plus plus and Artoo Deetoo."


def test_per_voice_and_per_language_entries(tmp_path):
    store = PronunciationStore(tmp_path)
    store.add(entry("Lyra", "Lie-ra", voice_id="narrator"))
    store.add(entry("chat", "shah", language="fr"))
    assert store.apply("Lyra's chat", voice_id="narrator") == "Lie-ra's chat"
    assert store.apply("Lyra's chat", voice_id="alloy") == "Lyra's chat"
    assert store.apply("le chat", language="fr-CA") == "le shah"
    assert store.apply("le chat", language="en") == "le chat"


def test_markup_is_never_rewritten(tmp_path):
    store = PronunciationStore(tmp_path)
    store.add(entry("laughs", "giggles"))
    store.add(entry("S1", "ess one"))
    assert store.apply("[S1] He laughs. (laughs)") == "[S1] He giggles. (laughs)"


def test_two_stores_over_one_file_agree(tmp_path):
    writer, reader = PronunciationStore(tmp_path), PronunciationStore(tmp_path)
    assert reader.apply("GIF") == "GIF"
    added = writer.add(entry("GIF", "jif"))
    assert reader.apply("GIF") == "jif"
    writer.update(added.id, entry("GIF", "gif with a hard g"))
    assert reader.apply("GIF") == "gif with a hard g"
    writer.delete(added.id)
    assert reader.apply("GIF") == "GIF"


def test_duplicates_bad_entries_and_limits_are_refused(tmp_path):
    store = PronunciationStore(tmp_path, max_entries=2)
    first = store.add(entry("Tom", "Thom"))
    with pytest.raises(InvalidInput, match="already in the dictionary"):
        store.add(entry("tom", "Tomm"))
    with pytest.raises(InvalidInput, match="brackets or line breaks"):
        store.add(entry("[S1]", "x"))
    with pytest.raises(InvalidInput, match="only spaces"):
        store.add(entry("  ", "x"))
    store.add(entry("Tom", "Tahm", case_sensitive=True))
    with pytest.raises(InvalidInput, match="its limit"):
        store.add(entry("Ann", "Anne"))
    with pytest.raises(NotFound):
        store.delete("nope")
    assert store.entries()[0].id == first.id


def test_routes_are_admin_writes_and_the_backend_hears_the_entry(tmp_path):
    services = make_services(tmp_path, {"security": {"api_keys": ["user"],
                                                     "admin_keys": ["boss"]}})
    backend = services.backends["beeper"]
    user, admin = {"Authorization": "Bearer user"}, {"Authorization": "Bearer boss"}
    with app_client(services) as client:
        body = {"term": "Siobhan", "spoken": "Shiv-awn"}
        assert client.post("/pronunciations", json=body, headers=user).status_code == 403
        created = client.post("/pronunciations", json=body, headers=admin)
        assert created.status_code == 201, created.text
        entry_id = created.json()["id"]
        listed = client.get("/pronunciations", headers=user).json()["entries"]
        assert [e["term"] for e in listed] == ["Siobhan"]
        assert client.get(f"/pronunciations/{entry_id}", headers=user).json()["spoken"] == \
            "Shiv-awn"
        dup = client.post("/pronunciations", json=body, headers=admin)
        assert dup.status_code == 400 and f"PUT /pronunciations/{entry_id}" in dup.json()["detail"]
        too_long = client.post("/pronunciations", json={"term": "x" * 101, "spoken": "y"},
                               headers=admin)
        assert too_long.status_code == 400
        assert client.post("/generate", json={"text": "Hello Siobhan."},
                           headers=user).status_code == 200
        preview = client.post("/text/preview", json={"text": "Hello Siobhan."},
                              headers=user).json()
        changed = client.put(f"/pronunciations/{entry_id}", headers=admin,
                             json={"term": "Siobhan", "spoken": "Sho-vahn"})
        assert changed.status_code == 200
        assert client.delete(f"/pronunciations/{entry_id}", headers=user).status_code == 403
        assert client.delete(f"/pronunciations/{entry_id}", headers=admin).status_code == 200
        assert client.get(f"/pronunciations/{entry_id}", headers=user).status_code == 404
    assert backend.tasks[0].text.endswith("Hello Shiv-awn.")
    assert preview["chunks"][0]["text"] == backend.tasks[0].text


def test_entries_survive_sigkill_mid_write(tmp_path):
    """Three rounds: clients add entries as fast as they can, the server is killed, and
    after the restart every acknowledged entry is there and the file is whole."""
    acknowledged: dict[str, str] = {}
    for round_ in range(3):
        server = tone_server(tmp_path).start()
        try:
            stop = threading.Event()

            def write(worker: int, url: str = server.url, r: int = round_,
                      stop: threading.Event = stop) -> None:
                with httpx.Client(base_url=url, timeout=10) as c:
                    n = 0
                    while not stop.is_set():
                        term = f"term{r}x{worker}x{n}"
                        try:
                            reply = c.post("/pronunciations",
                                           json={"term": term, "spoken": f"said {n}"})
                        except httpx.HTTPError:
                            return
                        assert reply.status_code == 201, reply.text
                        acknowledged[term] = f"said {n}"
                        n += 1

            threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
            for t in threads:
                t.start()
            threading.Event().wait(1.0 + round_ * 0.37)
            server.kill()
            stop.set()
            for t in threads:
                t.join(10)
        finally:
            server.stop()
        with tone_server(tmp_path) as restarted:
            stored = restarted.client.get("/pronunciations").json()["entries"]
        found = {e["term"]: e["spoken"] for e in stored}
        assert acknowledged.items() <= found.items()
        json.loads((tmp_path / "data" / "pronunciations.json").read_text())
    assert len(acknowledged) > 30
