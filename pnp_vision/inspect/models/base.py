"""The adapter interface and the pieces every architecture shares (KV cache, LM head)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pnp_vision.inspect.runtime import Runtime

T = TypeVar("T")


class PerModule(Generic[T]):
    """State kept for one mlx-vlm module (a vision tower, a language model) beside it rather
    than as attributes on it; an entry goes when its module is collected, so a new module at
    the same address never inherits it."""

    def __init__(self) -> None:
        self._items: dict[int, T] = {}

    def get(self, module: Any) -> T | None:
        return self._items.get(id(module))

    def set(self, module: Any, value: T) -> None:
        key = id(module)
        if key not in self._items:
            weakref.finalize(module, self._items.pop, key, None)
        self._items[key] = value

    def pop(self, module: Any) -> None:
        self._items.pop(id(module), None)


@dataclass
class ImageInputs:
    """One prepared image: processor output, then (after `encode`) the vision features."""

    arrays: dict[str, Any]  # processor output as mx arrays (pixel_values, grid, tiles ...)
    features: Any = None  # vision tower output, set by Adapter.encode
    n_image_tokens: int = 1  # placeholder tokens the image takes in the text sequence
    grids: list[tuple[int, int, int]] = field(default_factory=list)  # (t, h, w) patch grids


@dataclass
class PromptCache:
    """A KV cache holding one image's prompt prefix; questions extend it and are trimmed off."""

    layers: list[Any]
    offset: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # per-architecture state (rope delta)

    def trim_to(self, length: int) -> None:
        """Drop everything after the first `length` tokens (the prefix stays valid)."""
        n = self.offset - length
        if n < 0:
            raise ValueError(f"cannot trim a {self.offset}-token cache to {length}")
        if n:
            for layer in self.layers:
                if layer.offset:
                    layer.trim(n)
            self.offset = length


class Adapter:
    """Base adapter: subclasses implement preprocess / encode / image placeholder / forward."""

    image_token_id: int
    packs_questions = False  # implements `packed_logits`
    batches = False  # implements `batched_logits` (and a batched `encode_batch`)

    def __init__(self, model: Any, processor: Any, runtime: Runtime) -> None:
        self.model = model
        self.processor = processor
        self.runtime = runtime
        self.tokenizer = processor.tokenizer
        lm = model.language_model
        self._head = lm.lm_head if hasattr(lm, "lm_head") else lm.model.embed_tokens.as_linear

    # -- per architecture ------------------------------------------------------------------
    def preprocess(self, image: Any, max_pixels: int | None) -> ImageInputs:
        raise NotImplementedError

    def encode(self, inputs: ImageInputs) -> None:
        """Run the vision tower; stores (unevaluated) features on `inputs`."""
        raise NotImplementedError

    def encode_batch(self, batch: list[ImageInputs]) -> None:
        """`encode` for several images, in as few tower passes as the architecture can."""
        for inputs in batch:
            self.encode(inputs)

    def forward(self, cache: PromptCache, ids: list[int], inputs: ImageInputs) -> Any:
        """Hidden states (1, len(ids), D) for `ids` placed at `cache.offset`; extends the cache."""
        raise NotImplementedError

    def packed_logits(
        self,
        prefix: list[int],
        suffixes: list[list[int]],
        inputs: ImageInputs,
        token_ids: tuple[int, ...],
    ) -> Any:
        """Logits of `token_ids` after `prefix` + each suffix alone, all in one forward pass:
        (len(suffixes), len(token_ids)). Only where `packs_questions` is set."""
        raise NotImplementedError

    def batched_logits(
        self, rows: list[tuple[list[int], list[list[int]], ImageInputs]], token_ids: tuple[int, ...]
    ) -> Any:
        """`packed_logits` of several images' (prefix, suffixes, inputs) in one forward pass:
        (all suffixes, len(token_ids)), row by row. Only where `batches` is set."""
        raise NotImplementedError

    def messages(self, system: str, question: str) -> list[dict[str, Any]]:
        """Chat messages in the order system, image, question."""
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
        ]

    # -- shared ----------------------------------------------------------------------------
    def new_cache(self) -> PromptCache:
        from mlx_vlm.models.cache import make_prompt_cache

        return PromptCache(make_prompt_cache(self.model.language_model))

    def logits(self, hidden: Any) -> Any:
        """LM head on the given positions only (never on the whole prompt)."""
        return self._head(hidden)

    def expand_image(self, ids: list[int], inputs: ImageInputs) -> list[int]:
        """Replace the single image placeholder by as many as the image needs."""
        if ids.count(self.image_token_id) != 1:
            raise ValueError(
                f"prompt has {ids.count(self.image_token_id)} image placeholders, expected 1"
            )
        at = ids.index(self.image_token_id)
        return ids[:at] + [self.image_token_id] * inputs.n_image_tokens + ids[at + 1 :]

    def prefix_length(self, ids: list[int]) -> int:
        """Tokens up to and including the last image placeholder: shared by all questions."""
        return len(ids) - ids[::-1].index(self.image_token_id)
