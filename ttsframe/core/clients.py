"""Who is asking: what separates one client's jobs and logs from another's.

With API keys set, each key is a client: the jobs and generation logs a request makes are
tagged with a fingerprint of its key (never the key itself), and a client sees, downloads
and cancels only its own. An admin key sees and manages everyone's. With no key
configured at all there is one client, the operator, who sees everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def fingerprint(key: str) -> str:
    """A stable tag for a key that does not reveal it (stored with jobs and logs)."""
    return hashlib.sha256(b"ttsframe-client:" + key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Client:
    """``owner`` tags what this client makes (None: no key identifies it); ``admin``
    sees everything."""

    owner: str | None
    admin: bool

    def sees(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner


# Everything visible: in-process callers and servers without keys.
OPERATOR = Client(owner=None, admin=True)
