"""Installable like any Python package (issue 35): the wheel carries the defaults and works from
any folder, and `init` makes a rig folder whose edited template a `reload` picks up.

The wheel is built from a copy of the sources (the checkout gets no build/ folder) and installed
into a new venv outside the checkout. Its dependencies are the locked ones of the venv running
this test, seen through a .pth file, so nothing is downloaded; pnp_vision itself comes only from
the wheel (asserted). Every command runs from an empty folder, as a rig integrator would.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.defaults import SHIPPED

pytestmark = pytest.mark.slow

TEMPLATES = sorted(p.stem for p in (PROJECT_ROOT / "prompts").glob("*.toml"))
WHEEL_LIMIT = 25 * 1024 * 1024
NEW_TEMPLATE = (
    'name = "reel_present"\ndescription = "Rig check: is a reel loaded?"\n'
    'question = "Is a reel loaded in the feeder? Answer YES or NO."\n'
)


@dataclass
class Installed:
    venv: Path
    wheel: Path
    work: Path  # an empty folder outside the checkout

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 240, **env: str):
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or self.work,
            env=self.env(**env),
        )

    def env(self, **more: str) -> dict[str, str]:
        # Nothing of the checkout's: no PYTHONPATH, no PNP_VISION_* settings; no network needed.
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1", **more}


def _sources(into: Path) -> Path:
    """What the build reads: the package, the build files and the shipped folders."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "_shipped")
    into.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, into / name)
    for part in ("pnp_vision", *SHIPPED):
        shutil.copytree(PROJECT_ROOT / part, into / part, ignore=skip)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = _sources(root / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = root.glob("pnp_vision-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # After the install (pip must not see the checkout's editable pnp-vision): the locked deps.
    target = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(target) / "locked_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    work = root / "empty"
    work.mkdir()
    return Installed(venv, wheel, work)


def test_the_wheel_carries_the_defaults_and_nothing_of_the_checkout(installed: Installed) -> None:
    size = installed.wheel.stat().st_size
    assert size < WHEEL_LIMIT, f"wheel {size / 1e6:.1f} MB"
    names = zipfile.ZipFile(installed.wheel).namelist()
    for part in SHIPPED:
        assert any(n.startswith(f"pnp_vision/_shipped/{part}/") for n in names), part
    assert "pnp_vision/_shipped/models/pnp-inspector/model.safetensors" in names
    adapters = "pnp_vision/_shipped/models/pnp-inspector/adapters/"  # its own weights adapters
    assert f"{adapters}nozzle_alignment/weights.safetensors" in names
    assert f"{adapters}feeder_pocket_empty/pnp_adapter.json" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/")) or "__pycache__" in n]
    code = "import pnp_vision, pnp_vision.defaults as d; print(pnp_vision.__file__); print(d.ROOT)"
    done = installed.run("python", "-c", code)
    package, defaults = done.stdout.split()
    assert Path(package).is_relative_to(installed.venv), package
    assert Path(defaults) == Path(package).parent / "_shipped"
    assert not Path(package).is_relative_to(PROJECT_ROOT)


def test_templates_and_demo_work_from_an_empty_folder(installed: Installed) -> None:
    listed = installed.run("pnp-vision", "templates", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(t["name"] for t in json.loads(listed.stdout)) == TEMPLATES
    demo = installed.run("pnp-vision", "demo", "--json")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    rows = [json.loads(line) for line in demo.stdout.splitlines() if line.startswith("{")]
    assert sorted({r["template"] for r in rows}) == TEMPLATES
    assert all(r["error"] is None for r in rows), rows
    learned = [r for r in rows if r["trained"] == "yes"]
    assert learned and all(r["answer"] == r["truth"] for r in learned), learned
    # The same table as the clone's: the same questions, answered as the recording's labels
    # (each run asks on the live frames it meets, so frames, parameters and truths may differ).
    clone = subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=PROJECT_ROOT,
    )
    assert clone.returncode == 0, clone.stdout + clone.stderr
    theirs = [json.loads(line) for line in clone.stdout.splitlines() if line.startswith("{")]
    assert {(r["template"], r["trained"]) for r in rows} == {
        (r["template"], r["trained"]) for r in theirs
    }
    assert all(r["answer"] == r["truth"] for r in theirs if r["trained"] == "yes")


def test_init_then_templates_from_the_rig_folder(installed: Installed) -> None:
    made = installed.run("pnp-vision", "init", "rig")
    assert made.returncode == 0, made.stderr
    rig = installed.work / "rig"
    assert {p.name for p in rig.iterdir()} >= {"config", "cameras", "prompts"}
    listed = installed.run("pnp-vision", "templates", "--json", cwd=rig)
    assert listed.returncode == 0, listed.stderr
    assert sorted(t["name"] for t in json.loads(listed.stdout)) == TEMPLATES
    again = installed.run("pnp-vision", "init", "rig")
    assert again.returncode == 5 and "[folder_not_empty]" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.fixture
def rig_worker(installed: Installed) -> Iterator[tuple[Path, dict[str, str], Path]]:
    from pnp_vision.client import ServiceTimeout, VisionClient

    rig = installed.work / "rig2"
    assert installed.run("pnp-vision", "init", str(rig)).returncode == 0
    endpoints = {
        "PNP_VISION_REQUESTS_ENDPOINT": f"ipc://{installed.work}/requests.sock",
        "PNP_VISION_FRAMES_ENDPOINT": f"ipc://{installed.work}/frames.sock",
    }
    log = installed.work / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(installed.venv / "bin" / "pnp-vision"), "worker"],
            cwd=rig,
            env=installed.env(**endpoints),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        end = time.monotonic() + 120
        with VisionClient(endpoints["PNP_VISION_REQUESTS_ENDPOINT"], timeout=1, retries=0) as c:
            while True:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < end, "worker not ready in 120 s:\n" + log.read_text()
                try:
                    if c.status().ready:
                        break
                except ServiceTimeout:
                    pass  # still starting: each try waits its own 1 s
        yield rig, endpoints, log
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


def test_an_edited_rig_template_is_picked_up_by_reload(
    installed: Installed, rig_worker: tuple[Path, dict[str, str], Path]
) -> None:
    from pnp_vision.client import VisionClient

    rig, endpoints, log = rig_worker
    status = json.loads(
        installed.run("pnp-vision", "status", "--json", cwd=rig, **endpoints).stdout
    )
    shipped_prompts = installed.venv.glob("lib/python*/site-packages/pnp_vision/_shipped/prompts")
    assert status["folders"] == {
        "home": str(rig),
        "found_by": "current directory",
        "config": str(rig / "config"),
        "prompts": [str(next(shipped_prompts)), str(rig / "prompts")],
    }
    assert f"folders read home={rig} found_by=current directory" in log.read_text()

    tombstone = rig / "prompts" / "tombstone.toml"
    tombstone.write_text(tombstone.read_text().replace("standing on one end", "on its end"))
    (rig / "prompts" / "reel_present.toml").write_text(NEW_TEMPLATE)
    reloaded = installed.run("pnp-vision", "reload", cwd=rig, **endpoints)
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "reel_present" in reloaded.stdout
    with VisionClient(endpoints["PNP_VISION_REQUESTS_ENDPOINT"], timeout=30, retries=0) as c:
        templates = {t["name"]: t for t in c.templates()}
        assert "on its end" in templates["tombstone"]["question"]
        assert sorted(templates) == sorted([*TEMPLATES, "reel_present"])
        answer = c.inspect(
            "demo", "reel_present", image=sorted((rig / "recordings" / "demo").glob("*.png"))[0]
        )
    assert answer.result.question == "Is a reel loaded in the feeder? Answer YES or NO."
