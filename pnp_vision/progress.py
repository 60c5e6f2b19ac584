"""Progress for long work a person waits on (eval, record, make_recording, train, the demo).

On a terminal: one bar redrawn in place. Anywhere else (CI, a log file, a pipe): one plain line
at each tenth of the way (every 100 items when the total is unknown), so logs show that the
job moves without a line per item.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.label = label
        self.total = max(0, total)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._tenth = -1

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n) if self.total else self.done + n
        elapsed = time.monotonic() - self.started
        left = ""
        if self.total and 0 < self.done < self.total:
            left = f", ~{elapsed / self.done * (self.total - self.done):.0f} s left"
        text = f"{self.label}: {self.done}/{self.total or '?'} in {elapsed:.1f} s{left}"
        if note:
            text += f" ({note})"
        if self.tty:
            filled = self.width * self.done // self.total if self.total else 0
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
            if self.total and self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        # Unknown total: the 1st, 10th and every 100th item.
        tenth = 10 * self.done // self.total if self.total else self.done // 100
        if tenth != self._tenth or (not self.total and self.done in (1, 10)):
            self._tenth = tenth
            print(text, file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tty and self.total and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
