"""MLX backend setup: a fast BLAS under `mlx[cpu]` on Linux, and the compute dtype per device.

`mlx[cpu]` on Linux links the reference BLAS (~4 GFLOP/s on 2 cores). Loading an OpenBLAS with
RTLD_GLOBAL *before* `mlx.core` is imported makes MLX's `sgemm` calls resolve to it (~150-200
GFLOP/s here). opencv-python, a dependency anyway, ships one; Debian's libopenblas also works.
This must run before anything imports mlx, so entry points call `configure_backend()` first.

It also keeps freed memory in the process (glibc `mallopt`): by default every buffer over 32 MB,
and any heap top over the trim threshold, goes back to the kernel when freed, so the next pass
page-faults all of it in again. Measured here: an elementwise op on a 64 MB array ran at 3.8 ns
an element that way and 0.7 ns with the memory kept; a resident worker repeats the same shapes.
On a 3B-shaped inspection (2 LM layers, 8 vision blocks, one BLAS thread) it removed all ~250,000
page faults (1 GB) of each pass and 18% of its CPU time (8.9 -> 7.4 s), for ~6% more peak RSS
(bench/cpu/ab_memory.py, bench/cpu/NOTES.md). PNP_VISION_KEEP_MEMORY=0 turns it off.
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
from dataclasses import dataclass, replace
from pathlib import Path

log = logging.getLogger(__name__)

_SYSTEM_OPENBLAS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4  # glibc malloc.h
MALLOC_ENV = "PNP_VISION_KEEP_MEMORY"  # "0": leave glibc's malloc settings alone


@dataclass(frozen=True)
class BackendInfo:
    blas: str | None  # path of the preloaded BLAS, None where MLX's own is used
    note: str
    memory_kept: bool = False  # freed buffers stay in the process (see the module docstring)

    def summary(self) -> str:
        """One line for the load log: BLAS, and whether freed memory is kept."""
        blas = f"BLAS {Path(self.blas).name}" if self.blas else self.note
        memory = "freed memory kept (glibc mallopt)" if self.memory_kept else "glibc malloc as is"
        return f"{blas}; {memory}"


def _keep_freed_memory() -> bool:
    """Heap-only allocations that are never trimmed; False where libc has no mallopt."""
    if os.environ.get(MALLOC_ENV) == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 64 << 20))
        return all(libc.mallopt(option, value) == 1 for option, value in settings)
    except (OSError, AttributeError):  # not glibc
        return False


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
    """Preload OpenBLAS for MLX's CPU backend on Linux and keep freed memory in the process.
    Idempotent; call before importing mlx."""
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
    if sys.platform.startswith("linux"):
        _INFO = replace(_INFO, memory_kept=_keep_freed_memory())
    log.info("backend: %s", _INFO.summary())
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
