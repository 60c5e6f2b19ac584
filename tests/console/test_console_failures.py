"""The console when parts die, in Chromium: a killed capture daemon greys its cameras (stale,
then offline), a killed worker reads "stopped" and an ask says so at once, a worker started
again reads "loading" then "ready", and SIGTERM stops the console with the tab still open. One
stack of its own: this test kills it."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from console_helpers import BUNDLED_MODEL, console_process, until

from pnp_vision.console.watch import worker_words
from pnp_vision.protocol.requests import ModelStatus, QueueStatus, ReloadStatus, StatusResult
from pnp_vision.stack.launch import service_stack, start_worker

WAIT_MS = 20_000


def _state_within(page: Any, selector: str, timeout_s: float) -> float:
    """Seconds until `selector` matches, polled by the page itself; fails past `timeout_s`."""
    started = time.monotonic()
    page.wait_for_selector(selector, timeout=timeout_s * 1000)
    return time.monotonic() - started


def test_dead_parts_look_dead_and_sigterm_ends_the_console_with_a_tab_open(
    browser: Any, run_dir: Path, recordings: Path
) -> None:
    with (
        service_stack(model_dir=BUNDLED_MODEL, run_dir=run_dir / "failures") as stack,
        console_process(stack, recordings) as (url, console),
    ):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#tile-demo[data-state=streaming]", timeout=WAIT_MS)
        page.wait_for_selector("#worker[data-state=ready]", timeout=WAIT_MS)

        stack.capture.popen.kill()  # SIGKILL: no goodbye on the wire
        stale_s = _state_within(page, "#tile-demo.down[data-state=stale]", 4)
        assert "no frames for" in page.text_content("#tile-demo .down-note")
        offline_s = _state_within(page, "#tile-demo.down[data-state=offline]", 6)
        assert "capture silent for" in page.text_content("#tile-demo .down-note")
        grey = page.evaluate("getComputedStyle(document.querySelector('#tile-demo img')).filter")
        assert "grayscale" in grey

        stack.worker.popen.kill()
        stopped_s = _state_within(page, "#worker[data-state=stopped]", 4)
        assert "no reply" in page.text_content("#worker-detail")
        page.select_option("#ask-template", "tombstone")
        asked = time.monotonic()
        page.click("#ask button[type=submit]")
        page.wait_for_selector("#ask-result[data-state=error]", timeout=2000)
        ask_error_s = time.monotonic() - asked
        assert "stopped" in page.text_content("#ask-result")

        # a worker started again: loading, then ready, in words
        page.evaluate("""() => {
            const pill = document.querySelector('#worker');
            window.seen = [];
            new MutationObserver(() => window.seen.push(pill.dataset.state))
                .observe(pill, {attributes: true});
        }""")
        worker = start_worker(
            stack.requests_endpoint,
            stack.frames_endpoint,
            model_dir=BUNDLED_MODEL,
            log_dir=run_dir / "failures",
        )
        try:
            page.wait_for_selector("#worker[data-state=ready]", timeout=60_000)
        finally:
            worker.stop()
        assert "loading" in page.evaluate("window.seen")

        page.click("#tile-demo .frame-box")  # a long-poll for the next frame in flight too
        page.wait_for_selector("#zoom[open]", timeout=WAIT_MS)
        stopping = time.monotonic()
        console.send_signal(signal.SIGTERM)
        code = until(lambda: console.poll() is not None, 5, "console exit after SIGTERM")
        exit_s = time.monotonic() - stopping
        assert console.returncode in (0, -signal.SIGTERM), code
        context.close()
    print(
        f"stale after {stale_s:.2f} s, offline after {offline_s:.2f} s, worker stopped after "
        f"{stopped_s:.2f} s, ask error in {ask_error_s:.2f} s, console exit {exit_s:.2f} s"
    )


def _status(**changes: Any) -> StatusResult:
    base = StatusResult(
        uptime_s=1.0,
        ready=True,
        draining=False,
        model=ModelStatus(state="ready", path="/m"),
        queue=QueueStatus(capacity=4, depth=0, waiting_for_frame=0, in_flight=0),
        cameras={},
        counters={},
        errors={},
        endpoints={},
    )
    return base.model_copy(update=changes)


def test_the_workers_state_in_plain_words() -> None:
    assert worker_words(None, "no reply to status within 0.6 s")["state"] == "stopped"
    assert worker_words(_status(), None) == {"state": "ready", "detail": "idle"}
    loading = _status(model=ModelStatus(state="loading", path="/m"))
    assert worker_words(loading, None)["state"] == "loading"
    reload = ReloadStatus(state="loading", generation=2, started=1.0)
    assert worker_words(_status(reload=reload), None)["state"] == "reloading"
    full = QueueStatus(capacity=4, depth=3, waiting_for_frame=1, in_flight=1)
    assert worker_words(_status(queue=full), None)["state"] == "busy"
    assert worker_words(_status(draining=True), None)["state"] == "stopping"
    failed = _status(model=ModelStatus(state="failed", path="/m", error="boom"))
    assert worker_words(failed, None) == {"state": "failed", "detail": "the model failed: boom"}
