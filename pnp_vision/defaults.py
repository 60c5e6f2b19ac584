"""The package's defaults: the shipped templates, camera definitions, settings, the bundled model
and the demo recording, wherever this copy of pnp-vision finds them.

In a clone (an editable install) they are the repository's top-level folders, so an edit to
`prompts/` takes effect at once; in an installed wheel they are the copies the build put in
`pnp_vision/_shipped/` (setup.py copies exactly `SHIPPED`). Only paths are computed here: nothing
is read at import.
"""

from __future__ import annotations

from pathlib import Path

# The folders the wheel carries, relative to the repository root (and to `_shipped/`).
SHIPPED = ("prompts", "cameras", "config", "models/pnp-inspector", "recordings/demo")
BUNDLE = "_shipped"  # inside the package, in a wheel

_PACKAGE = Path(__file__).resolve().parent
_CLONE = _PACKAGE.parent


def _root() -> Path:
    """The clone's root when this package sits in a source tree, else the wheel's copies."""
    if (_CLONE / "pyproject.toml").is_file() and (_CLONE / "prompts").is_dir():
        return _CLONE
    return _PACKAGE / BUNDLE


ROOT = _root()


def shipped(*parts: str) -> Path:
    """A path under the package's defaults: `shipped("models", "pnp-inspector")`."""
    return ROOT.joinpath(*parts)
