"""One wake-up for the I/O thread's poller, settable from any thread or a signal handler.

A self-pipe rather than an inproc socket: a ZeroMQ socket belongs to one thread, but the model
thread (a completion), the frame subscriber's thread (a frame a job waits for), `Worker.stop()`
callers and signal handlers all need to wake the same poll. `os.write` of one byte is
thread-safe and async-signal-safe; a full pipe already means "wake up", so a failed write is fine.
"""

from __future__ import annotations

import contextlib
import os
import threading


class Wakeup:
    """`fd` goes into a `zmq.Poller`; `set()` makes it readable until `clear()`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._closed = False
        self._lock = threading.Lock()  # close() vs set() from another thread: no stale fd write

    @property
    def fd(self) -> int:
        return self._read

    def set(self) -> None:
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(OSError):  # BlockingIOError: full, a wake-up is pending
                os.write(self._write, b"\0")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        """After the signal handlers are restored (a handler must not wait on the lock)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._write)
                os.close(self._read)
