"""Waiting for a state another thread, task or process will reach: poll, never sleep.

A fixed sleep ("by now the request is generating") holds on a quiet machine and fails
on a busy one. ``eventually`` checks a condition until it holds or a generous timeout
passes, so a test is as fast as the machine allows and only fails when the state never
comes; ``eventually_async`` is the same inside a coroutine, where the state is reached
by other tasks on the same event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.02


def eventually(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT,
               interval: float = DEFAULT_INTERVAL,
               message: str | Callable[[], str] = "condition") -> T:
    """Call ``predicate`` until it returns something truthy and return that value
    (``job = eventually(lambda: finished(job_id))``); raise ``AssertionError`` naming
    ``message`` (a string, or a callable giving one, so it can show the state at the
    end) if it has not held after ``timeout`` seconds. It is checked once more after the
    deadline, so a slow machine that overslept still gets its last look. Exceptions from
    ``predicate`` propagate: catch the ones that mean "not yet" inside it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(_timed_out(message, timeout, value))
        time.sleep(min(interval, left))


async def eventually_async(predicate: Callable[[], T | Awaitable[T]], *,
                           timeout: float = DEFAULT_TIMEOUT,
                           interval: float = DEFAULT_INTERVAL,
                           message: str | Callable[[], str] = "condition") -> T:
    """``eventually`` for coroutines: sleeps with ``asyncio.sleep`` between checks, so
    the event loop runs the tasks that make the condition true. ``predicate`` may be a
    plain function or return an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(_timed_out(message, timeout, value))
        await asyncio.sleep(min(interval, left))


def _timed_out(message: str | Callable[[], str], timeout: float, value: object) -> str:
    text = message() if callable(message) else message
    return f"{text}: not true after {timeout:g} s (last check gave {value!r})"
