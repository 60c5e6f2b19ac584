"""Waits the tests share: poll a condition under a deadline, freeze a process for a while."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Call `predicate` until it returns something truthy (returned); fail naming `what` once
    `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)  # polling interval of a deadline-bounded wait


@contextlib.contextmanager
def paused(proc: Any) -> Iterator[None]:
    """The process frozen (SIGSTOP): it publishes and answers nothing, its sockets stay open."""
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)
