"""Put a loaded mlx-vlm model into the dtype that is fast on this device, and say what it costs.

Measured on this project's Linux CPU (2 cores, OpenBLAS preloaded): fp32 matmuls run at
~150-200 GFLOP/s, bf16 at ~6 and 4-bit quantized at ~3, because only fp32 reaches the BLAS. So
on the CPU the fast dtype is fp32 and a quantized checkpoint is dequantized at load (4-8x the
memory of 4-bit weights, reported). On a GPU bf16 and the checkpoint's quantization are fast and
small, so "auto" keeps the checkpoint as it is. `Settings.compute_dtype` overrides the choice.

`tune_model` only picks and applies the dtype; the fast paths are `models/patching.py`'s job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from pnp_vision.inspect.runtime import device_kind

log = logging.getLogger(__name__)

DTYPES: dict[str, mx.Dtype] = {
    "float32": mx.float32,
    "bfloat16": mx.bfloat16,
    "float16": mx.float16,
}
CHOICES = ("auto", *DTYPES)


@dataclass(frozen=True)
class TuningReport:
    """What `tune_model` did, for the load log and `Inspector.info()`."""

    device: str
    requested: str
    compute_dtype: str  # dtype of the floating-point weights after tuning ("mixed" if several)
    checkpoint_dtype: str
    dequantized_layers: int
    quantized_layers_kept: int
    weight_bytes_before: int
    weight_bytes_after: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        gib = 1024**3
        return (
            f"device={self.device} compute_dtype={self.compute_dtype} "
            f"(requested {self.requested}, checkpoint {self.checkpoint_dtype}); "
            f"weights {self.weight_bytes_before / gib:.2f} -> "
            f"{self.weight_bytes_after / gib:.2f} GiB; "
            f"dequantized {self.dequantized_layers} layers, kept {self.quantized_layers_kept} "
            "quantized" + ("; " + "; ".join(self.notes) if self.notes else "")
        )


def resolve_compute_dtype(requested: str, device: str) -> mx.Dtype | None:
    """The dtype to compute in, or None for "keep the checkpoint's" (auto on a GPU)."""
    if requested not in CHOICES:
        raise ValueError(f"compute_dtype {requested!r} is not one of {', '.join(CHOICES)}")
    if requested == "auto":
        return mx.float32 if device == "cpu" else None
    return DTYPES[requested]


def device_memory() -> int | None:
    """Bytes of memory on the default device, where MLX reports it."""
    info = mx.device_info()
    for key in ("memory_size", "total_memory", "max_recommended_working_set_size"):
        value = info.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _expanded_bytes(model: nn.Module, itemsize: int) -> int:
    """Weight bytes once every quantized layer is dequantized to `itemsize`-byte floats."""
    total = weight_bytes(model)
    for _, m in model.named_modules():
        if _is_quantized(m):
            packed = (
                m.weight.nbytes + m.scales.nbytes + (m["biases"].nbytes if "biases" in m else 0)
            )
            total += m.weight.size * (32 // m.bits) * itemsize - packed
    return total


def weight_bytes(model: nn.Module) -> int:
    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def _dtype_name(dtypes: set[mx.Dtype]) -> str:
    names = sorted(str(d).removeprefix("mlx.core.") for d in dtypes)
    return names[0] if len(names) == 1 else "mixed(" + ",".join(names) + ")"


def _float_dtypes(model: nn.Module) -> set[mx.Dtype]:
    return {
        v.dtype for _, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating)
    }


def _is_quantized(module: nn.Module) -> bool:
    return isinstance(module, nn.QuantizedLinear | nn.QuantizedEmbedding)


def _dequantized(module: nn.Module, dtype: mx.Dtype) -> nn.Module:
    weight = mx.dequantize(
        module.weight,
        module.scales,
        module.get("biases"),
        group_size=module.group_size,
        bits=module.bits,
        mode=getattr(module, "mode", "affine"),
    ).astype(dtype)
    if isinstance(module, nn.QuantizedEmbedding):
        plain = nn.Embedding(weight.shape[0], weight.shape[1])
        plain.weight = weight
        return plain
    has_bias = "bias" in module
    plain = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
    plain.weight = weight
    if has_bias:
        plain.bias = module.bias.astype(dtype)
    return plain


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    *parents, last = path.split(".")
    node = root
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = new
    else:
        setattr(node, last, new)


def dequantize_model(model: nn.Module, dtype: mx.Dtype) -> int:
    """Replace every quantized layer by a plain one of `dtype`; returns how many were replaced.
    Layers are evaluated one at a time so peak memory stays near the final size."""
    quantized = [(p, m) for p, m in model.named_modules() if _is_quantized(m)]
    for path, module in quantized:
        plain = _dequantized(module, dtype)
        mx.eval(plain.parameters())
        _replace(model, path, plain)
    return len(quantized)


def cast_floats(model: nn.Module, dtype: mx.Dtype) -> None:
    """Cast floating-point parameters (not quantized weights, scales stay as they are)."""

    def cast(module: nn.Module) -> None:
        if _is_quantized(module):
            return
        for name, value in list(module.items()):
            floating = isinstance(value, mx.array) and mx.issubdtype(value.dtype, mx.floating)
            if floating and value.dtype != dtype:
                setattr(module, name, value.astype(dtype))

    for _, module in model.named_modules():
        cast(module)
    mx.eval(model.parameters())


def tune_model(
    model: nn.Module,
    compute_dtype: str = "auto",
    *,
    device: str | None = None,
    device_bytes: int | None = None,
) -> TuningReport:
    """Bring `model` (as returned by mlx-vlm's `load`) to the compute dtype for this device.
    Call once, on the thread that owns the model, right after loading.
    `device` and `device_bytes` default to what MLX reports (tests pass them to play a GPU)."""
    device = device or device_kind()
    target = resolve_compute_dtype(compute_dtype, device)
    before = weight_bytes(model)
    checkpoint = _dtype_name(_float_dtypes(model))
    notes: list[str] = []
    dequantized = 0
    expand = device == "cpu" or (target is not None and target == mx.float32)
    if target is None and any(_is_quantized(m) for _, m in model.named_modules()):
        # A YES/NO inspection is all prefill (hundreds of tokens at once), where MLX's quantized
        # matmuls on CUDA ran 2.6x slower than bf16 (7B, H200). Expand when it fits easily.
        memory = device_bytes or device_memory()
        expanded = _expanded_bytes(model, 2)
        if memory is not None and expanded <= memory // 2:
            target, expand = mx.bfloat16, True
            notes.append("quantized checkpoint expanded to bfloat16: prefill is faster unpacked")
        else:
            notes.append("quantized checkpoint kept: bfloat16 would not fit in half the memory")
    if target is not None:
        if expand:
            dequantized = dequantize_model(model, target)
            if dequantized and device == "cpu":
                notes.append("quantized weights expanded: no fast quantized matmul on the CPU")
        cast_floats(model, target)
    if device == "cpu" and target is not None and target != mx.float32:
        notes.append(f"{compute_dtype} on the CPU misses the BLAS and runs ~30x slower than fp32")
    kept = sum(1 for _, m in model.named_modules() if _is_quantized(m))
    report = TuningReport(
        device=device,
        requested=compute_dtype,
        compute_dtype=_dtype_name(_float_dtypes(model)),
        checkpoint_dtype=checkpoint,
        dequantized_layers=dequantized,
        quantized_layers_kept=kept,
        weight_bytes_before=before,
        weight_bytes_after=weight_bytes(model),
        notes=tuple(notes),
    )
    log.info("model tuned: %s", report.summary())
    return report


__all__ = [
    "CHOICES",
    "TuningReport",
    "cast_floats",
    "dequantize_model",
    "resolve_compute_dtype",
    "tune_model",
    "weight_bytes",
]
