"""The drift canary: the suite on the newest versions that pyproject.toml allows.

`make test` proves the lock; this proves the ranges that `pip install -e .` users get, before a
release breaks them (the OpenCV 5 font change was found by a user). It builds a throwaway venv
with uv at `--resolution highest`, prints every version that differs from the lock, and runs
pytest there. Exit status is pytest's, so a scheduled job can alert on it.

    python -m pnp_vision.devtools.latest --lock requirements.lock [--fast] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;([^\\]*))?")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """`name==version` lines of a lock or `pip freeze` output that apply to this machine.

    A universal lock pins one package several times under exclusive environment markers
    (numpy for Python < 3.12 and >= 3.12): only the line whose marker holds here counts.
    """
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _PIN.match(line.strip())
        if m and (not m.group(3) or Marker(m.group(3).strip()).evaluate()):
            pins[_normalise(m.group(1))] = m.group(2)
    return pins


def drift(locked: dict[str, str], latest: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, locked, latest) for every package whose version differs; '-' where absent."""
    names = sorted((set(locked) | set(latest)) - {"pnp-vision"})  # ourselves: not a dependency
    rows = [(n, locked.get(n, "-"), latest.get(n, "-")) for n in names]
    return [r for r in rows if r[1] != r[2]]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, text=True, **kw)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--fast", action="store_true", help="skip tests marked slow")
    parser.add_argument("--keep", type=Path, help="build the venv here and keep it")
    args = parser.parse_args(argv)

    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    work = args.keep or Path(tempfile.mkdtemp(prefix="pnp-latest-"))
    venv = work / "venv"
    python = venv / "bin" / "python"
    try:
        if _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)]).returncode:
            return 2
        install = [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--resolution",
            "highest",
            "-e",
            f"{ROOT}[dev]",
        ]
        if _run(install).returncode:
            print("latest: the newest allowed versions do not install together", file=sys.stderr)
            return 2
        frozen = _run([uv, "pip", "freeze", "--python", str(python)], capture_output=True)
        rows = drift(read_pins(args.lock.read_text()), read_pins(frozen.stdout))
        print(f"\n{len(rows)} packages differ from {args.lock.name}:")
        print(f"{'package':<28}{'locked':<16}latest")
        for name, old, new in rows:
            print(f"{name:<28}{old:<16}{new}")
        print(flush=True)
        pytest = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        if args.fast:
            pytest += ["-m", "not slow"]
        code = _run(pytest, cwd=ROOT).returncode
        print(f"latest: pytest exit status {code} on the newest allowed versions")
        return code
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
