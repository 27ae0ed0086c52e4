"""Durable files for plugins that keep data on disk (voice stores, caches): part of the
public plugin API, stable across releases (``docs/plugins.md``, "The public API").

A write goes to a temp file in the same directory and is renamed over the old one, so a
reader sees the old file or the new one, never half of one; a disk that refuses it
raises ``StorageFailed`` (507) before anything changes. Ids that become file names follow
one rule everywhere (``check_id``, ``check_new_id``), and stored files are read back only
if they are regular files, never through a symlink (``is_stored_file``).
"""

from ttsframe.core.atomic import (
    atomic_write,
    atomic_write_bytes,
    fsync_dir,
    remove_file,
    remove_stale_temps,
    storage_failed,
    sync_dir_after,
    temp_path_for,
)
from ttsframe.core.ids import MAX_ID_LENGTH, RESERVED_NAMES, check_id, check_new_id, is_valid_id
from ttsframe.core.storage.paths import is_stored_file

__all__ = [
    "MAX_ID_LENGTH",
    "RESERVED_NAMES",
    "atomic_write",
    "atomic_write_bytes",
    "check_id",
    "check_new_id",
    "fsync_dir",
    "is_stored_file",
    "is_valid_id",
    "remove_file",
    "remove_stale_temps",
    "storage_failed",
    "sync_dir_after",
    "temp_path_for",
]
