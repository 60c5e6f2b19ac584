"""Llama 3.2 Vision (mllama): one `<|image|>` token; text after it cross-attends to the tiles.

mlx-vlm's own chat template puts `<|image|>` after the question, so the question could not see
the image; messages are built image-first here. The real Llama template refuses a system turn
together with an image: then the system text goes into the user turn, before the image.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from pnp_vision.inspect.imageprep import to_pil
from pnp_vision.inspect.models.base import Adapter, ImageInputs, PromptCache
from pnp_vision.inspect.runtime import Runtime


class MllamaAdapter(Adapter):
    def __init__(self, model: Any, processor: Any, runtime: Runtime) -> None:
        super().__init__(model, processor, runtime)
        self.image_token_id = int(model.config.image_token_index)
        vision = model.config.vision_config
        self.tokens_per_tile = (vision.image_size // vision.patch_size) ** 2 + 1
        self.max_tiles = int(processor.image_processor.max_image_tiles)
        self._system_turn: bool | None = None

    def messages(self, system: str, question: str) -> list[dict[str, Any]]:
        if self._system_turn is None:
            try:
                self.tokenizer.apply_chat_template(
                    super().messages(system, question), tokenize=False
                )
                self._system_turn = True
            except Exception:  # jinja raise_exception: "system messages with images"
                self._system_turn = False
        if self._system_turn:
            return super().messages(system, question)
        content = [
            {"type": "text", "text": system + "\n"},
            {"type": "image"},
            {"type": "text", "text": question},
        ]
        return [{"role": "user", "content": content}]

    def preprocess(self, image: Any, max_pixels: int | None) -> ImageInputs:
        out = self.processor.image_processor([[to_pil(image)]], max_image_tiles=self.max_tiles)
        names = ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")
        return ImageInputs(arrays={k: mx.array(np.asarray(out[k])) for k in names})

    def encode(self, inputs: ImageInputs) -> None:
        model = self.model
        states = model.vision_tower(
            pixel_values=inputs.arrays["pixel_values"],
            aspect_ratio_ids=inputs.arrays["aspect_ratio_ids"],
            aspect_ratio_mask=inputs.arrays["aspect_ratio_mask"],
        )[0]
        hidden = model.config.text_config.hidden_size
        inputs.features = model.multi_modal_projector(states).reshape(1, -1, hidden)

    def forward(self, cache: PromptCache, ids: list[int], inputs: ImageInputs) -> Any:
        if cache.offset == 0:
            if self.image_token_id not in ids:
                raise ValueError("the prompt prefix must contain the image token")
            cache.extra["image_at"] = ids.index(self.image_token_id)
        image_at = cache.extra["image_at"]
        tiles = inputs.arrays["aspect_ratio_mask"].reshape(1, 1, 1, -1).astype(mx.float32)
        rows = mx.arange(cache.offset, cache.offset + len(ids)) >= image_at
        dense = rows.reshape(1, -1, 1, 1).astype(mx.float32) * tiles  # (1, L, 1, max_tiles)
        cross_mask, row_mask = self.model._prepare_cross_attention_mask(
            dense, num_vision_tokens=self.tokens_per_tile
        )
        lm = self.model.language_model
        tokens = mx.array([ids])
        hidden = lm.model(
            input_ids=tokens,
            cross_attention_states=inputs.features,
            cross_attention_mask=cross_mask,
            full_text_row_masked_out_mask=row_mask,
            cache=cache.layers,
        )
        cache.offset += len(ids)
        return hidden


ADAPTER = MllamaAdapter
