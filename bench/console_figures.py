"""What the console costs and how fast it tells the truth, in Debian's Chromium on a live stack
(the bundled model and recording):

- bytes a tab loads before its first camera tile, and what it receives per second while idle
  (the line standing still: tiles, state events), per tab, with the console's own CPU;
- how long after a capture daemon is SIGKILLed its tile reads stale and offline, after the
  worker is SIGKILLed the header reads stopped, and an ask then shows its error;
- how long SIGTERM and Ctrl-C (SIGINT) take to stop the console with tabs open (event streams
  and a live enlarged view in flight), with the worker and capture alive and gone.

    .venv/bin/python bench/console_figures.py [--idle-s 10] [--tabs 3]

Prints a table and writes bench/results/console_figures.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.browser import Traffic, launch
from pnp_vision.stack.launch import ServiceStack, service_stack

OUT = PROJECT_ROOT / "bench" / "results" / "console_figures.json"
MODEL = PROJECT_ROOT / "models" / "pnp-inspector"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_console(stack: ServiceStack, recordings: Path) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "pnp_vision.cli", "console", "--port", str(port)]
    cmd += ["--endpoint", stack.requests_endpoint, "--frames-endpoint", stack.frames_endpoint]
    cmd += ["--recordings", str(recordings)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"http://127.0.0.1:{port}/", proc
        time.sleep(0.1)  # polling a port, bounded by the deadline
    raise SystemExit("console did not listen within 60 s")


def open_tab(browser: Any, url: str, zoom: bool = False) -> tuple[Any, Traffic]:
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    traffic = Traffic(page)
    page.goto(url)
    page.wait_for_selector("body[data-first-tile=yes]", timeout=60_000)
    if zoom:
        page.click("#tile-demo .frame-box")
        page.wait_for_selector("#zoom-img[data-seq]", timeout=30_000)
    return page, traffic


def stop_time(proc: subprocess.Popen[bytes], sig: int) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return float("inf")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--tabs", type=int, default=3)
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="pnpcf-", dir="/tmp"))
    recordings = run / "recordings"
    shutil.copytree(PROJECT_ROOT / "recordings" / "demo", recordings / "demo")
    figures: dict[str, Any] = {"tabs": args.tabs, "idle_window_s": args.idle_s}
    with sync_playwright() as p:
        browser = launch(p)
        with service_stack(model_dir=MODEL, run_dir=run / "a") as stack:
            url, console = start_console(stack, recordings)
            page, traffic = open_tab(browser, url)
            figures["first_tile_bytes"] = traffic.total()
            figures["first_tile_by_url"] = {
                u.removeprefix(url): n for u, n in sorted(traffic.by_url().items())
            }
            others = [open_tab(browser, url) for _ in range(args.tabs - 1)]
            # Playwright hands the browser's events over only while it is called: the
            # windows below are waits on a page, never a bare sleep.
            page.wait_for_timeout(1000)  # let every tab settle before the window
            before = [t.total() for _, t in [(page, traffic), *others]]
            cpu0, t0 = cpu_seconds(console.pid), time.monotonic()
            page.wait_for_timeout(args.idle_s * 1000)  # the window: nothing happens on the line
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(console.pid) - cpu0
            after = [t.total() for _, t in [(page, traffic), *others]]
            rates = [(b - a) / elapsed / 1000 for a, b in zip(before, after, strict=True)]
            figures["idle_kB_per_s_per_tab"] = [round(r, 2) for r in rates]
            figures["console_cpu_percent_idle"] = round(100 * cpu / elapsed, 1)
            zoom_page, zoom_traffic = open_tab(browser, url, zoom=True)
            z0, zt = zoom_traffic.total(), time.monotonic()
            zoom_page.wait_for_timeout(5000)  # the window of the enlarged live view
            figures["zoom_kB_per_s"] = round(
                (zoom_traffic.total() - z0) / (time.monotonic() - zt) / 1000, 1
            )
            figures["sigterm_exit_s_all_alive"] = round(stop_time(console, signal.SIGTERM), 2)

            url, console = start_console(stack, recordings)
            page, _ = open_tab(browser, url)
            for _ in range(args.tabs - 1):
                open_tab(browser, url, zoom=True)
            page.wait_for_selector("#worker[data-state=ready]", timeout=30_000)
            killed = time.monotonic()
            stack.capture.popen.kill()
            page.wait_for_selector("#tile-demo[data-state=stale]", timeout=30_000)
            figures["stale_after_kill_s"] = round(time.monotonic() - killed, 2)
            page.wait_for_selector("#tile-demo[data-state=offline]", timeout=30_000)
            figures["offline_after_kill_s"] = round(time.monotonic() - killed, 2)
            killed = time.monotonic()
            stack.worker.popen.kill()
            page.wait_for_selector("#worker[data-state=stopped]", timeout=30_000)
            figures["worker_stopped_after_kill_s"] = round(time.monotonic() - killed, 2)
            asked = time.monotonic()
            page.click("#ask button[type=submit]")
            page.wait_for_selector("#ask-result[data-state=error]", timeout=30_000)
            figures["ask_error_s"] = round(time.monotonic() - asked, 2)
            figures["sigint_exit_s_worker_and_capture_gone"] = round(
                stop_time(console, signal.SIGINT), 2
            )
        browser.close()
    shutil.rmtree(run, ignore_errors=True)

    print(f"{'figure':44} value")
    for key, value in figures.items():
        if key != "first_tile_by_url":
            print(f"{key:44} {value}")
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
