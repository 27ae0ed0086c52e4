"""Stop work whose client has gone.

A synchronous speech request holds a place in a batch for as long as it generates; a
client that gives up (a timeout, a closed tab) would otherwise keep a worker busy for
nothing. Once the body is read, the next ASGI ``receive`` returns only when the client
disconnects, so awaiting it beside the work tells the two apart: a disconnect cancels the
work, which cancels the request's ticket in the scheduler (between decoding steps) and
logs it as abandoned. Streamed replies stop the same way through their own stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from litestar import Request

from ttsframe.core.errors import CancelCause, Cancelled

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; cancel it if the client disconnects first (the body must have
    been read already, as it is once a handler's ``data`` is parsed). The 499 raised
    then reaches nobody; it only ends the request cleanly."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Cancelled("the client disconnected; its request was cancelled",
                        cause=CancelCause.CLIENT_DISCONNECT)
    return task.result()
