"""Helpers shared by every test area: waiting for a condition, finding a free port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, *, what: str = "the condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Args:
        predicate: Called every ``interval`` seconds; exceptions propagate (a failed check fails the test).
        timeout: Seconds before giving up.
        interval: Seconds between two calls.
        what: What is awaited, for the failure message.

    Returns:
        The first truthy value ``predicate`` returned.

    Raises:
        AssertionError: When ``timeout`` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    Returns:
        The port number (the OS picked it; another process could still take it before the caller binds).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
