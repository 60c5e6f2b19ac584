"""The lookup: which rig folder, settings, templates, cameras and model a command reads.

A rig folder (`pnp-vision init DIR` writes one) holds a site's own files: `config/*.toml`,
`cameras/`, `prompts/`, `models/`. It is found, in order, by `--home DIR` (which sets
`PNP_VISION_HOME`, so the processes a command starts find it too) or `PNP_VISION_HOME`, else
the current directory when it holds `config/`; without one, the package's defaults are used
(`pnp_vision.defaults`). `PNP_VISION_CONFIG_DIR` names the settings folder before all of them.
Templates and cameras of the rig folder add to, or replace by name, the shipped ones; a model is
found by path, else by name under the rig folder's `models/`, else the package's `models/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pnp_vision.defaults import shipped
from pnp_vision.errors import FolderNotFound, ModelNotFound

HOME_VARIABLE = "PNP_VISION_HOME"
CONFIG_VARIABLE = "PNP_VISION_CONFIG_DIR"
DEFAULT_MODEL = "pnp-inspector"


@dataclass(frozen=True)
class Home:
    """The rig folder in use (None: the package's defaults only) and how it was found."""

    folder: Path | None
    found_by: str  # "PNP_VISION_HOME" | "current directory" | "none"


def find_home(env: Mapping[str, str], cwd: Path) -> Home:
    value = env.get(HOME_VARIABLE, "")
    if value:
        folder = cwd / Path(value).expanduser()
        if not folder.is_dir():
            raise FolderNotFound(
                f"rig folder {value} (--home / {HOME_VARIABLE}) does not exist;"
                " `pnp-vision init DIR` writes one"
            )
        return Home(Path(os.path.normpath(folder)), HOME_VARIABLE)
    if (cwd / "config").is_dir():
        return Home(cwd, "current directory")
    return Home(None, "none")


def config_folder(
    env: Mapping[str, str], given: Path | None, home: Home, cwd: Path
) -> tuple[Path | None, Path]:
    """The folder whose `*.toml` are read, and the folder their relative paths start from
    (the rig folder for its own files, else the current directory)."""
    value = env.get(CONFIG_VARIABLE, "")
    if value or given is not None:
        folder = cwd / Path(value or str(given)).expanduser()
        if not folder.is_dir():
            what = f"{CONFIG_VARIABLE}={value}" if value else f"settings folder {given}"
            raise FolderNotFound(f"{what}: no such folder")
        return folder, cwd
    if home.folder is not None and (home.folder / "config").is_dir():
        return home.folder / "config", home.folder
    folder = shipped("config")
    return (folder if folder.is_dir() else None), cwd


def layered(kind: str, home: Home) -> list[Path]:
    """`prompts` or `cameras`: the package's folder, then the rig folder's (it wins by name)."""
    folders = [shipped(kind)]
    if home.folder is not None:
        own = home.folder / kind
        if own.is_dir() and own.resolve() != folders[0].resolve():
            folders.append(own)
    return folders


def model_candidates(value: Path | None, base: Path, home: Home) -> list[Path]:
    """Where `model_dir` may be, in order: the path itself (from `base`), then a folder of that
    name under the rig folder's `models/`, then under the package's. None: the default model."""
    if value is not None and Path(value).expanduser().is_absolute():
        return [Path(value).expanduser()]
    name = Path(value).expanduser() if value is not None else Path(DEFAULT_MODEL)
    found = [base / name] if value is not None else []
    if home.folder is not None:
        found.append(home.folder / "models" / name)
    found.append(shipped("models") / name)
    return list(dict.fromkeys(found))


def first_folder(candidates: list[Path]) -> Path:
    """The first candidate that is a folder, else the first (its loader reports it missing)."""
    return next((path for path in candidates if path.is_dir()), candidates[0])


def model_not_found(candidates: list[Path]) -> ModelNotFound:
    places = ", ".join(str(path) for path in candidates)
    return ModelNotFound(
        f"no model folder (config.json) at {places}: set model_dir (PNP_VISION_MODEL_DIR, "
        "--model) to a local mlx-vlm model folder or the name of one under models/"
    )


def rebase(value: object, base: Path) -> object:
    """A relative path written in a rig folder's settings file, taken from the rig folder."""
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base / value)
    if isinstance(value, list):
        return [rebase(item, base) for item in value]
    return value
