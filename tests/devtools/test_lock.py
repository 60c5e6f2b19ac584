"""The lock and pyproject.toml cannot drift apart, and the canary reads a universal lock right."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from pnp_vision.devtools.latest import drift, read_pins

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in reqs]


def test_every_dependency_is_locked_inside_its_range() -> None:
    pins = read_pins((ROOT / "requirements.lock").read_text())
    checked = 0
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": "dev"}):
            continue  # another platform's line (mlx on macOS, atheris off x86_64 Linux)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {req}"
        )
        checked += 1
    assert checked >= 15


def test_every_lock_line_carries_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    blocks = [b for b in text.split("\n") if b and not b.startswith((" ", "#"))]
    assert blocks, "empty lock"
    for line in blocks:
        assert line.rstrip().endswith("\\"), f"no --hash after {line!r}"


def test_a_universal_lock_keeps_only_the_line_for_this_machine() -> None:
    lock = (
        "numpy==1.0.0 ; python_full_version < '3.0' \\\n    --hash=sha256:aa\n"
        "numpy==2.4.6 ; python_full_version >= '3.0' \\\n    --hash=sha256:bb\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        "transformers[chat-template]==5.23.0 \\\n"
    )
    pins = read_pins(lock)
    assert pins == {"numpy": "2.4.6", "transformers": "5.23.0"}
    frozen = read_pins("numpy==2.5.0\ntransformers==5.23.0\npnp-vision==0.1.0\nscipy==1.0\n")
    assert drift(pins, frozen) == [("numpy", "2.4.6", "2.5.0"), ("scipy", "-", "1.0")]
