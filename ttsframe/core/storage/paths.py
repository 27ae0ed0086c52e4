"""Reading files back from the data directories without leaving them.

Names are safe by construction (``core/ids.py``); what remains is a symlink placed in a
data directory by hand or by another program, which would make the server read (and
serve) a file from anywhere. Files the server reads back must be regular files.
"""

from __future__ import annotations

from pathlib import Path


def is_stored_file(path: Path) -> bool:
    """A regular file, not a symlink: something the server could have written itself."""
    return path.is_file() and not path.is_symlink()
