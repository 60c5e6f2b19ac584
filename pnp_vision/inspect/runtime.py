"""The one runtime setup: MLX backend, device kind and the fast-path switches, from `Settings`.

`setup_runtime(settings)` runs once per process, before anything imports mlx (entry points and
the model thread call it; later calls return the same `Runtime`). Nothing below it reads the
environment: the switches are `Settings` fields (`PNP_VISION_BLAS`, `_KEEP_MEMORY`,
`_FASTMATH`, `_COMPILE`, `_VISION_ATTENTION` through its env prefix) resolved here per device.

Backend: `mlx[cpu]` on Linux links the reference BLAS (~4 GFLOP/s on 2 cores). Loading an
OpenBLAS with RTLD_GLOBAL *before* `mlx.core` is imported makes MLX's `sgemm` calls resolve to
it (~150-200 GFLOP/s here). opencv-python, a dependency anyway, ships one; Debian's libopenblas
also works.

It also keeps freed memory in the process (glibc `mallopt`): by default every buffer over 32 MB,
and any heap top over the trim threshold, goes back to the kernel when freed, so the next pass
page-faults all of it in again. Measured here: an elementwise op on a 64 MB array ran at 3.8 ns
an element that way and 0.7 ns with the memory kept; a resident worker repeats the same shapes.
On a 3B-shaped inspection (2 LM layers, 8 vision blocks, one BLAS thread) it removed all ~250,000
page faults (1 GB) of each pass and 18% of its CPU time (8.9 -> 7.4 s), for ~6% more peak RSS
(bench/cpu/ab_memory.py, bench/cpu/NOTES.md). `keep_memory = false` turns it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pnp_vision.config import Settings

log = logging.getLogger(__name__)

_SYSTEM_OPENBLAS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4  # glibc malloc.h


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
    try:
        libc = ctypes.CDLL("libc.so.6")
        settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 64 << 20))
        return all(libc.mallopt(option, value) == 1 for option, value in settings)
    except (OSError, AttributeError):  # not glibc
        return False


_BLAS: ctypes.CDLL | None = None


def _find_openblas(override: str | None) -> str | None:
    if override is not None:
        return override or None  # blas = "" turns the preload off
    spec = importlib.util.find_spec("cv2")  # locate opencv's bundled libs without importing it
    if spec is not None and spec.origin:
        libs = Path(spec.origin).resolve().parents[1] / "opencv_python.libs"
        found = sorted(glob.glob(str(libs / "libopenblas*.so*")))
        if found:
            return found[0]
    return next((p for p in _SYSTEM_OPENBLAS if Path(p).exists()), None)


def _configure_backend(blas: str | None, keep_memory: bool) -> BackendInfo:
    """Preload OpenBLAS for MLX's CPU backend on Linux and keep freed memory in the process."""
    global _BLAS
    if not sys.platform.startswith("linux"):
        info = BackendInfo(None, "not Linux: MLX uses Accelerate/Metal")
    elif "mlx.core" in sys.modules:
        info = BackendInfo(None, "mlx was imported before setup_runtime(): BLAS not preloaded")
        log.warning("backend %s", info.note)
    else:
        path = _find_openblas(blas)
        if path is None:
            info = BackendInfo(None, "no OpenBLAS found: MLX CPU matmuls use the reference BLAS")
            log.warning("backend %s", info.note)
        else:
            _BLAS = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            info = BackendInfo(path, "OpenBLAS preloaded for MLX CPU matmuls")
    if sys.platform.startswith("linux") and keep_memory:
        info = replace(info, memory_kept=_keep_freed_memory())
    log.info("backend: %s", info.summary())
    return info


def device_kind() -> str:
    """'cpu' or 'gpu' (Metal or CUDA): what MLX computes on by default in this process."""
    import mlx.core as mx

    return "gpu" if mx.default_device().type == mx.DeviceType.gpu else "cpu"


@dataclass(frozen=True)
class Runtime:
    """What this process runs on and which fast paths it takes, decided once."""

    device: str  # "cpu" | "gpu"
    backend: BackendInfo
    fastmath: bool  # mlx-vlm's SwiGLU/attention (and mllama's MLPs) through `fastmath`
    compile: bool  # whole forward passes through mx.compile
    vision_attention: str | None  # Qwen2.5-VL vision attention; None: the model's default
    merge_adapters: bool = False  # a LoRA adapter merged into its own weight copy (fused pass)

    def summary(self) -> str:
        return (
            f"device={self.device} fastmath={'on' if self.fastmath else 'off'} "
            f"compile={'on' if self.compile else 'off'}; {self.backend.summary()}"
        )


_RUNTIME: Runtime | None = None


def setup_runtime(settings: Settings | None = None) -> Runtime:
    """Set up the backend and decide the switches from `settings` (default: `load_settings()`).
    Once per process: later calls return the first `Runtime`. Call before importing mlx."""
    global _RUNTIME
    if _RUNTIME is not None:
        return _RUNTIME
    if settings is None:
        from pnp_vision.config import load_settings

        settings = load_settings()
    backend = _configure_backend(settings.blas, settings.keep_memory)
    _RUNTIME = decide(settings, device_kind(), backend)
    if settings.memory_limit_gb is not None:
        import mlx.core as mx

        limit = int(settings.memory_limit_gb * 2**30)
        mx.set_memory_limit(limit)
        mx.set_cache_limit(limit)
    log.info("runtime: %s", _RUNTIME.summary())
    return _RUNTIME


def decide(settings: Settings, device: str, backend: BackendInfo) -> Runtime:
    """The switches for `device`: fast exp on the CPU (MLX's exp is unvectorised there, a
    hardware instruction on GPUs); whole-pass compile on GPUs (it removes launch and Python
    overhead; on the CPU the arithmetic dominates and the first call pays a C++ compile).
    A setting that is set wins."""
    fastmath = device == "cpu" if settings.fastmath is None else settings.fastmath
    compile_ = device == "gpu" if settings.compile is None else settings.compile
    merge = device == "gpu" if settings.merge_adapters is None else settings.merge_adapters
    return Runtime(device, backend, fastmath, compile_, settings.vision_attention, merge)


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
