"""The ``filesystem`` voice store: custom voices and audio prompts that survive restarts.

Layout (both directories come from ``[storage]``):

* ``<audio_prompts_dir>/<prompt_id>.wav``: each prompt as 44.1 kHz mono 16-bit WAV. The
  directory is the source of truth for prompts: they are listed from disk, so a prompt
  is there after a restart (and a WAV copied in by hand appears too).
* ``<data_dir>/voices.json``: custom voices plus each prompt's metadata (created time,
  what was uploaded). Built-in voices are not stored; they are always present.

Every write goes through :mod:`ttsframe.core.atomic` (temp file, fsync, rename), so a
crash leaves the old file or the new one, never half of one. Read-modify-write cycles
hold a thread lock plus an ``flock`` on ``<data_dir>/.voices.json.lock``, so two
requests, or two server processes sharing the directories, never lose each other's
changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import soundfile as sf

from ttsframe.core import audio_math as audio
from ttsframe.core.atomic import (
    atomic_write_bytes,
    remove_file,
    remove_stale_temps,
    storage_failed,
)
from ttsframe.core.errors import ConfigError, Conflict, InvalidInput, NotFound, StorageFailed
from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.ids import check_id, check_new_id, is_valid_id
from ttsframe.core.interfaces import PluginContext, VoiceStore
from ttsframe.core.paths import is_stored_file
from ttsframe.core.types import AudioPrompt, Voice
from ttsframe.plugins.builtin_voices import BUILTIN_VOICES, builtin_voice

log = logging.getLogger("ttsframe.voices")

PROMPT_RATE = 44100
INDEX_NAME = "voices.json"
INDEX_VERSION = 1
_VOICE_KEYS = (
    "style", "primary_speaker", "audio_prompt", "audio_prompt_transcript", "seed", "backends",
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FilesystemVoiceStore(VoiceStore):
    name = "filesystem"

    def __init__(self, prompts_dir: Path, data_dir: Path, *, max_prompt_bytes: int | None = None,
                 max_voices: int | None = None) -> None:
        self.prompts_dir = Path(prompts_dir)
        self.max_prompt_bytes = max_prompt_bytes  # all prompts together (None: no quota)
        self.max_voices = max_voices
        self.index_path = Path(data_dir) / INDEX_NAME
        self._lock_path = Path(data_dir) / f".{INDEX_NAME}.lock"
        # Writers serialise on _write_lock (+ flock); readers never wait for a write in
        # progress (get_voice runs on the event loop): they see the last committed index.
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: dict[str, Any] | None = None
        self._cache_sig: tuple[int, int, int] | None = None
        self.prompts_dir.mkdir(parents=True, exist_ok=True)
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        for stale in [*remove_stale_temps(self.prompts_dir),
                      *remove_stale_temps(self.index_path.parent)]:
            log.warning("removed %s left by an interrupted write", stale)
        self._startup_report()

    # ------------------------------------------------------------------ index file

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.index_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read_index(self) -> dict[str, Any]:
        """The index as last committed; re-read only when the file changed on disk (by
        this process or another). Callers must not modify the returned dict."""
        sig = self._signature()
        with self._cache_lock:
            if self._cache is not None and sig == self._cache_sig:
                return self._cache
        if sig is None:
            data: dict[str, Any] = {"version": INDEX_VERSION, "voices": {}, "prompts": {}}
        else:
            try:
                data = json.loads(self.index_path.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
            except FileNotFoundError:
                return self._read_index()
            except ValueError as exc:
                raise ConfigError(
                    f"{self.index_path} is not valid voice-store JSON ({exc}); restore it "
                    "from a backup or move it away to start with no custom voices") from None
            data.setdefault("voices", {})
            data.setdefault("prompts", {})
        # A replace between stat and read only caches newer data under an older
        # signature, which the next call notices and re-reads.
        with self._cache_lock:
            self._cache, self._cache_sig = data, sig
        return data

    def _open_lock(self):
        try:
            return self._lock_path.open("a")
        except OSError as exc:  # a read-only data directory: 507, nothing changed
            raise storage_failed(exc, self._lock_path) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """Exclusive read-modify-write of the index; written atomically on success."""
        with self._write_lock, self._open_lock() as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            try:
                data = json.loads(json.dumps(self._read_index()))  # a private copy
                yield data
                data["version"] = INDEX_VERSION
                payload = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
                atomic_write_bytes(self.index_path, payload)
                with self._cache_lock:
                    self._cache, self._cache_sig = data, self._signature()
            finally:
                fcntl.flock(lock_fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ voices

    @staticmethod
    def _voice(voice_id: str, record: dict[str, Any]) -> Voice:
        return msgspec.convert({"voice_id": voice_id, **{k: record.get(k) for k in _VOICE_KEYS
                                                          if record.get(k) is not None}}, Voice)

    @staticmethod
    def _record(voice: Voice) -> dict[str, Any]:
        return {k: getattr(voice, k) for k in _VOICE_KEYS}

    def list_voices(self) -> list[Voice]:
        voices = self._read_index()["voices"]
        return [*BUILTIN_VOICES, *(self._voice(v, voices[v]) for v in sorted(voices))]

    def get_voice(self, voice_id: str) -> Voice:
        builtin = builtin_voice(voice_id)
        if builtin is not None:
            return builtin
        record = self._read_index()["voices"].get(voice_id)
        if record is None:
            raise NotFound(f"Voice '{voice_id}' not found")
        return self._voice(voice_id, record)

    def _check_writable(self, voice_id: str, action: str) -> None:
        check_id(voice_id, "voice_id")
        if builtin_voice(voice_id) is not None:
            raise Conflict(f"Voice '{voice_id}' is a built-in voice and cannot be {action}; "
                           "create a custom voice with another voice_id")

    def _check_prompt_exists(self, voice: Voice) -> None:
        if voice.audio_prompt and not is_stored_file(self._prompt_path(voice.audio_prompt)):
            raise NotFound(f"Audio prompt '{voice.audio_prompt}' not found; upload it first "
                           "with POST /audio_prompts/upload")

    def create_voice(self, voice: Voice) -> Voice:
        check_id(voice.voice_id, "voice_id")
        if builtin_voice(voice.voice_id) is not None:
            raise Conflict(f"Voice '{voice.voice_id}' already exists as a built-in voice; "
                           "pick another voice_id")
        with self._transaction() as data:
            if voice.voice_id in data["voices"]:
                raise Conflict(f"Voice '{voice.voice_id}' already exists; change it with "
                               f"PUT /voice_mappings/{voice.voice_id} or pick another voice_id")
            check_new_id(voice.voice_id, "voice_id",
                         [*(v.voice_id for v in BUILTIN_VOICES), *data["voices"]])
            if self.max_voices is not None and len(data["voices"]) >= self.max_voices:
                raise StorageFailed(
                    f"there are {len(data['voices'])} custom voices, the limit "
                    "(storage.max_voices); delete voices you no longer use, or raise it")
            self._check_prompt_exists(voice)
            now = _now()
            data["voices"][voice.voice_id] = {**self._record(voice), "created": now,
                                              "updated": now}
        log.info("created voice %s", voice.voice_id)
        return self.get_voice(voice.voice_id)

    def update_voice(self, voice_id: str, voice: Voice) -> Voice:
        self._check_writable(voice_id, "changed")
        with self._transaction() as data:
            old = data["voices"].get(voice_id)
            if old is None:
                raise NotFound(f"Voice '{voice_id}' not found")
            self._check_prompt_exists(voice)
            data["voices"][voice_id] = {**self._record(voice), "created": old.get("created"),
                                        "updated": _now()}
        log.info("updated voice %s", voice_id)
        return self.get_voice(voice_id)

    def delete_voice(self, voice_id: str, *, keep_prompt: bool = False) -> str | None:
        """Delete the voice, and its prompt when no other voice uses it (unless kept)."""
        self._check_writable(voice_id, "deleted")
        with self._transaction() as data:
            record = data["voices"].pop(voice_id, None)
            if record is None:
                raise NotFound(f"Voice '{voice_id}' not found")
            prompt = record.get("audio_prompt")
            still_used = any(v.get("audio_prompt") == prompt for v in data["voices"].values())
            drop_prompt = bool(prompt) and not keep_prompt and not still_used
            if drop_prompt:
                data["prompts"].pop(prompt, None)
        # The index no longer names the prompt; a crash before this unlink only leaves
        # an unused WAV, which lists as an ordinary prompt.
        if drop_prompt:
            remove_file(self._prompt_path(prompt))
        log.info("deleted voice %s%s", voice_id, f" and prompt {prompt}" if drop_prompt else "")
        return prompt if drop_prompt else None

    # ------------------------------------------------------------------ prompts

    def _prompt_path(self, prompt_id: str) -> Path:
        check_id(prompt_id, "prompt_id")
        return self.prompts_dir / f"{prompt_id}.wav"

    def _check_quota(self, size: int, replacing: Path) -> None:
        if self.max_prompt_bytes is None:
            return
        used = sum(p.stat().st_size for p in self.prompts_dir.glob("*.wav")
                   if p != replacing and is_stored_file(p))
        if used + size > self.max_prompt_bytes:
            mb = 1024 * 1024
            raise StorageFailed(
                f"stored prompts take {used / mb:.1f} MB and this one {size / mb:.1f} MB; "
                f"together they may take {self.max_prompt_bytes / mb:g} MB "
                "(storage.max_prompts_mb): delete prompts you no longer use, or raise it")

    def _prompt_ids(self) -> list[str]:
        return sorted(p.stem for p in self.prompts_dir.glob("*.wav")
                      if is_valid_id(p.stem) and is_stored_file(p))

    def load_prompt(self, prompt_id: str) -> AudioPrompt:
        if not is_valid_id(prompt_id) or not is_stored_file(self._prompt_path(prompt_id)):
            raise NotFound(f"Audio prompt '{prompt_id}' not found")
        try:
            samples, rate = sf.read(self._prompt_path(prompt_id), dtype="float32")
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InvalidInput(f"audio prompt '{prompt_id}' cannot be read ({exc}); upload "
                               "it again") from None
        samples = audio.resample(audio.to_mono(samples), rate, PROMPT_RATE)
        return AudioPrompt(prompt_id=prompt_id, samples=np.ascontiguousarray(samples),
                           sample_rate=PROMPT_RATE)

    def _prompt_info(self, prompt_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        path = self._prompt_path(prompt_id)
        try:
            st = path.stat()
            info = sf.info(path)
        except (OSError, sf.LibsndfileError, RuntimeError):
            return None
        meta = data["prompts"].get(prompt_id, {})
        created = meta.get("created") or datetime.fromtimestamp(st.st_mtime, UTC).isoformat(
            timespec="seconds").replace("+00:00", "Z")
        return {
            "prompt_id": prompt_id,
            "file": path.name,
            "duration": round(info.frames / info.samplerate, 3),
            "sample_rate": info.samplerate,
            "channels": info.channels,
            "size": st.st_size,
            "created": created,
            "used_by": sorted(v for v, rec in data["voices"].items()
                              if rec.get("audio_prompt") == prompt_id),
            "source": meta.get("source", {}),
        }

    def list_prompts(self) -> list[dict[str, Any]]:
        data = self._read_index()
        infos = (self._prompt_info(p, data) for p in self._prompt_ids())
        return [info for info in infos if info is not None]

    def save_prompt(self, prompt_id: str, samples: np.ndarray, sample_rate: int, *,
                    overwrite: bool = False, source: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        """Store mono samples as a 44.1 kHz 16-bit WAV (resampled if needed)."""
        path = self._prompt_path(prompt_id)
        samples = audio.resample(audio.to_mono(np.asarray(samples, np.float32)), sample_rate,
                                 PROMPT_RATE)
        # Encoded in memory, then written plainly: soundfile writing to a file swallows the
        # disk's OSError (a full disk would surface as an AssertionError, not a 507).
        buf = io.BytesIO()
        sf.write(buf, samples, PROMPT_RATE, format="WAV", subtype="PCM_16")
        wav = buf.getvalue()
        with self._transaction() as data:
            if path.exists() and not overwrite:
                raise Conflict(f"Audio prompt '{prompt_id}' already exists; delete it first "
                               "or upload with ?overwrite=true to replace it")
            if not path.exists():
                check_new_id(prompt_id, "prompt_id", self._prompt_ids())
            self._check_quota(len(wav), replacing=path)
            atomic_write_bytes(path, wav)
            data["prompts"][prompt_id] = {"created": _now(), "source": source or {}}
        log.info("saved audio prompt %s (%.2f s)", prompt_id, len(samples) / PROMPT_RATE)
        info = self._prompt_info(prompt_id, self._read_index())
        assert info is not None
        return info

    def delete_prompt(self, prompt_id: str, *, cascade: bool = False) -> list[str]:
        """Delete the prompt; refuse while voices use it unless ``cascade`` deletes them."""
        path = self._prompt_path(prompt_id)
        with self._transaction() as data:
            if not path.is_file():
                raise NotFound(f"Audio prompt '{prompt_id}' not found")
            users = sorted(v for v, rec in data["voices"].items()
                           if rec.get("audio_prompt") == prompt_id)
            if users and not cascade:
                raise Conflict(
                    f"Audio prompt '{prompt_id}' is used by voice(s) {', '.join(users)}; delete "
                    "or change those voices first, or repeat with ?cascade=true to delete them "
                    "too")
            for voice_id in users:
                del data["voices"][voice_id]
            data["prompts"].pop(prompt_id, None)
        remove_file(path)
        log.info("deleted audio prompt %s%s", prompt_id,
                 f" and voice(s) {', '.join(users)}" if users else "")
        return users

    # ------------------------------------------------------------------ startup

    def _startup_report(self) -> None:
        data = self._read_index()
        prompts = set(self._prompt_ids())
        for entry in self.prompts_dir.glob("*.wav"):
            if not is_valid_id(entry.stem):
                log.warning("ignoring %s: prompt file names must be <prompt_id>.wav with "
                            "letters, digits, '_' or '-'", entry)
            elif entry.is_symlink():
                log.warning("ignoring %s: a symlink; prompts must be files in %s (copy the "
                            "file there instead)", entry, self.prompts_dir)
        for voice_id, record in sorted(data["voices"].items()):
            prompt = record.get("audio_prompt")
            if prompt and prompt not in prompts:
                log.warning("voice %s uses audio prompt %s, which is missing from %s",
                            voice_id, prompt, self.prompts_dir)
        log.info("voice store: %d custom voice(s), %d audio prompt(s) in %s",
                 len(data["voices"]), len(prompts), self.prompts_dir)


def make_store(ctx: PluginContext) -> FilesystemVoiceStore:
    storage = ctx.settings.storage
    return FilesystemVoiceStore(ctx.settings.path(storage.audio_prompts_dir),
                                ctx.settings.path(storage.data_dir),
                                max_prompt_bytes=int(storage.max_prompts_mb * 1024 * 1024),
                                max_voices=storage.max_voices)


@hookimpl
def register_voice_stores(register):
    register("filesystem", make_store)

