"""Qwen2-VL / Qwen2.5-VL pixel preparation, equal to mlx-vlm's image processor and faster.

mlx-vlm's Qwen2.5-VL processor builds a numpy `Qwen3VLImageProcessor`: it round-trips the image
through CHW arrays, converts every pixel to float32, rescales and normalizes the whole float
image, duplicates it along the temporal axis and transposes the float patches (~10 ms for one
448x448 frame on a quiet host core, ~18 ms on a busy one). Here the same numbers come from
byte work: the size rule is the processor's `smart_resize`, the resize the same PIL bicubic
resize of the same RGB pixels, the patches are cut and ordered while still bytes (merge-block
order), and one per-channel 256-entry float32 table maps a byte to
`(byte * rescale_factor - mean) / std`, computed with the processor's own float32 operations,
so every value is bit-equal. The lookup writes the temporal copies directly; the engine does it
on the device (`mx.take`), so only the bytes cross to the accelerator, a quarter of the floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


def smart_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """Qwen2-VL's image size rule: multiples of `factor` (patch * merge), aspect kept, area in
    [min_pixels, max_pixels] (the processor's `smart_resize`, line for line)."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            "absolute aspect ratio must be smaller than 200, got "
            f"{max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass
class QwenPixels:
    """The processor's settings; `__call__` gives its `pixel_values` and `image_grid_thw`."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 14 * 14 * 4 * 1280
    do_rescale: bool = True
    rescale_factor: float = 1 / 255.0
    do_normalize: bool = True
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        # Exactly the processor's float32 arithmetic, on the 256 values a byte can take.
        table = np.arange(256, dtype=np.uint8)[None, :].repeat(3, axis=0).astype(np.float32)
        if self.do_rescale:
            table = table * self.rescale_factor
        if self.do_normalize:
            mean = np.array(self.image_mean, dtype=np.float32)[:, None]
            std = np.array(self.image_std, dtype=np.float32)[:, None]
            table = (table - mean) / std
        self._table = np.ascontiguousarray(table, dtype=np.float32).ravel()  # (3 * 256,)
        self._offsets = (np.arange(3, dtype=np.uint16) * 256)[:, None, None]

    @classmethod
    def from_processor(cls, proc: Any) -> QwenPixels | None:
        """Settings of mlx-vlm's numpy Qwen2/3-VL image processor; None for any other processor
        (its resampling is not known to be PIL's bicubic on uint8 pixels)."""
        kind = type(proc)
        if kind.__name__ != "Qwen3VLImageProcessor" or not kind.__module__.startswith("mlx_vlm"):
            return None
        try:
            mean = tuple(float(v) for v in proc.image_mean)
            std = tuple(float(v) for v in proc.image_std)
            if len(mean) != 3 or len(std) != 3:
                return None
            return cls(
                patch_size=int(proc.patch_size),
                merge_size=int(proc.merge_size),
                temporal_patch_size=int(proc.temporal_patch_size),
                min_pixels=int(proc.min_pixels),
                max_pixels=int(proc.max_pixels),
                do_rescale=bool(proc.do_rescale),
                rescale_factor=proc.rescale_factor,
                do_normalize=bool(proc.do_normalize),
                image_mean=mean,
                image_std=std,
            )
        except (AttributeError, TypeError, ValueError):
            return None

    def size(
        self, height: int, width: int, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> tuple[int, int]:
        """(height, width) the image is resized to."""
        return smart_resize(
            height,
            width,
            self.patch_size * self.merge_size,
            self.min_pixels if min_pixels is None else min_pixels,
            self.max_pixels if max_pixels is None else max_pixels,
        )

    @property
    def table(self) -> np.ndarray:
        """(3 * 256,) float32: entry `c * 256 + byte` is that byte's value in channel c."""
        return self._table

    def _sized(
        self, image: Image.Image | np.ndarray, min_pixels: int | None, max_pixels: int | None
    ) -> tuple[np.ndarray, bool]:
        """The image at the processor's size as (H, W, 3) uint8, and whether it is BGR. A BGR
        array (`imageprep.prepare(keep_array=True)`) already at that size is used as it is;
        anything that needs a resize goes through PIL's bicubic, as the processor does."""
        from PIL import Image

        from pnp_vision.inspect import imageprep

        if isinstance(image, np.ndarray):
            size = self.size(image.shape[0], image.shape[1], min_pixels, max_pixels)
            if size == image.shape[:2]:
                return image, True
            image = imageprep.to_pil(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        height, width = self.size(image.height, image.width, min_pixels, max_pixels)
        if (height, width) != (image.height, image.width):
            image = image.resize((width, height), resample=Image.Resampling.BICUBIC)
        return np.asarray(image), False

    def _blocks(self, pixels: Any, bgr: bool) -> tuple[Any, np.ndarray]:
        """(H, W, 3) -> (block row, block column, row in block, column in block, RGB, patch
        row, patch column), a view, numpy or MLX alike; and `image_grid_thw` (1, 3) int64."""
        ps, ms = self.patch_size, self.merge_size
        gh, gw = pixels.shape[0] // ps, pixels.shape[1] // ps
        blocks = pixels.reshape(gh // ms, ms, ps, gw // ms, ms, ps, 3)
        blocks = blocks.transpose(0, 3, 1, 4, 6, 2, 5)
        grid = np.array([[1, gh, gw]], dtype=np.int64)
        return (blocks[:, :, :, :, ::-1] if bgr else blocks), grid

    def indices(
        self,
        image: Image.Image | np.ndarray,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The image resized and cut into patches, still bytes: (grid_h * grid_w, 3, 1,
        patch * patch) uint16 positions in `table`, and `image_grid_thw` (1, 3) int64. Rows in
        merge-block order (block row, block column, row in block, column in block), columns
        (channel, temporal copy, patch row, patch column): the processor's layout. `image`: a
        PIL image, or a BGR uint8 array."""
        blocks, grid = self._blocks(*self._sized(image, min_pixels, max_pixels))
        index = np.empty(blocks.shape, dtype=np.uint16)
        np.add(blocks, self._offsets, out=index, dtype=np.uint16)  # one pass: gather + offset
        return index.reshape(-1, 3, 1, self.patch_size**2), grid

    def expand(self, index: np.ndarray) -> np.ndarray:
        """`pixel_values` (rows, 3 * temporal * patch * patch) float32 from `indices`."""
        n, _, _, area = index.shape
        out = np.empty((n, 3, self.temporal_patch_size, area), dtype=np.float32)
        np.take(self._table, np.broadcast_to(index, out.shape), out=out, mode="clip")
        return out.reshape(n, -1)

    def values_mx(
        self,
        image: Image.Image | np.ndarray,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> tuple[Any, np.ndarray]:
        """`__call__` with the work after the resize done in MLX on the default device: only
        the image's bytes are copied in (a quarter of the floats' transfer; a BGR frame as it
        is), patch cutting, channel order and table lookup run there, lazily, as part of the
        graph that consumes them. On the CPU numpy's `expand` is faster than MLX's gather."""
        import mlx.core as mx

        pixels, bgr = self._sized(image, min_pixels, max_pixels)
        blocks, grid = self._blocks(mx.array(np.ascontiguousarray(pixels)), bgr)
        index = blocks.astype(mx.int32) + mx.array(self._offsets.astype(np.int32))
        area = self.patch_size**2
        values = mx.take(mx.array(self._table), index).reshape(-1, 3, 1, area)
        values = mx.broadcast_to(values, (values.shape[0], 3, self.temporal_patch_size, area))
        return values.reshape(values.shape[0], -1), grid

    def __call__(
        self, image: Image.Image, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`pixel_values` (grid_h * grid_w, 3 * temporal * patch * patch) float32 and
        `image_grid_thw` (1, 3) int64 of one image: the processor's output."""
        index, grid = self.indices(image, min_pixels, max_pixels)
        return self.expand(index), grid


__all__ = ["QwenPixels", "smart_resize"]
