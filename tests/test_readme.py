"""The README as a new user reads it: its examples name cameras that exist, and its Layout is the
package as it is (both drifted once: cameras no file defined, a folder long gone)."""

from __future__ import annotations

import re
import tomllib

from pnp_vision.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
PACKAGE = PROJECT_ROOT / "pnp_vision"


def _defined_cameras() -> set[str]:
    names = set()
    for path in (PROJECT_ROOT / "cameras").rglob("*.toml"):
        names |= {camera["name"] for camera in tomllib.loads(path.read_text()).get("camera", [])}
    return names


def test_every_camera_an_example_uses_is_defined() -> None:
    code = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.DOTALL))
    used = set(re.findall(r"pnp-vision (?:ask|record --camera) ([A-Za-z0-9_.-]+)", code))
    used |= set(re.findall(r'\.inspect\("([A-Za-z0-9_.-]+)"', code))
    assert {"nozzle", "demo"} <= used  # the patterns still find the examples
    assert used <= _defined_cameras(), used - _defined_cameras()


def test_the_layout_names_every_package_and_top_level_module() -> None:
    section = README[README.index("## Layout") :]
    layout = section[section.index("```") : section.index("```", section.index("```") + 3)]
    packages = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    missing = sorted(name for name in packages | modules if name not in layout)
    assert not missing, f"README Layout leaves out {missing}"
    folders = {p.name + "/" for p in PACKAGE.rglob("*") if p.is_dir()}
    folders |= {p.name + "/" for p in PROJECT_ROOT.iterdir() if p.is_dir()}  # config/, ...
    named = set(re.findall(r"\b([a-z_0-9]+/)", layout.split("prompts/")[0]))
    assert not named - folders, f"README Layout names folders that do not exist: {named - folders}"
