"""Qwen2.5-VL: image features replace `<|image_pad|>` tokens; 3-D (mrope) positions.

The language model keeps `_position_ids` / `_rope_deltas` between calls when positions are not
given, so answers would drift between images: positions are always passed explicitly here.
Several questions about one image are answered in one packed forward (`packed_logits`), and
several images' prompts (other requests) in one batched forward (`encode_batch`,
`batched_logits`).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from pnp_vision.inspect.imageprep import to_pil
from pnp_vision.inspect.models.base import Adapter, ImageInputs, PromptCache
from pnp_vision.inspect.models.qwen2_5_vl import language
from pnp_vision.inspect.models.qwen2_5_vl.pixels import QwenPixels
from pnp_vision.inspect.runtime import Runtime


class QwenVLAdapter(Adapter):
    packs_questions = True
    batches = True

    def __init__(self, model: Any, processor: Any, runtime: Runtime) -> None:
        super().__init__(model, processor, runtime)
        self.compiled = runtime.compile  # the language passes: compiled, padded to a bucket
        self.image_token_id = int(model.config.image_token_id)
        self.video_token_id = int(model.config.video_token_id)
        self.merge = int(model.config.vision_config.spatial_merge_size)
        # our exact, faster copy of the image processor (None: one we do not reproduce)
        self._pixels = QwenPixels.from_processor(processor.image_processor)

    def preprocess(self, image: Any, max_pixels: int | None) -> ImageInputs:
        proc = self.processor.image_processor
        kwargs = {}
        if max_pixels is not None:
            kwargs["max_pixels"] = min(max_pixels, proc.max_pixels)
            kwargs["min_pixels"] = min(proc.min_pixels, kwargs["max_pixels"])
        pixels = self._pixels
        if pixels is None:  # a processor whose resampling we do not reproduce
            out = proc(images=[to_pil(image)], **kwargs)
            values, grid_thw = mx.array(out["pixel_values"]), np.asarray(out["image_grid_thw"])
        elif self.runtime.device == "gpu":  # bytes in, the rest there
            values, grid_thw = pixels.values_mx(image, **kwargs)
        else:
            index, grid_thw = pixels.indices(image, **kwargs)
            values = mx.array(pixels.expand(index))
        grids = [(int(t), int(h), int(w)) for t, h, w in grid_thw]
        return ImageInputs(
            arrays={"pixel_values": values, "image_grid_thw": mx.array(grid_thw)},
            n_image_tokens=sum(t * h * w for t, h, w in grids) // (self.merge * self.merge),
            grids=grids,
        )

    def encode(self, inputs: ImageInputs) -> None:
        tower = self.model.vision_tower
        pixels = inputs.arrays["pixel_values"].astype(tower.patch_embed.proj.weight.dtype)
        inputs.features = tower(pixels, inputs.arrays["image_grid_thw"], output_hidden_states=False)

    def encode_batch(self, batch: list[ImageInputs]) -> None:
        """Images of one patch grid go through the tower together (one pass per grid: the
        windows and full-attention blocks stay within each image); each gets its slice of the
        features. Compiled (GPUs): the image count is padded to `batch_bucket` with copies of
        the last image, so a grid traces a few passes, not one per count."""
        tower = self.model.vision_tower
        dtype = tower.patch_embed.proj.weight.dtype
        by_grid: dict[tuple[tuple[int, int, int], ...], list[ImageInputs]] = {}
        for inputs in batch:
            by_grid.setdefault(tuple(inputs.grids), []).append(inputs)
        for same in by_grid.values():
            if len(same) == 1:
                self.encode(same[0])
                continue
            count = batch_bucket(len(same)) if self.runtime.compile else len(same)
            padded = same + [same[-1]] * (count - len(same))
            pixels = mx.concatenate([i.arrays["pixel_values"] for i in padded]).astype(dtype)
            grid = mx.array([list(g) for i in padded for g in i.grids])
            features = tower(pixels, grid, output_hidden_states=False)
            n = same[0].n_image_tokens
            for k, inputs in enumerate(same):
                inputs.features = features[k * n : (k + 1) * n]

    def _prefix(self, ids: list[int], inputs: ImageInputs) -> tuple[Any, Any, int]:
        """Embeddings (image features spliced in) and positions of a prompt that starts at 0,
        and the position its continuation starts at. The features go in at the placeholders'
        known positions, by concatenation: no host sync (mlx-vlm's merge syncs twice)."""
        embed = self.model.language_model.model.embed_tokens
        if self.image_token_id in ids:
            at, n = ids.index(self.image_token_id), inputs.n_image_tokens
            if ids.count(self.image_token_id) != n or ids[at : at + n] != ids[at : at + 1] * n:
                raise ValueError(f"expected one run of {n} image placeholders in the prompt")
            head, tail = ids[:at], ids[at + n :]
            pieces = [embed(mx.array([head]))] if head else []
            pieces.append(inputs.features[None])
            if tail:
                pieces.append(embed(mx.array([tail])))
            embeds = mx.concatenate(pieces, axis=1)
        else:
            embeds = embed(mx.array([ids]))
        positions, next_position = language.mrope_positions(
            ids, inputs.grids, self.image_token_id, self.merge
        )
        return embeds, positions, next_position

    def forward(self, cache: PromptCache, ids: list[int], inputs: ImageInputs) -> Any:
        lm = self.model.language_model
        if cache.offset == 0:
            embeds, positions, next_position = self._prefix(ids, inputs)
            cache.extra["rope_delta"] = next_position - len(ids)
        else:
            if self.image_token_id in ids:
                raise ValueError("image placeholders after the prompt prefix")
            embeds = lm.model.embed_tokens(mx.array([ids]))
            start = cache.offset + cache.extra["rope_delta"]
            positions = mx.broadcast_to(mx.arange(start, start + len(ids)), (3, 1, len(ids)))
        hidden = lm.model(None, inputs_embeds=embeds, cache=cache.layers, position_ids=positions)
        cache.offset += len(ids)
        return hidden

    def packed_logits(
        self,
        prefix: list[int],
        suffixes: list[list[int]],
        inputs: ImageInputs,
        token_ids: tuple[int, ...],
    ) -> Any:
        embeds, positions, next_position = self._prefix(prefix, inputs)
        lm = self.model.language_model
        if not self.compiled:  # the CPU: op by op, no padding
            return language.packed_logits(lm, embeds, positions, next_position, suffixes, token_ids)
        # Compiled (GPUs): mx.compile traces once per input shape, so the packed length is
        # padded up to a bucket (`packed_bucket`: 16 per octave) by one extra suffix
        # that nothing else attends to; its logits row is dropped. A new bucket pays one trace
        # inside its first request; a deployment sees few (a view's length, its questions).
        total = len(prefix) + sum(len(s) for s in suffixes)
        pad = packed_bucket(total) - total
        if len(suffixes) == 1:
            return _one_question(lm, embeds, positions, next_position, suffixes[0], pad, token_ids)
        if pad:
            suffixes = [*suffixes, [suffixes[-1][-1]] * pad]
        logits = language.packed_logits(
            lm, embeds, positions, next_position, suffixes, token_ids, compiled=True
        )
        return logits[: len(suffixes) - 1] if pad else logits

    def batched_logits(
        self, rows: list[tuple[list[int], list[list[int]], ImageInputs]], token_ids: tuple[int, ...]
    ) -> Any:
        """One batch row per image (`language.rows_logits`). Compiled (GPUs): rows padded to
        a `packed_bucket` length and their count to a `batch_bucket`, for few traces."""
        built = []
        for prefix, suffixes, inputs in rows:
            embeds, positions, next_position = self._prefix(prefix, inputs)
            built.append(language.Row(embeds, positions, next_position, suffixes))
        lm = self.model.language_model
        if not self.compiled:
            head = language.shared_head([r[0] for r in rows], self.image_token_id)
            return language.rows_logits(lm, built, token_ids, head=head)
        length = packed_bucket(max(r.length for r in built))
        batch = batch_bucket(len(built))
        return language.rows_logits(lm, built, token_ids, True, length, batch)


def batch_bucket(count: int) -> int:
    """The batch size compiled for `count` images or rows: exact up to 7, then 4 steps per
    octave (8, 10, 12, 14, 16, 20 ...): at most a quarter of padding, few traces."""
    step = 1 << max(0, count.bit_length() - 3)
    return -(-count // step) * step


def packed_bucket(length: int) -> int:
    """The packed length compiled for `length` tokens: up to 511 the next multiple of 16, above
    it of the power of two in (length / 32, length / 16] (under 6.25% padding): 16 buckets per
    octave, 96 below 8192 tokens. (Steps of 64 cost the 7B H200 ~1.5 ms at 302 -> 320 tokens.)"""
    step = max(16, 1 << max(0, length.bit_length() - 5))
    return -(-length // step) * step


def _one_question(
    lm: Any,
    embeds: Any,
    positions: Any,
    next_position: int,
    suffix: list[int],
    pad: int,
    token_ids: tuple[int, ...],
) -> Any:
    """One question: prefix + suffix is one causal sequence, so it runs without an array mask
    (the attention kernels of a single prompt); the padding after it is never read."""
    n = len(suffix) + pad
    ids = mx.array([suffix + [suffix[-1]] * pad])
    embeds = mx.concatenate([embeds, lm.model.embed_tokens(ids).astype(embeds.dtype)], axis=1)
    text = mx.broadcast_to(mx.arange(next_position, next_position + n), (3, 1, n))
    positions = mx.concatenate([positions, text.astype(positions.dtype)], axis=2)
    hidden = language.layers_pass(lm, True)(embeds, positions)
    end = hidden.shape[1] - pad  # slices only: an integer index would be a gather
    return language.logits_of(lm, hidden[:, end - 1 : end].reshape(1, -1), token_ids)


ADAPTER = QwenVLAdapter
