"""Language-model prefill that computes only what a constrained answer needs.

Two savings over calling the mlx-vlm model: (1) the output head runs on the last position and
only for the answer tokens' rows (the full head is 151,936 x hidden per position: most of a tiny
model's time, and ~0.6 GFLOP plus 1.2 GB of fp32 weights read per row on a 3B model); (2) several
questions about one frame continue one cached prefix (system, image, shared text) in a single
batched forward: the N suffixes are right-padded into one (N, S) batch whose keys are the shared
prefix keys followed by their own, under a causal mask. Right padding needs no extra mask: a real
token never attends to a later position, and pads only come after the real tokens.

Written for mlx-vlm language models whose layers take `(x, mask, cache, position_ids)` and
whose model takes `inputs_embeds` and `position_ids` (Qwen2-VL / Qwen2.5-VL).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_vlm.models.cache import KVCache

from pnp_vision.inspect.decoder_fast import decoder_pass


class _SharedPrefixCache:
    """Read-only KV view of a one-row prefix, handed to a batch of suffixes (duck-types KVCache)."""

    def __init__(self, keys: mx.array, values: mx.array) -> None:
        self.keys, self.values = keys, values
        self.offset = keys.shape[2]

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        n = keys.shape[0]
        pk = mx.broadcast_to(self.keys, (n, *self.keys.shape[1:]))
        pv = mx.broadcast_to(self.values, (n, *self.values.shape[1:]))
        return mx.concatenate([pk, keys], axis=2), mx.concatenate([pv, values], axis=2)


def head_rows(lm: Any, token_ids: tuple[int, ...]) -> mx.array:
    """Rows of the output head for `token_ids`, dequantized: (len(token_ids), hidden)."""
    ids = mx.array(token_ids)
    if getattr(lm.args, "tie_word_embeddings", False) or not hasattr(lm, "lm_head"):
        return lm.model.embed_tokens(ids)  # QuantizedEmbedding dequantizes the rows it returns
    head = lm.lm_head
    if isinstance(head, nn.QuantizedLinear):
        return mx.dequantize(
            head.weight[ids],
            head.scales[ids],
            None if head.get("biases") is None else head.biases[ids],
            group_size=head.group_size,
            bits=head.bits,
            mode=getattr(head, "mode", "affine"),
        )
    return head.weight[ids]


def _logits(lm: Any, hidden: mx.array, token_ids: tuple[int, ...] | None) -> mx.array:
    if token_ids is None:
        if getattr(lm.args, "tie_word_embeddings", False):
            return lm.model.embed_tokens.as_linear(hidden)
        return lm.lm_head(hidden)
    rows = head_rows(lm, token_ids)
    return hidden @ rows.astype(hidden.dtype).T


def _layers_pass(lm: Any, compiled: bool) -> Any:
    """`(embeds, positions, mask) -> hidden` through the decoder layers, no cache: on the fused
    projections where `decoder_fast.fuse` ran (GPUs), else mlx-vlm's model. Compiled once per
    model (mx.compile retraces per new shape by itself)."""

    def run(embeds: mx.array, positions: mx.array, mask: mx.array | None = None) -> mx.array:
        if lm.__dict__.get("_pnp_fused"):
            return decoder_pass(lm, embeds, positions, mask)
        return lm.model(None, inputs_embeds=embeds, mask=mask, position_ids=positions)

    if not compiled:
        return run
    fn = lm.__dict__.get("_pnp_compiled_pass")
    if fn is None:
        fn = mx.compile(run)
        object.__setattr__(lm, "_pnp_compiled_pass", fn)
    return fn


def last_position_logits(
    lm: Any,
    embeds: mx.array,
    position_ids: mx.array,
    token_ids: tuple[int, ...] | None = None,
    cache: list[KVCache] | None = None,
    compiled: bool = False,
) -> mx.array:
    """One forward over `embeds` (1, L, D); logits of the last position only: (1, vocab|ids)."""
    if cache is None:
        hidden = _layers_pass(lm, compiled)(embeds, position_ids)
    else:
        hidden = lm.model(None, inputs_embeds=embeds, cache=cache, position_ids=position_ids)
    return _logits(lm, hidden[:, -1, :], token_ids)


def mrope_positions(
    input_ids: list[int], grids: list[tuple[int, int, int]], image_token_id: int, merge: int
) -> tuple[mx.array, int]:
    """Qwen2-VL M-RoPE position ids (3, 1, L) for one prompt, on the host, and the next text
    position. Same numbers as mlx-vlm's `get_rope_index`, without its per-token array ops."""
    ids = np.asarray(input_ids)
    pos = np.zeros((3, len(ids)), dtype=np.int32)
    i, nxt, image = 0, 0, 0
    while i < len(ids):
        if ids[i] != image_token_id:
            pos[:, i] = nxt
            i, nxt = i + 1, nxt + 1
            continue
        t, h, w = grids[image]
        gh, gw = h // merge, w // merge
        tt, hh, ww = np.meshgrid(np.arange(t), np.arange(gh), np.arange(gw), indexing="ij")
        n = t * gh * gw
        pos[:, i : i + n] = np.stack([tt.ravel(), hh.ravel(), ww.ravel()]) + nxt
        nxt += max(t, gh, gw)
        i, image = i + n, image + 1
    return mx.array(pos[:, None, :]), nxt


def packed_logits(
    lm: Any,
    prefix_embeds: mx.array,
    prefix_positions: mx.array,
    next_position: int,
    suffixes: list[list[int]],
    token_ids: tuple[int, ...] | None = None,
    compiled: bool = False,
) -> mx.array:
    """Several questions in one forward: prefix, then every suffix, packed in one sequence.

    Each suffix sees the whole prefix and itself (causally), never another suffix, and starts
    at the same rotary position, so its last-token logits are those of prefix + that suffix
    alone. On a GPU this is one pass of the layers instead of a prefix pass plus a suffix pass
    (at these sizes each pass costs its kernel launches more than its arithmetic); on the CPU it
    costs the same arithmetic as a KV-cached prefix. Returns (len(suffixes), vocab|ids).
    """
    if not suffixes or any(not s for s in suffixes):
        raise ValueError("every suffix needs at least one token")
    prefix_len = prefix_embeds.shape[1]
    lengths = [len(s) for s in suffixes]
    total = prefix_len + sum(lengths)
    owner = np.full(total, -1, dtype=np.int32)  # which suffix a position belongs to (-1: prefix)
    pos = np.zeros((3, total), dtype=np.int32)
    pos[:, :prefix_len] = np.array(prefix_positions).reshape(3, -1)
    last, start = [], prefix_len
    for j, n in enumerate(lengths):
        owner[start : start + n] = j
        pos[:, start : start + n] = np.arange(next_position, next_position + n)
        last.append(start + n - 1)
        start += n
    index = np.arange(total)
    causal = index[None, :] <= index[:, None]
    same = (owner[None, :] == -1) | (owner[None, :] == owner[:, None])
    mask = mx.array(np.where(causal & same, 0.0, -np.inf).astype(np.float32))
    ids = mx.array([[t for s in suffixes for t in s]])
    embeds = mx.concatenate(
        [prefix_embeds, lm.model.embed_tokens(ids).astype(prefix_embeds.dtype)], axis=1
    )
    run = _layers_pass(lm, compiled)
    hidden = run(embeds, mx.array(pos[:, None, :]), mask.astype(embeds.dtype)[None, None])
    return _logits(lm, hidden[0, mx.array(last)], token_ids)


def prefill(lm: Any, embeds: mx.array, position_ids: mx.array) -> list[KVCache]:
    """Run the prefix (1, P, D) through the layers and keep its keys and values; no head."""
    cache = [KVCache() for _ in lm.model.layers]
    hidden = lm.model(None, inputs_embeds=embeds, cache=cache, position_ids=position_ids)
    mx.eval(hidden, [(c.keys, c.values) for c in cache])
    return cache


def suffix_logits(
    lm: Any,
    cache: list[KVCache],
    suffixes: list[list[int]],
    next_position: int,
    token_ids: tuple[int, ...] | None = None,
) -> mx.array:
    """Last-token logits of each suffix continuing the cached prefix, in one batched forward.

    `next_position` is the rotary position of the first suffix token (for Qwen2.5-VL: the
    largest prefix position + 1; text positions are equal on all three M-RoPE axes).
    Returns (len(suffixes), vocab|ids).
    """
    if not suffixes or any(not s for s in suffixes):
        raise ValueError("every suffix needs at least one token")
    n, width = len(suffixes), max(len(s) for s in suffixes)
    ids = mx.array([s + [s[-1]] * (width - len(s)) for s in suffixes])
    prefix_len = cache[0].offset
    views = [
        _SharedPrefixCache(c.keys[..., :prefix_len, :], c.values[..., :prefix_len, :])
        for c in cache
    ]
    embeds = lm.model.embed_tokens(ids)
    pos = mx.broadcast_to(
        mx.arange(next_position, next_position + width)[None, None], (3, n, width)
    )
    causal = mx.tril(mx.ones((width, width), dtype=mx.bool_))
    allowed = mx.concatenate([mx.ones((width, prefix_len), dtype=mx.bool_), causal], axis=1)
    mask = mx.where(allowed, 0.0, -mx.inf).astype(embeds.dtype)[None, None]
    hidden = lm.model(None, inputs_embeds=embeds, mask=mask, cache=views, position_ids=pos)
    last = mx.array([len(s) - 1 for s in suffixes])
    return _logits(lm, hidden[mx.arange(n), last], token_ids)


__all__ = [
    "head_rows",
    "last_position_logits",
    "mrope_positions",
    "packed_logits",
    "prefill",
    "suffix_logits",
]
