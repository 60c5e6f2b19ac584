"""MLX backend setup: a fast BLAS under `mlx[cpu]` on Linux, and the compute dtype per device.

`mlx[cpu]` on Linux links the reference BLAS (~4 GFLOP/s on 2 cores). Loading an OpenBLAS with
RTLD_GLOBAL *before* `mlx.core` is imported makes MLX's `sgemm` calls resolve to it (~150-200
GFLOP/s here). opencv-python, a dependency anyway, ships one; Debian's libopenblas also works.
This must run before anything imports mlx, so entry points call `configure_backend()` first.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SYSTEM_OPENBLAS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)


@dataclass(frozen=True)
class BackendInfo:
    blas: str | None  # path of the preloaded BLAS, None where MLX's own is used
    note: str


_INFO: BackendInfo | None = None
_BLAS: ctypes.CDLL | None = None


def _find_openblas() -> str | None:
    override = os.environ.get("PNP_VISION_BLAS")
    if override is not None:
        return override or None  # PNP_VISION_BLAS="" turns the preload off
    spec = importlib.util.find_spec("cv2")  # locate opencv's bundled libs without importing it
    if spec is not None and spec.origin:
        libs = Path(spec.origin).resolve().parents[1] / "opencv_python.libs"
        found = sorted(glob.glob(str(libs / "libopenblas*.so*")))
        if found:
            return found[0]
    return next((p for p in _SYSTEM_OPENBLAS if Path(p).exists()), None)


def configure_backend() -> BackendInfo:
    """Preload OpenBLAS for MLX's CPU backend on Linux. Idempotent; call before importing mlx."""
    global _INFO, _BLAS
    if _INFO is not None:
        return _INFO
    if not sys.platform.startswith("linux"):
        _INFO = BackendInfo(None, "not Linux: MLX uses Accelerate/Metal")
    elif "mlx.core" in sys.modules:
        _INFO = BackendInfo(None, "mlx was imported before configure_backend(): BLAS not preloaded")
        log.warning("backend %s", _INFO.note)
    else:
        path = _find_openblas()
        if path is None:
            _INFO = BackendInfo(None, "no OpenBLAS found: MLX CPU matmuls use the reference BLAS")
            log.warning("backend %s", _INFO.note)
        else:
            _BLAS = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _INFO = BackendInfo(path, "OpenBLAS preloaded for MLX CPU matmuls")
    return _INFO


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the enclosed (evaluated) work with `n` OpenBLAS threads, then restore the count.

    Measured here: 256 tiny GEMMs (64x80x64, one per window and head) took 0.01 s on one
    thread and 0.05-8.8 s on two while the 2 cores were shared: waking the second thread costs
    more than the work. Large GEMMs keep both threads. A no-op without a preloaded OpenBLAS.
    """
    get = getattr(_BLAS, "openblas_get_num_threads", None)
    set_ = getattr(_BLAS, "openblas_set_num_threads", None)
    if get is None or set_ is None:
        yield
        return
    before = int(get())
    set_(n)
    try:
        yield
    finally:
        set_(before)
