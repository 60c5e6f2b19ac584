"""Debian's Chromium driven by Playwright (never a downloaded browser), for the console's tests
and benchmarks, and a byte counter on the browser's own network events."""

from __future__ import annotations

import os
import shutil
import threading
from typing import Any

from pnp_vision.errors import ConfigError

# Names that resolve to 127.0.0.1 as a DNS-rebinding page's own name would.
REBIND_HOST = "rebind.test"


def chromium_path() -> str | None:
    return (
        os.environ.get("PNP_VISION_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def launch(playwright: Any) -> Any:
    """Headless Chromium from the system (`make browser` installs Debian's)."""
    path = chromium_path()
    if path is None:
        raise ConfigError(
            "no chromium: `make browser` installs Debian's (or set PNP_VISION_CHROMIUM)"
        )
    args = ["--no-sandbox", f"--host-resolver-rules=MAP {REBIND_HOST} 127.0.0.1"]
    return playwright.chromium.launch(executable_path=path, args=args)


class Traffic:
    """Bytes a page received over the network (bodies and headers as Chromium counts them on
    the wire), from the DevTools protocol: open responses such as an event stream count as
    their data arrives."""

    def __init__(self, page: Any) -> None:
        self._lock = threading.Lock()
        self._streamed: dict[str, int] = {}
        self._finished: dict[str, int] = {}
        self.urls: dict[str, str] = {}
        self.statuses: dict[str, int] = {}
        session = page.context.new_cdp_session(page)
        session.on("Network.responseReceived", self._response)
        session.on("Network.dataReceived", self._data)
        session.on("Network.loadingFinished", self._finish)
        session.send("Network.enable")
        self._session = session

    def _response(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.urls[event["requestId"]] = event["response"]["url"]
            self.statuses[event["requestId"]] = event["response"]["status"]

    def _data(self, event: dict[str, Any]) -> None:
        with self._lock:
            rid = event["requestId"]
            self._streamed[rid] = self._streamed.get(rid, 0) + event["encodedDataLength"]

    def _finish(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._finished[event["requestId"]] = event["encodedDataLength"]

    def total(self) -> int:
        with self._lock:
            ids = set(self._streamed) | set(self._finished)
            return sum(max(self._streamed.get(i, 0), self._finished.get(i, 0)) for i in ids)

    def by_url(self) -> dict[str, int]:
        with self._lock:
            ids = set(self._streamed) | set(self._finished)
            sizes: dict[str, int] = {}
            for i in ids:
                url = self.urls.get(i, "?").split("?")[0]
                sizes[url] = sizes.get(url, 0) + max(
                    self._streamed.get(i, 0), self._finished.get(i, 0)
                )
            return sizes
