"""The ``filesystem`` voice store: custom voices and audio prompts that survive restarts.

Layout (both directories come from ``[storage]``):

* ``<audio_prompts_dir>/<prompt_id>.wav``: each prompt as 44.1 kHz mono 16-bit WAV. The
  directory is the source of truth for prompts: they are listed from disk, so a prompt
  is there after a restart (and a WAV copied in by hand appears too).
* ``<data_dir>/voices/<voice_id>.json``: one file per custom voice (its settings plus
  created and updated times). Built-in voices are not stored; they are always present.
* ``<data_dir>/prompt_info/<prompt_id>.json``: when a prompt was uploaded and from what.

A change writes or deletes one small file, so its cost does not grow with the number
of voices (the first layout kept everything in one ``<data_dir>/voices.json``, rewritten
whole on every change). A ``voices.json`` found at startup is moved into this layout
(:meth:`FilesystemVoiceStore._migrate_index`) and kept as ``voices.json.migrated``.

Every file is written through :mod:`ttsframe.core.atomic` (temp file, fsync, rename), so
a crash leaves the old file or the new one, never half of one. Writers hold a thread
lock plus an ``flock`` on ``<data_dir>/.voices.lock``, so a check (duplicate id, the
voice cap, which voices use a prompt) and the write it guards are one step, also
across processes sharing the directories.

Reading one voice reads its file. Reading them all (listing, finding a prompt's users)
uses an in-memory copy, read again from disk when ``voices/.changed`` (rewritten by
every store after each change) or the directory itself says another store, process or
hand changed the files since.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import soundfile as sf

from ttsframe import (
    AudioPrompt,
    BuiltinVoiceStore,
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    PluginContext,
    StorageFailed,
    Voice,
    VoiceStore,
    atomic_write_bytes,
    check_id,
    hookimpl,
    is_valid_id,
    resample,
    to_mono,
)
from ttsframe.files import (
    MAX_ID_LENGTH,
    RESERVED_NAMES,
    check_new_id,
    fsync_dir,
    is_stored_file,
    remove_file,
    remove_stale_temps,
    storage_failed,
    sync_dir_after,
    temp_path_for,
)

log = logging.getLogger("ttsframe.voices")

PROMPT_RATE = 44100
VOICES_DIR = "voices"
PROMPT_INFO_DIR = "prompt_info"
LOCK_NAME = ".voices.lock"
CHANGE_MARK = ".changed"
# The first layout: one JSON file {"version": 1, "voices": {...}, "prompts": {...}}.
INDEX_NAME = "voices.json"
MIGRATED_SUFFIX = ".migrated"
_VOICE_KEYS = (
    "style", "primary_speaker", "audio_prompt", "audio_prompt_transcript", "seed", "backends",
)
Record = dict[str, Any]
_CacheKey = tuple[bytes, int]  # the change mark's content, the directory's mtime


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _encode(record: Record) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"


def _record_id(file_name: str) -> str | None:
    """The id a record file ``<id>.json`` is named for; None for any other name."""
    stem, ext = os.path.splitext(file_name)
    return stem if ext == ".json" and is_valid_id(stem) else None


def _read_record(path: Path) -> Record | None:
    """The JSON object stored in ``path``; None when there is no regular file there (a
    symlink or anything else placed by hand is not followed). A file that is not a JSON
    object raises ``ConfigError`` naming it."""
    try:
        # O_NONBLOCK: a FIFO placed by hand must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise storage_failed(exc, path, "read") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = fh.read()
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError("it is not a JSON object")
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid voice-store JSON ({exc}); restore it from "
                          "a backup or move it away") from None
    return record


class FilesystemVoiceStore(VoiceStore):
    name = "filesystem"

    def __init__(self, prompts_dir: Path, data_dir: Path, *, max_prompt_bytes: int | None = None,
                 max_voices: int | None = None) -> None:
        self.prompts_dir = Path(prompts_dir)
        self.data_dir = Path(data_dir)
        self.voices_dir = self.data_dir / VOICES_DIR
        self.prompt_info_dir = self.data_dir / PROMPT_INFO_DIR
        self.max_prompt_bytes = max_prompt_bytes  # all prompts together (None: no quota)
        self.max_voices = max_voices
        self._lock_path = self.data_dir / LOCK_NAME
        self._mark_path = self.voices_dir / CHANGE_MARK
        # Writers serialise on _write_lock (+ flock); readers never wait for a write in
        # progress (a request looking up its voice is not held up behind an upload).
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._voices: dict[str, Record] | None = None  # replaced whole, never modified
        self._voices_key: _CacheKey | None = None
        self._ignores_case: bool | None = None  # probed once voices/ exists
        self.prompts_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.prompts_dir, self.data_dir, self.voices_dir,
                          self.prompt_info_dir):
            for stale in remove_stale_temps(directory):
                log.warning("removed %s left by an interrupted write", stale)
        self._migrate_index()
        self._startup_report()

    # ------------------------------------------------------------------ voice files

    def _voice_path(self, voice_id: str) -> Path:
        return self.voices_dir / f"{voice_id}.json"

    def _info_path(self, prompt_id: str) -> Path:
        return self.prompt_info_dir / f"{prompt_id}.json"

    def _is_own_file(self, voice_id: str) -> bool:
        """Whether ``voices/<voice_id>.json`` is this voice's file. A case-insensitive
        filesystem (macOS, Windows) opens a file named in another case by that name too,
        which is another voice's (say ``Bob`` when ``bob`` was renamed when
        ``voices.json`` was moved in); there only a voice file listed under exactly
        this id is."""
        if self._ignores_case is None and self.voices_dir.is_dir():
            self._ignores_case = _ignores_case(self.voices_dir)
        return not self._ignores_case or voice_id in self._all_voices()

    def _cache_key(self) -> _CacheKey:
        try:
            mark = self._mark_path.read_bytes()
        except OSError:
            mark = b""
        try:
            mtime = self.voices_dir.stat().st_mtime_ns
        except OSError:
            mtime = 0
        return mark, mtime

    def _scan(self, *, strict: bool = False) -> dict[str, Record]:
        """Every voice file's record, read from disk. A file that cannot be parsed stops
        startup (``strict``); later it is left out of listings with a warning."""
        try:
            entries = list(os.scandir(self.voices_dir))
        except FileNotFoundError:
            return {}
        voices = {}
        for entry in entries:
            voice_id = _record_id(entry.name)
            if voice_id is None:
                continue
            try:
                record = _read_record(Path(entry.path))
            except ConfigError as exc:
                if strict:
                    raise
                log.warning("%s", exc.message)
                continue
            if record is not None:
                voices[voice_id] = record
        return voices

    def _all_voices(self, *, strict: bool = False) -> dict[str, Record]:
        """Every custom voice's record, from memory unless the files changed since they
        were read. Callers must not modify the returned dict."""
        key = self._cache_key()
        with self._cache_lock:
            if self._voices is not None and key == self._voices_key:
                return self._voices
        # The key is taken before the scan: a change landing during the scan only tags
        # newer records with an older key, which the next call notices and re-reads.
        voices = self._scan(strict=strict)
        with self._cache_lock:
            self._voices, self._voices_key = voices, key
        return voices

    def _open_lock(self):
        try:
            return self._lock_path.open("a")
        except OSError as exc:  # a read-only data directory: 507, nothing changed
            raise storage_failed(exc, self._lock_path) from exc

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[dict[str, Record]]:
        """Hold the write lock (this process's threads and other processes) and yield
        every voice's record as it is on disk now."""
        with self._write_lock, self._open_lock() as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            try:
                yield self._all_voices()
            finally:
                fcntl.flock(lock_fh, fcntl.LOCK_UN)

    def _changed(self, base: dict[str, Record], changes: dict[str, Record | None]) -> None:
        """After files were written or deleted (under the write lock): update the
        in-memory copy and the change mark other stores watch."""
        voices = dict(base)
        for voice_id, record in changes.items():
            if record is None:
                voices.pop(voice_id, None)
            else:
                voices[voice_id] = record
        self._mark_changed()
        with self._cache_lock:
            self._voices, self._voices_key = voices, self._cache_key()

    def _mark_changed(self) -> None:
        """Rewrite the change mark, so other stores read the files again. It need not be
        durable (after a restart every copy is read afresh), so it is not fsynced."""
        try:
            _write_unsynced(self._mark_path, secrets.token_hex(8).encode())
        except OSError as exc:
            log.warning("could not rewrite %s (%s); another process sharing %s may list "
                        "voices as they were before this change until the next one",
                        self._mark_path, exc.strerror or exc, self.voices_dir)

    @staticmethod
    def _remove_record(path: Path) -> None:
        """Delete a voice file durably. A disk that cannot sync or delete is a 507 with
        nothing changed (the directory is synced first, so a failing disk refuses before
        the file goes)."""
        try:
            fsync_dir(path.parent)
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_failed(exc, path, "delete") from exc
        sync_dir_after(path, "deleted")

    # ------------------------------------------------------------------ voices

    @staticmethod
    def _voice(voice_id: str, record: Record) -> Voice:
        return msgspec.convert({"voice_id": voice_id, **{k: record.get(k) for k in _VOICE_KEYS
                                                          if record.get(k) is not None}}, Voice)

    @staticmethod
    def _record(voice: Voice) -> Record:
        return {k: getattr(voice, k) for k in _VOICE_KEYS}

    def list_voices(self) -> list[Voice]:
        voices = self._all_voices()
        return [*(v for v in BuiltinVoiceStore.voices
                  if v.voice_id not in BuiltinVoiceStore.later or v.voice_id not in voices),
                *(self._voice(v, voices[v]) for v in sorted(voices))]

    def _builtin(self, voice_id: str) -> Voice | None:
        """The built-in voice of that id, unless a custom voice stored before the
        built-in existed holds the id (``BuiltinVoiceStore.later``)."""
        builtin = BuiltinVoiceStore.find(voice_id)
        if builtin is not None and voice_id in BuiltinVoiceStore.later \
                and voice_id in self._all_voices():
            return None
        return builtin

    def get_voice(self, voice_id: str) -> Voice:
        builtin = self._builtin(voice_id)
        if builtin is not None:
            return builtin
        record = (_read_record(self._voice_path(voice_id))
                  if is_valid_id(voice_id) and self._is_own_file(voice_id) else None)
        if record is None:
            raise NotFound(f"Voice '{voice_id}' not found")
        return self._voice(voice_id, record)

    def _check_writable(self, voice_id: str, action: str) -> None:
        check_id(voice_id, "voice_id")
        if self._builtin(voice_id) is not None:
            raise Conflict(f"Voice '{voice_id}' is a built-in voice and cannot be {action}; "
                           "create a custom voice with another voice_id")

    def _check_prompt_exists(self, voice: Voice) -> None:
        if voice.audio_prompt and not is_stored_file(self._prompt_path(voice.audio_prompt)):
            raise NotFound(f"Audio prompt '{voice.audio_prompt}' not found; upload it first "
                           "with POST /audio_prompts/upload")

    def create_voice(self, voice: Voice) -> Voice:
        check_id(voice.voice_id, "voice_id")
        if BuiltinVoiceStore.find(voice.voice_id) is not None:
            raise Conflict(f"Voice '{voice.voice_id}' already exists as a built-in voice; "
                           "pick another voice_id")
        path = self._voice_path(voice.voice_id)
        with self._exclusive() as voices:
            if voice.voice_id in voices or os.path.lexists(path):
                raise Conflict(f"Voice '{voice.voice_id}' already exists; change it with "
                               f"PUT /voice_mappings/{voice.voice_id} or pick another voice_id")
            check_new_id(voice.voice_id, "voice_id",
                         [*(v.voice_id for v in BuiltinVoiceStore.voices), *voices])
            if self.max_voices is not None and len(voices) >= self.max_voices:
                raise StorageFailed(
                    f"there are {len(voices)} custom voices, the limit "
                    "(storage.max_voices); delete voices you no longer use, or raise it")
            self._check_prompt_exists(voice)
            now = _now()
            record = {**self._record(voice), "created": now, "updated": now}
            atomic_write_bytes(path, _encode(record))
            self._changed(voices, {voice.voice_id: record})
        log.info("created voice %s", voice.voice_id)
        return self._voice(voice.voice_id, record)

    def update_voice(self, voice_id: str, voice: Voice) -> Voice:
        self._check_writable(voice_id, "changed")
        path = self._voice_path(voice_id)
        with self._exclusive() as voices:
            old = _read_record(path) if self._is_own_file(voice_id) else None
            if old is None:
                raise NotFound(f"Voice '{voice_id}' not found")
            self._check_prompt_exists(voice)
            record = {**self._record(voice), "created": old.get("created"), "updated": _now()}
            atomic_write_bytes(path, _encode(record))
            self._changed(voices, {voice_id: record})
        log.info("updated voice %s", voice_id)
        return self._voice(voice_id, record)

    def delete_voice(self, voice_id: str, *, keep_prompt: bool = False) -> str | None:
        """Delete the voice, and its prompt when no other voice uses it (unless kept)."""
        self._check_writable(voice_id, "deleted")
        path = self._voice_path(voice_id)
        with self._exclusive() as voices:
            record = _read_record(path) if self._is_own_file(voice_id) else None
            if record is None:
                raise NotFound(f"Voice '{voice_id}' not found")
            self._remove_record(path)
            self._changed(voices, {voice_id: None})
            prompt = record.get("audio_prompt")
            still_used = any(rec.get("audio_prompt") == prompt
                             for other, rec in voices.items() if other != voice_id)
            drop_prompt = bool(prompt) and is_valid_id(prompt) and not keep_prompt \
                and not still_used
            # No voice names the prompt any more; a crash before these unlinks only
            # leaves an unused WAV, which lists as an ordinary prompt.
            if drop_prompt:
                remove_file(self._info_path(prompt))
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
        samples = resample(to_mono(samples), rate, PROMPT_RATE)
        return AudioPrompt(prompt_id=prompt_id, samples=np.ascontiguousarray(samples),
                           sample_rate=PROMPT_RATE)

    @staticmethod
    def _users(voices: dict[str, Record]) -> dict[str, list[str]]:
        """Which voices use each prompt, in voice id order."""
        users: dict[str, list[str]] = {}
        for voice_id in sorted(voices):
            prompt = voices[voice_id].get("audio_prompt")
            if prompt:
                users.setdefault(prompt, []).append(voice_id)
        return users

    def _prompt_info(self, prompt_id: str, users: dict[str, list[str]]) -> dict[str, Any] | None:
        path = self._prompt_path(prompt_id)
        try:
            st = path.stat()
            info = sf.info(path)
        except (OSError, sf.LibsndfileError, RuntimeError):
            return None
        try:
            meta = _read_record(self._info_path(prompt_id)) or {}
        except ConfigError as exc:
            log.warning("%s", exc.message)
            meta = {}
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
            "used_by": users.get(prompt_id, []),
            "source": meta.get("source", {}),
        }

    def list_prompts(self) -> list[dict[str, Any]]:
        users = self._users(self._all_voices())
        infos = (self._prompt_info(p, users) for p in self._prompt_ids())
        return [info for info in infos if info is not None]

    def save_prompt(self, prompt_id: str, samples: np.ndarray, sample_rate: int, *,
                    overwrite: bool = False, source: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        """Store mono samples as a 44.1 kHz 16-bit WAV (resampled if needed)."""
        path = self._prompt_path(prompt_id)
        samples = resample(to_mono(np.asarray(samples, np.float32)), sample_rate,
                                 PROMPT_RATE)
        # Encoded in memory, then written plainly: soundfile writing to a file swallows the
        # disk's OSError (a full disk would surface as an AssertionError, not a 507).
        buf = io.BytesIO()
        sf.write(buf, samples, PROMPT_RATE, format="WAV", subtype="PCM_16")
        wav = buf.getvalue()
        with self._exclusive() as voices:
            if path.exists() and not overwrite:
                raise Conflict(f"Audio prompt '{prompt_id}' already exists; delete it first "
                               "or upload with ?overwrite=true to replace it")
            if not path.exists():
                check_new_id(prompt_id, "prompt_id", self._prompt_ids())
            self._check_quota(len(wav), replacing=path)
            atomic_write_bytes(path, wav)
            atomic_write_bytes(self._info_path(prompt_id),
                               _encode({"created": _now(), "source": source or {}}))
        log.info("saved audio prompt %s (%.2f s)", prompt_id, len(samples) / PROMPT_RATE)
        info = self._prompt_info(prompt_id, self._users(voices))
        assert info is not None
        return info

    def delete_prompt(self, prompt_id: str, *, cascade: bool = False) -> list[str]:
        """Delete the prompt; refuse while voices use it unless ``cascade`` deletes them."""
        path = self._prompt_path(prompt_id)
        with self._exclusive() as voices:
            if not path.is_file():
                raise NotFound(f"Audio prompt '{prompt_id}' not found")
            users = self._users(voices).get(prompt_id, [])
            if users and not cascade:
                raise Conflict(
                    f"Audio prompt '{prompt_id}' is used by voice(s) {', '.join(users)}; delete "
                    "or change those voices first, or repeat with ?cascade=true to delete them "
                    "too")
            deleted: dict[str, Record | None] = {}
            try:
                for voice_id in users:
                    self._remove_record(self._voice_path(voice_id))
                    deleted[voice_id] = None
            finally:
                if deleted:
                    self._changed(voices, deleted)
            # The voices are gone first: a crash before these unlinks leaves a prompt
            # nobody uses, never a voice naming a missing prompt.
            remove_file(self._info_path(prompt_id))
            remove_file(path)
        log.info("deleted audio prompt %s%s", prompt_id,
                 f" and voice(s) {', '.join(users)}" if users else "")
        return users

    # ------------------------------------------------------------------ startup

    def _migrate_index(self) -> None:
        """Move a first-layout ``voices.json`` into one file per voice and per prompt.

        Crash-safe without a sync per file: the files are written (temp file, rename),
        everything is flushed to disk once, and only then is ``voices.json`` renamed to
        ``voices.json.migrated``. A crash before that rename leaves ``voices.json`` in
        place, and the next start moves it again, rewriting every file it names. Its
        records win over files of the same name (a ``voices.json`` put back later, say
        from a backup, is taken over the same way); other voice files are kept.

        The first layout allowed ids that one directory cannot hold apart everywhere:
        two differing only in case are one file on a case-insensitive filesystem (macOS,
        Windows), and device names (``CON``) cannot be files on Windows. No two records
        ever go to one file: see :func:`_voice_targets` and :func:`_prompt_targets`.
        """
        index = self.data_dir / INDEX_NAME
        if not index.exists():
            return
        with self._exclusive():
            try:
                data = json.loads(index.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
                voices, prompts = data.get("voices") or {}, data.get("prompts") or {}
                if not isinstance(voices, dict) or not isinstance(prompts, dict):
                    raise ValueError("'voices' and 'prompts' must be objects")
            except FileNotFoundError:  # another process moved it meanwhile
                return
            except ValueError as exc:
                raise ConfigError(
                    f"{index} is not valid voice-store JSON ({exc}); restore it from a "
                    "backup or move it away to start with no custom voices") from None
            skipped = [record_id for records in (voices, prompts)
                       for record_id, record in records.items()
                       if not is_valid_id(record_id) or not isinstance(record, dict)]
            voices, prompts = _movable(voices), _movable(prompts)
            voice_targets = _voice_targets(voices, self.voices_dir)
            prompt_targets = _prompt_targets(prompts, self.prompt_info_dir)
            moves = [*((self._voice_path(target), voices[voice_id])
                       for voice_id, target in voice_targets.items()),
                     *((self._info_path(prompt_id), prompts[prompt_id])
                       for prompt_id in prompt_targets)]
            for path, record in moves:
                try:
                    _write_unsynced(path, _encode(record))
                except OSError as exc:
                    raise storage_failed(exc, path) from exc
            os.sync()
            for directory in (self.voices_dir, self.prompt_info_dir):
                if directory.is_dir():
                    fsync_dir(directory)
            kept = _free_name(index.with_name(index.name + MIGRATED_SUFFIX))
            try:
                os.replace(index, kept)
                fsync_dir(self.data_dir)
            except OSError as exc:
                raise storage_failed(exc, index, "rename") from exc
            self._mark_changed()  # _startup_report reads every file next
        log.warning("moved %d voice(s) and %d prompt record(s) from %s into %s and %s; the "
                    "old file is kept as %s", len(voice_targets), len(prompt_targets), index,
                    self.voices_dir, self.prompt_info_dir, kept.name)
        renamed = {old: new for old, new in voice_targets.items() if old != new}
        unmoved = [p for p in prompts if p not in prompt_targets]
        problems = []
        if renamed:
            problems.append(
                "voice(s) moved under a new id, as their id differs only in case from "
                "another voice's or is a Windows device name (CON, NUL, COM1...): "
                f"{', '.join(f'{old!r} is now {new!r}' for old, new in renamed.items())}; "
                "clients must use the new id (the old one answers 404), and "
                "PUT /voice_mappings/{voice_id} changes such a voice or "
                "DELETE /voice_mappings/{voice_id} removes it")
        if unmoved:
            problems.append(
                f"prompt record(s) {', '.join(map(repr, unmoved))} were not moved, as their "
                "id differs only in case from another prompt's or is a Windows device name; "
                "their WAV files are left as they are and keep working here (the upload time "
                "and source listed come from the file), but to move this directory to a "
                "case-insensitive filesystem, upload each again under another prompt_id "
                "(POST /audio_prompts/upload) and point its voices at it "
                "(PUT /voice_mappings/{voice_id})")
        if skipped:
            problems.append(
                f"{len(skipped)} record(s) whose id cannot be a file name or whose record is "
                f"not an object ({', '.join(map(repr, skipped[:10]))}) were not moved and are "
                f"only in {kept.name}; recreate such a voice with POST /voice_mappings under "
                "a valid voice_id and its settings from that file")
        if problems:
            log.warning("%s: %s", index.name, "; ".join(problems))

    def _startup_report(self) -> None:
        with self._cache_lock:
            self._voices = None  # every file is read (strictly) at startup
        voices = self._all_voices(strict=True)
        prompts = set(self._prompt_ids())
        for entry in self.prompts_dir.glob("*.wav"):
            if not is_valid_id(entry.stem):
                log.warning("ignoring %s: prompt file names must be <prompt_id>.wav with "
                            "letters, digits, '_' or '-'", entry)
            elif entry.is_symlink():
                log.warning("ignoring %s: a symlink; prompts must be files in %s (copy the "
                            "file there instead)", entry, self.prompts_dir)
        if self.voices_dir.is_dir():
            for entry in self.voices_dir.iterdir():
                if entry.name.startswith("."):
                    continue
                voice_id = _record_id(entry.name)
                if voice_id is None:
                    log.warning("ignoring %s: voice file names must be <voice_id>.json with "
                                "letters, digits, '_' or '-'", entry)
                elif voice_id not in voices:
                    log.warning("ignoring %s: not a regular file (a symlink is not followed)",
                                entry)
        for voice_id, record in sorted(voices.items()):
            prompt = record.get("audio_prompt")
            if prompt and prompt not in prompts:
                log.warning("voice %s uses audio prompt %s, which is missing from %s",
                            voice_id, prompt, self.prompts_dir)
        log.info("voice store: %d custom voice(s), %d audio prompt(s) in %s and %s",
                 len(voices), len(prompts), self.voices_dir, self.prompts_dir)


def _movable(records: dict[str, Any]) -> dict[str, Record]:
    """The records of ``voices.json`` whose id can be a file name and that are objects."""
    return {k: v for k, v in records.items() if is_valid_id(k) and isinstance(v, dict)}


def _file_ids(directory: Path) -> dict[str, set[str]]:
    """The ids of the ``<id>.json`` files in ``directory``, grouped by case-folded id."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    ids: dict[str, set[str]] = {}
    for name in names:
        record_id = _record_id(name)
        if record_id is not None:
            ids.setdefault(record_id.casefold(), set()).add(record_id)
    return ids


def _is_portable(record_id: str, claimed: set[str], on_disk: dict[str, set[str]]) -> bool:
    """Whether ``record_id`` can keep its own file: not a device name, no record moved
    before it differs from it only in case, and no file there does either."""
    key = record_id.casefold()
    return (key not in RESERVED_NAMES and key not in claimed
            and on_disk.get(key, set()) <= {record_id})


def _voice_targets(voices: dict[str, Record], voices_dir: Path) -> dict[str, str]:
    """The id each ``voices.json`` voice is moved under (in the file's order): its own
    when :func:`_is_portable`, else a new one from :func:`_new_voice_id`. So no voice is
    lost, and a client still asking for the old id gets a 404, never another voice."""
    on_disk = _file_ids(voices_dir)
    blocked = {v.casefold() for v in voices} | {v.voice_id.casefold()
                                                for v in BuiltinVoiceStore.voices}
    claimed: set[str] = set()
    targets = {}
    for voice_id, record in voices.items():
        if _is_portable(voice_id, claimed, on_disk):
            target = voice_id
        else:
            target = _new_voice_id(voice_id, _encode(record), blocked | claimed, on_disk,
                                   voices_dir)
        claimed.add(target.casefold())
        targets[voice_id] = target
    return targets


def _new_voice_id(voice_id: str, payload: bytes, blocked: set[str],
                  on_disk: dict[str, set[str]], voices_dir: Path) -> str:
    """The first of ``<id>-2``, ``<id>-3``... (cut to fit the id length) that differs in
    more than case from every id in ``blocked`` (case-folded) and every voice file. A
    file already holding exactly this record under that name (written by a migration
    that crashed before it finished, or from the same ``voices.json`` put back) is taken
    again, so running the migration again picks the same ids."""
    n = 1
    while True:
        n += 1
        suffix = f"-{n}"
        candidate = voice_id[:MAX_ID_LENGTH - len(suffix)] + suffix
        key = candidate.casefold()
        if key in blocked:
            continue
        existing = on_disk.get(key, set())
        if not existing or (existing == {candidate}
                            and _holds(voices_dir / f"{candidate}.json", payload)):
            return candidate


def _prompt_targets(prompts: dict[str, Record], info_dir: Path) -> list[str]:
    """The ``voices.json`` prompt records that are moved (in the file's order): those
    whose id :func:`_is_portable`. A prompt's id names its WAV file, which voices refer
    to and which the first layout already stored, so it is not renamed; a record left
    out only loses the upload time and source shown in listings."""
    on_disk = _file_ids(info_dir)
    claimed: set[str] = set()
    moved = []
    for prompt_id in prompts:
        if _is_portable(prompt_id, claimed, on_disk):
            claimed.add(prompt_id.casefold())
            moved.append(prompt_id)
    return moved


def _holds(path: Path, payload: bytes) -> bool:
    try:
        return path.read_bytes() == payload
    except OSError:
        return False


def _ignores_case(directory: Path) -> bool:
    """Whether ``directory``'s filesystem matches names whatever their case: its own
    name in another case finds it."""
    try:
        return os.path.samefile(directory, directory.with_name(directory.name.swapcase()))
    except OSError:
        return False


def _write_unsynced(path: Path, payload: bytes) -> None:
    """Replace ``path`` by rename, without a sync (a caller that needs it durable syncs
    once for many files). A failing disk raises its ``OSError``; no temp file is left."""
    tmp = temp_path_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _free_name(path: Path) -> Path:
    """``path``, or ``path.2``, ``path.3``... : the first that does not exist."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def make_store(ctx: PluginContext) -> FilesystemVoiceStore:
    storage = ctx.settings.storage
    return FilesystemVoiceStore(ctx.settings.path(storage.audio_prompts_dir),
                                ctx.settings.path(storage.data_dir),
                                max_prompt_bytes=int(storage.max_prompts_mb * 1024 * 1024),
                                max_voices=storage.max_voices)


@hookimpl
def register_voice_stores(register):
    register("filesystem", make_store)
