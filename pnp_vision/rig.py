"""`pnp-vision init DIR`: a rig folder of the user's own, to edit (the lookup: `pnp_vision.lookup`).

It holds what a site changes and nothing it does not: `config/service.toml` (every setting,
commented out at its default, generated from the settings schema so it never drifts),
`cameras/` (the demo camera and its recording, and commented USB and network camera examples)
and `prompts/` (the shipped templates). The code, the bundled model and the defaults stay in the
installed package; a template or camera here replaces the shipped one of the same name.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any

from pnp_vision.errors import FolderNotEmpty

# What the rig folder's own files are copied from, under the package's defaults.
_COPIED = ("prompts", "cameras", "recordings/demo")
# Settings whose default depends on the lookup: shown as the value to write, and what unset means.
_LOOKED_UP = {
    "model_dir": '"pnp-inspector"',
    "prompts_dir": '"prompts"',
    "cameras_dir": '"cameras"',
}
# Unset by default: an example value to write.
_EXAMPLES = {"keys_dir": '"keys"', "outcomes_dir": '"recordings/outcomes"'}
_HEADER = """\
# pnp-vision settings of this rig folder. Every setting is shown commented out at its default:
# uncomment a line to change it. Any key can also be set by an environment variable
# PNP_VISION_<KEY in upper case> (e.g. PNP_VISION_QUEUE_SIZE=16), which wins over this file.
#
# This folder is read when it is the current directory (it holds config/), or with
# `pnp-vision --home DIR` / PNP_VISION_HOME=DIR; PNP_VISION_CONFIG_DIR names another settings
# folder. Templates in prompts/ and cameras in cameras/ add to the shipped ones, or replace one of
# the same name. A model is found by path, or by name under models/ here, else the package's.
# Relative paths in this file are taken from this rig folder.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a rig folder to edit: config/, cameras/, prompts/",
        description="Write a starting rig folder: config/service.toml (every setting, commented),"
        " cameras/ (the demo camera and its recording, USB and network camera examples),"
        " prompts/ (the shipped templates). Refuses a folder that holds anything.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")
    p.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    folder = write_rig(args.dir)
    print(f"wrote the rig folder {folder}: config/service.toml, cameras/, prompts/")
    print(f"  next: cd {args.dir} && pnp-vision capture & pnp-vision worker &")
    print("  (or from anywhere: pnp-vision --home DIR ...; edit prompts/ then `pnp-vision reload`)")
    return 0


def write_rig(folder: Path) -> Path:
    """Write a rig folder at `folder` (new, or empty); FolderNotEmpty if it holds anything."""
    from pnp_vision.defaults import shipped

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderNotEmpty(f"{folder} is a file: init writes a rig folder in a new folder")
    held = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise FolderNotEmpty(
            f"{folder} is not empty (holds {shown}): init never writes over a rig folder;"
            " give a new folder"
        )
    for part in _COPIED:
        shutil.copytree(
            shipped(part), folder / part, ignore=shutil.ignore_patterns("__pycache__", ".*")
        )
    (folder / "config").mkdir()
    (folder / "config" / "service.toml").write_text(service_toml())
    return folder


def service_toml() -> str:
    """Every setting with its description, commented out at its default (tables last: TOML
    puts every key after a table header into that table)."""
    from pnp_vision.config import Settings

    lines = [_HEADER.rstrip("\n")]
    tables_last = sorted(Settings.model_fields.items(), key=lambda i: i[1].default_factory is dict)
    for name, field in tables_last:
        lines.append("")
        description = field.description or ""
        lines += textwrap.wrap(description, 98, initial_indent="# ", subsequent_indent="# ")
        default = field.get_default(call_default_factory=True)
        if isinstance(default, dict):
            lines += [f"# [{name}]", '# name = "folder"']
        elif name in _LOOKED_UP:
            lines.append(f"# {name} = {_LOOKED_UP[name]}")
        elif default is None:
            lines.append(f"# {name} = {_EXAMPLES.get(name, '...')}    # unset by default")
        else:
            lines.append(f"# {name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Enum):
        value = value.value
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's
