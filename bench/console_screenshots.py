"""Screenshots of the console on a live stack (the bundled model and recording), for the README.

    python bench/console_screenshots.py   # writes bench/results/console-*.png

Starts capture + worker + console as real processes, asks a few questions through the client,
and photographs the page with Debian's chromium (Playwright, nothing downloaded).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.stack.launch import service_stack

OUT = PROJECT_ROOT / "bench" / "results"


def _wait_http(url: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"console not up at {url} within {timeout} s")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: make browser")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = Path(tempfile.mkdtemp(prefix="pnpshot-", dir="/tmp"))
    with service_stack(model_dir=PROJECT_ROOT / "models" / "pnp-inspector", run_dir=run_dir) as st:
        console = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pnp_vision.cli",
                "console",
                "--port",
                str(port),
                "--endpoint",
                st.requests_endpoint,
                "--frames-endpoint",
                st.frames_endpoint,
            ],
            cwd=PROJECT_ROOT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_http(url, 60)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_selector("body[data-ready=yes]", timeout=60_000)
                with VisionClient(st.requests_endpoint, timeout=30.0, retries=0) as client:
                    for template in (
                        "nozzle_alignment",
                        "part_on_nozzle",
                        "tombstone",
                        "feeder_pocket_empty",
                    ):
                        client.inspect("demo", template, frame="fresh")
                page.wait_for_function(
                    "document.querySelectorAll('#inspections tbody tr').length >= 4"
                )
                page.wait_for_function(
                    "[...document.querySelectorAll('#inspections img')]"
                    ".every(i => i.naturalWidth > 0)"
                )
                page.screenshot(path=str(OUT / "console-live.png"), full_page=False)
                page.select_option("#recording", "demo")
                page.select_option("#label-template", "nozzle_alignment")
                page.wait_for_selector(".frame img")
                page.locator("#frames").scroll_into_view_if_needed()
                page.screenshot(path=str(OUT / "console-labels.png"), full_page=False)
                browser.close()
        finally:
            console.terminate()
            console.wait(timeout=20)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"wrote {OUT / 'console-live.png'} and {OUT / 'console-labels.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
