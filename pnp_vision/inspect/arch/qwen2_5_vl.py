"""Qwen2.5-VL: image features replace `<|image_pad|>` tokens; 3-D (mrope) positions.

The language model keeps `_position_ids` / `_rope_deltas` between calls when positions are not
given, so answers would drift between images: positions are always passed explicitly here.
"""

from __future__ import annotations

from typing import Any

from pnp_vision.inspect.arch.base import Adapter, ImageInputs, PromptCache


class QwenVLAdapter(Adapter):
    def __init__(self, model: Any, processor: Any) -> None:
        super().__init__(model, processor)
        self.image_token_id = int(model.config.image_token_id)
        self.video_token_id = int(model.config.video_token_id)
        self.merge = int(model.config.vision_config.spatial_merge_size)

    def preprocess(self, image: Any, max_pixels: int | None) -> ImageInputs:
        import mlx.core as mx

        proc = self.processor.image_processor
        kwargs = {}
        if max_pixels is not None:
            kwargs["max_pixels"] = min(max_pixels, proc.max_pixels)
            kwargs["min_pixels"] = min(proc.min_pixels, kwargs["max_pixels"])
        out = proc(images=[image], **kwargs)
        grid = mx.array(out["image_grid_thw"])
        t, h, w = (int(v) for v in out["image_grid_thw"][0])
        return ImageInputs(
            arrays={"pixel_values": mx.array(out["pixel_values"]), "image_grid_thw": grid},
            n_image_tokens=t * h * w // (self.merge * self.merge),
        )

    def encode(self, inputs: ImageInputs) -> None:
        tower = self.model.vision_tower
        pixels = inputs.arrays["pixel_values"].astype(tower.patch_embed.proj.weight.dtype)
        inputs.features = tower(pixels, inputs.arrays["image_grid_thw"], output_hidden_states=False)

    def forward(self, cache: PromptCache, ids: list[int], inputs: ImageInputs) -> Any:
        import mlx.core as mx

        lm = self.model.language_model
        tokens = mx.array([ids])
        embeds = lm.model.embed_tokens(tokens)
        if cache.offset == 0:
            if self.image_token_id in ids:
                embeds = self.model.merge_input_ids_with_image_features(
                    self.image_token_id, self.video_token_id, inputs.features, embeds, tokens
                )
            positions, delta = lm.get_rope_index(tokens, inputs.arrays["image_grid_thw"])
            cache.extra["rope_delta"] = delta.reshape(-1)
        else:
            if self.image_token_id in ids:
                raise ValueError("image placeholders after the prompt prefix")
            start = mx.arange(cache.offset, cache.offset + len(ids)) + cache.extra["rope_delta"]
            positions = mx.broadcast_to(start.reshape(1, 1, -1), (3, 1, len(ids)))
        hidden = lm.model(tokens, inputs_embeds=embeds, cache=cache.layers, position_ids=positions)
        cache.offset += len(ids)
        return hidden
