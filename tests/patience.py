"""Deadlines for the tests. Each one is a hang guard, never a speed claim: far above what a
busy machine needs (minutes for what takes seconds on a quiet one), so a CPU hog beside the
suite cannot make a test fail. ``RCA_TEST_TIMEOUT_SCALE`` multiplies them all for a machine
slower still. A module of its own, imported by a name no other test module shares."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

HANG_SECONDS = 300.0


def patience(seconds: float = HANG_SECONDS) -> float:
    """``seconds`` scaled by ``RCA_TEST_TIMEOUT_SCALE`` (default 1)."""
    return seconds * float(os.environ.get("RCA_TEST_TIMEOUT_SCALE", "1"))


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = HANG_SECONDS) -> None:
    """Poll ``predicate`` until it holds; ``AssertionError`` naming ``what`` after the
    (scaled) ``timeout``."""
    deadline = time.monotonic() + patience(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {patience(timeout):.0f} s waiting for {what}")
        time.sleep(0.1)


async def eventually(
    predicate: Callable[[], bool], what: str, timeout: float = HANG_SECONDS
) -> None:
    """:func:`wait_for` inside an event loop (the loop keeps running while it waits)."""
    deadline = time.monotonic() + patience(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {patience(timeout):.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
