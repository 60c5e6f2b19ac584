"""The build hook that puts the package's defaults inside the wheel (all else is pyproject.toml).

The repository keeps its top-level `prompts/`, `cameras/`, `config/`, `models/pnp-inspector/` and
`recordings/demo/`; a wheel carries copies in `pnp_vision/_shipped/`, where an installed
`pnp_vision.defaults` finds them. An editable install copies nothing: it reads the top-level
folders, so an edit there takes effect at once.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DEFAULTS = runpy.run_path(str(HERE / "pnp_vision" / "defaults.py"), run_name="pnp_vision_defaults")


class BuildWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        bundle = Path(self.build_lib) / "pnp_vision" / DEFAULTS["BUNDLE"]
        for part in DEFAULTS["SHIPPED"]:
            shutil.rmtree(bundle / part, ignore_errors=True)
            shutil.copytree(
                HERE / part, bundle / part, ignore=shutil.ignore_patterns("__pycache__", ".*")
            )


setup(cmdclass={"build_py": BuildWithDefaults})
