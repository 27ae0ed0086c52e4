"""The testing kit's ``eventually``: it waits for a state another thread or task reaches,
returns what the check gave, and fails naming what never happened."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ttsframe.testing.waiting import eventually, eventually_async


def test_returns_what_the_check_gave_once_another_thread_gets_there():
    box: dict[str, str] = {}
    setter = threading.Timer(0.1, lambda: box.update(state="ready"))
    setter.start()
    try:
        assert eventually(lambda: box.get("state"), timeout=30) == "ready"
    finally:
        setter.join()


def test_fails_after_the_timeout_naming_the_state_and_the_last_answer():
    checks = []
    started = time.monotonic()
    with pytest.raises(AssertionError) as err:
        eventually(lambda: checks.append(1) or [], timeout=0.2, interval=0.01,
                   message=lambda: f"the job done after {len(checks)} checks")
    assert time.monotonic() - started >= 0.2
    assert len(checks) >= 2
    assert str(err.value) == f"the job done after {len(checks)} checks: not true after 0.2 s " \
                             "(last check gave [])"


def test_a_last_check_after_the_deadline_still_counts():
    """A machine too busy to wake before the deadline still gets its last look."""
    checks = []
    assert eventually(lambda: checks.append(1) or len(checks) == 2, timeout=0.05,
                      interval=60) is True
    assert len(checks) == 2


def test_an_error_in_the_check_is_not_swallowed():
    with pytest.raises(KeyError):
        eventually(lambda: {}["missing"], timeout=5)


def test_async_waits_on_the_loop_for_other_tasks_and_awaitable_checks():
    async def main():
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, done.set)
        assert await eventually_async(done.is_set, timeout=30) is True

        async def check():
            return "answer" if done.is_set() else None

        assert await eventually_async(check, timeout=30) == "answer"
        with pytest.raises(AssertionError, match=r"never: not true after 0\.05 s"):
            await eventually_async(lambda: False, timeout=0.05, message="never")

    asyncio.run(main())
