"""Screenshots of the console on a live stack (the bundled model and recording), for the README.

    python bench/console_screenshots.py   # writes bench/results/console-*.png

Starts capture + worker + console as real processes, asks a few questions through the client
(learned templates and an untrained one), and photographs each view with Debian's chromium
(Playwright, nothing downloaded): the live view, an inspection opened, the labelling view.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.browser import launch
from pnp_vision.stack.launch import service_stack

OUT = PROJECT_ROOT / "bench" / "results"
WAIT_MS = 60_000


def _wait_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)  # polling a port, bounded by the deadline
    raise SystemExit(f"console not listening on {port} within {timeout} s")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = Path(tempfile.mkdtemp(prefix="pnpshot-", dir="/tmp"))
    recordings = run_dir / "recordings"
    shutil.copytree(PROJECT_ROOT / "recordings" / "demo", recordings / "demo")
    written = []
    model = PROJECT_ROOT / "models" / "pnp-inspector"
    with service_stack(model_dir=model, run_dir=run_dir / "stack") as st:
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
                "--recordings",
                str(recordings),
            ],
            cwd=PROJECT_ROOT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_port(port, 60)
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_selector("body[data-first-tile=yes]", timeout=WAIT_MS)
                with VisionClient(st.requests_endpoint, timeout=30.0, retries=0) as client:
                    for template in ("nozzle_alignment", "tombstone", "part_on_nozzle"):
                        client.inspect("demo", template, frame="fresh")
                    client.inspect("demo", "part_marking", {"marking": "R0603"}, frame="fresh")
                    shown = client.inspect("demo", "feeder_pocket_empty", frame="fresh")
                page.wait_for_function(
                    "document.querySelectorAll('#inspections tbody tr').length >= 5",
                    timeout=WAIT_MS,
                )
                page.wait_for_function(
                    "[...document.querySelectorAll('#inspections img')]"
                    ".every(i => i.complete && i.naturalWidth > 0)",
                    timeout=WAIT_MS,
                )
                page.wait_for_timeout(1200)  # one more state event: the per-template figures
                page.screenshot(path=str(OUT / "console-live.png"))
                written.append("console-live.png")

                page.click(f'tr[data-id="{shown.id}"]')
                page.wait_for_selector("#detail-frame[data-loaded=yes]", timeout=WAIT_MS)
                page.wait_for_function(
                    "document.querySelector('#detail-crop').naturalWidth > 0", timeout=WAIT_MS
                )
                page.screenshot(path=str(OUT / "console-inspection.png"))
                written.append("console-inspection.png")
                page.click("#detail .close")

                page.click("header nav button[data-view=labels]")
                page.wait_for_selector("#view-labels[data-ready=yes]", timeout=WAIT_MS)
                page.select_option("#label-template", "nozzle_alignment")
                page.wait_for_selector(
                    '#label-grid[data-template="nozzle_alignment"] .card', timeout=WAIT_MS
                )
                page.wait_for_function(  # the model's answers beside the labels
                    "[...document.querySelectorAll('.card')].slice(0, 10)"
                    ".every(c => c.querySelector('.model .answer'))",
                    timeout=WAIT_MS,
                )
                page.keyboard.press("ArrowRight")
                page.screenshot(path=str(OUT / "console-labels.png"))
                written.append("console-labels.png")
                browser.close()
        finally:
            console.terminate()
            console.wait(timeout=20)
    shutil.rmtree(run_dir, ignore_errors=True)
    print("wrote " + ", ".join(str(OUT / name) for name in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
