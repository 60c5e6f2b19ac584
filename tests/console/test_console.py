"""The console's real page in headless Chromium (Debian's, driven by Playwright), against a real
capture daemon replaying the demo recording and a real worker."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright  # a dev dependency (the lock): never skipped

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.evaluation.labels import load_labels
from pnp_vision.stack.launch import ServiceStack, service_stack

CHROMIUM = (
    os.environ.get("PNP_VISION_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _until(check: Callable[[], object], timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if got := check():
            return got
        time.sleep(0.05)  # polling a file or a port, bounded by the deadline
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def stack(tiny_model_dir: Callable[[str], Path]) -> Iterator[ServiceStack]:
    run_dir = Path(tempfile.mkdtemp(prefix="pnpc-", dir="/tmp"))
    with service_stack(model_dir=tiny_model_dir("qwen2_5_vl"), run_dir=run_dir) as running:
        yield running
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    rig = root / "rig"
    rig.mkdir()
    demo = PROJECT_ROOT / "recordings" / "demo"
    lines = (demo / "index.jsonl").read_text().splitlines()[:4]
    for line in lines:
        shutil.copy(demo / json.loads(line)["file"], rig)
    (rig / "index.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def console(stack: ServiceStack, recordings: Path) -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "pnp_vision.cli",
        "console",
        "--port",
        str(port),
        "--endpoint",
        stack.requests_endpoint,
        "--frames-endpoint",
        stack.frames_endpoint,
        "--recordings",
        str(recordings),
        "--token",
        TOKEN,
    ]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _until(
            lambda: (
                proc.poll() is not None or _get(url + "api/cameras?token=" + TOKEN) == 200
                if _port_open(port)
                else proc.poll() is not None
            ),
            60,
            "console up",
        )
        assert proc.poll() is None, "console exited"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def page(console: str) -> Iterator[object]:
    assert CHROMIUM, "no chromium: `make browser` installs Debian's (or set PNP_VISION_CHROMIUM)"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.goto(f"{console}?token={TOKEN}")
        tab.wait_for_selector("body[data-ready=yes]", timeout=30_000)
        yield tab
        browser.close()


def test_a_camera_tile_updates_from_the_replayed_recording(page: object) -> None:
    tile = page.wait_for_selector("#tile-demo[data-seq]", timeout=20_000)
    first = int(tile.get_attribute("data-seq"))
    page.wait_for_function(
        f"Number(document.querySelector('#tile-demo').dataset.seq) > {first}", timeout=20_000
    )
    page.wait_for_function("document.querySelector('#tile-demo img').naturalWidth > 0")
    assert "streaming" in page.text_content("#tile-demo .meta")


def test_an_inspection_asked_by_a_controller_appears_with_its_crop(
    page: object, stack: ServiceStack
) -> None:
    with VisionClient(stack.requests_endpoint, timeout=30.0, retries=0) as client:
        asked = client.inspect("demo", "tombstone")
    row = f'tr[data-id="{asked.id}"]'
    page.wait_for_selector(row, timeout=20_000)
    assert page.text_content(f"{row} td.answer") == asked.answer
    page.wait_for_function(f"document.querySelector('{row} img').naturalWidth > 0", timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#worker-state').textContent.startsWith('ready')", timeout=20_000
    )


def test_asking_from_the_page_answers(page: object) -> None:
    page.select_option("#ask-camera", "demo")
    page.select_option("#ask-template", "nozzle_alignment")
    page.click("#ask button")
    page.wait_for_function(
        "/^(YES|NO) \\(/.test(document.querySelector('#ask-result').textContent)",
        timeout=30_000,
    )


def test_labelling_a_frame_writes_the_recordings_labels(page: object, recordings: Path) -> None:
    page.select_option("#recording", "rig")
    page.select_option("#label-template", "part_on_nozzle")
    page.wait_for_selector('#frames[data-template="part_on_nozzle"] .frame', timeout=20_000)
    button = '.frame[data-seq="1"] button[data-answer="NO"]'
    page.wait_for_selector(button, timeout=20_000)
    page.click(button)
    page.wait_for_selector(f"{button}.chosen", timeout=20_000)
    labels = load_labels(recordings / "rig")
    assert [(f.seq, q.template, q.answer) for f in labels for q in f.questions] == [
        (1, "part_on_nozzle", "NO")
    ]


def test_without_the_token_every_route_is_refused(console: str) -> None:
    for path in ("", "api/cameras", "api/recordings", "api/events", "api/cameras/demo/frame.jpg"):
        assert _get(console + path) == 401, path
    assert _get(console + "api/recordings?token=wrong") == 401
    assert _get(console + "api/recordings?token=" + TOKEN) == 200


def test_beyond_loopback_it_refuses_to_start_without_a_token() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "console", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 3  # config_error
    assert "beyond loopback" in done.stderr and "token" in done.stderr
