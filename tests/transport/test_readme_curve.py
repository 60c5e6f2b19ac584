"""The README's Security steps, run literally and in order through the CLI (real processes).

The commands are read from the README's code block, so the text a new user follows and the
test cannot drift apart. Only the endpoints are moved to ipc:// in a temporary folder (so the
test never collides with a rig on the default ports). Then what a refused peer sees and what
the servers log about it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pnp_vision.config import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
CLI = [sys.executable, "-m", "pnp_vision.cli"]


def readme_security_steps() -> list[str]:
    """The command lines of the first code block in the README's Security section."""
    text = README.read_text()
    section = text[text.index("## Security") :]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block, "README Security section has no code block"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


class Shell:
    """Just enough of a shell for the README lines: export, VAR=value prefixes, trailing &."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PNP_VISION_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["PNP_VISION_FRAMES_ENDPOINT"] = f"ipc://{cwd}/frames.sock"
        self.env["PNP_VISION_REQUESTS_ENDPOINT"] = f"ipc://{cwd}/requests.sock"
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def _split(self, line: str) -> tuple[dict[str, str], list[str]]:
        words = shlex.split(line.replace("$PWD", str(self.cwd)))
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words and words[0] == "pnp-vision":
            words = [*CLI, *words[1:]]
        return env, words

    def run(self, line: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value.replace("$PWD", str(self.cwd))
            return subprocess.CompletedProcess(line, 0, "", "")
        env, words = self._split(line.removesuffix("&").strip())
        if line.endswith("&"):
            log = self.cwd / f"{words[3]}.log"
            with open(log, "wb") as out:
                popen = subprocess.Popen(
                    words,
                    env={**self.env, **env},
                    cwd=PROJECT_ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.background.append((words[3], popen, log))
            return subprocess.CompletedProcess(line, 0, "", "")
        return subprocess.run(
            words,
            env={**self.env, **env},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log(self, name: str) -> str:
        return next(p.read_text(errors="replace") for n, _, p in self.background if n == name)

    def stop(self) -> list[int]:
        codes = []
        for _, popen, _ in reversed(self.background):
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
            try:
                codes.append(popen.wait(20))
            except subprocess.TimeoutExpired:
                popen.kill()
                codes.append(popen.wait(10))
        return codes


@pytest.fixture
def shell() -> Iterator[Shell]:
    cwd = Path(tempfile.mkdtemp(prefix="pnpr-", dir="/tmp"))
    made = Shell(cwd)
    yield made
    made.stop()
    shutil.rmtree(cwd, ignore_errors=True)


def _until_ok(shell: Shell, line: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Re-run a client command until it succeeds, as a person would while the worker loads."""
    end = time.monotonic() + timeout
    while True:
        for name, popen, _ in shell.background:
            assert popen.poll() is None, f"{name} exited:\n{shell.log(name)}"
        done = shell.run(line)
        if done.returncode == 0 or time.monotonic() > end:
            return done


@pytest.mark.slow
def test_readme_curve_walkthrough_works_as_written(shell: Shell) -> None:
    steps = readme_security_steps()
    assert any("keys generate server" in s for s in steps)
    for line in steps:
        if line.endswith("&") or line.startswith("export") or "keys generate" in line:
            done = shell.run(line)
        else:
            done = _until_ok(shell, line, 120)
        assert done.returncode == 0, f"{line!r} failed:\n{done.stderr}\n{done.stdout}"
        assert "Traceback" not in done.stderr
    assert "tombstone:" in done.stdout  # the last step (`ask`) answered

    keys = shell.cwd / "keys"
    for secret in keys.glob("*.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    again = shell.run("pnp-vision keys generate server")
    assert again.returncode == 3  # config_error
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    # A key that is not authorized, then a plain-text client: told at once, never a hang.
    assert shell.run("pnp-vision keys generate stranger --no-authorize").returncode == 0
    refused = shell.run("PNP_VISION_CLIENT_KEY=stranger pnp-vision status")
    assert refused.returncode == 2
    assert "[no_worker]" in refused.stderr and "refused this client's CURVE key" in refused.stderr
    plain = shell.run("PNP_VISION_KEYS_DIR= pnp-vision status")
    assert plain.returncode == 2 and "[no_worker]" in plain.stderr, plain.stderr
    worker_log = shell.log("worker")
    assert re.search(r"auth refused peer=\S+ reason=unknown CURVE key", worker_log)
    assert "reason=plain-text peer" in worker_log, worker_log[-3000:]
    assert shell.stop() == [0, 0]  # worker, then capture: both exit cleanly


def test_a_missing_client_key_is_one_clear_line_not_a_hang(shell: Shell) -> None:
    """The README's first two steps only: the worker's `client` key is missing."""
    shell.run(f"export PNP_VISION_KEYS_DIR={shell.cwd}/keys")
    assert shell.run("pnp-vision keys generate server").returncode == 0
    asked = shell.run("PNP_VISION_CLIENT_KEY=line1 pnp-vision status", timeout=30)
    assert asked.returncode == 3  # config_error
    lines = asked.stderr.strip().splitlines()
    assert len(lines) == 1 and "line1.key_secret" in lines[0], asked.stderr
    assert "pnp-vision keys generate line1" in lines[0]
    worker = shell.run("pnp-vision worker", timeout=60)
    assert worker.returncode == 3
    assert "client.key_secret" in worker.stderr and "keys generate client" in worker.stderr
