"""Qwen2-VL / Qwen2.5-VL language model (mlx-vlm's `qwen2_5_vl/language.py`), computing only
what a constrained answer needs.

Two savings over calling the mlx-vlm model: (1) the output head runs on the last position and
only for the answer tokens' rows (the full head is 151,936 x hidden per position: most of a tiny
model's time, and ~0.6 GFLOP plus 1.2 GB of fp32 weights read per row on a 3B model); (2) several
questions about one frame continue one cached prefix (system, image, shared text) in a single
batched forward: the N suffixes are right-padded into one (N, S) batch whose keys are the shared
prefix keys followed by their own, under a causal mask. Right padding needs no extra mask: a real
token never attends to a later position, and pads only come after the real tokens.

Fused projections (GPUs): mlx-vlm's layer runs q, k and v as three matmuls and gate and up as
two, and rotates q and k with 8 small kernels. On an H200 (7B, 304 tokens) the k and v matmuls
run at ~110 TFLOP/s against ~600 for the big ones, and the rotation costs ~30 us a layer. `fuse`
concatenates each layer's q/k/v and gate/up weights once and re-points mlx-vlm's own Linear
layers at slices of them (no extra memory; its forward is unchanged); `decoder_pass` then runs a
layer as: norm, one q/k/v matmul, one rotation kernel (`rope.rope_qkv`), attention, o, norm, one
gate/up matmul, SwiGLU, down. Attention and SwiGLU are looked up in mlx-vlm's modules at call
time, so the routes `patches.py` installs apply here too.

Training (`teach/trainer.py`) runs `answer_hidden`: many prompts sharing one text prefix, the
last layer at the answer position only.

Written for mlx-vlm language models whose layers take `(x, mask, cache, position_ids)` and
whose model takes `inputs_embeds` and `position_ids` (Qwen2-VL / Qwen2.5-VL).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_vlm.models import mlp as vlm_mlp
from mlx_vlm.models.cache import KVCache
from mlx_vlm.models.qwen2_5_vl import language as qwen_lm

from pnp_vision.inspect.models.base import PerModule
from pnp_vision.inspect.rope import rope_qkv


class SharedPrefixCache:
    """One layer's keys and values of a one-row prefix, shared by a batch of rows (duck-types
    mlx-vlm's KVCache): given them, or stored by the first update (the prefix's own pass);
    every later update gets them broadcast to its rows, before its own keys and values."""

    def __init__(self, keys: mx.array | None = None, values: mx.array | None = None) -> None:
        self.keys, self.values = keys, values
        self.offset = 0 if keys is None else keys.shape[2]

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            self.keys, self.values, self.offset = keys, values, keys.shape[2]
            return keys, values
        n = keys.shape[0]
        pk = mx.broadcast_to(self.keys, (n, *self.keys.shape[1:]))
        pv = mx.broadcast_to(self.values, (n, *self.values.shape[1:]))
        return mx.concatenate([pk, keys], axis=2), mx.concatenate([pv, values], axis=2)


@dataclass(frozen=True)
class Fused:
    """Each layer's concatenated q/k/v weight (and bias) and gate/up weight (see `fuse`)."""

    qkv: list[tuple[mx.array, mx.array | None]]
    gate_up: list[mx.array]
    merge_adapters: bool = False  # an adapter gets its own merged copy (see `attach_lora`)


@dataclass(frozen=True)
class Folded:
    """An adapter as the fused pass takes it: low-rank pairs per layer (group -> (A, B)), or
    merged weights (group -> one per layer). Inputs of the compiled pass, never constants."""

    lora: list[dict[str, tuple[mx.array, mx.array]]] | None = None
    merged: dict[str, list[mx.array]] | None = None


_FUSED: PerModule[Fused] = PerModule()  # language model -> its fused weights
_COMPILED: PerModule[Callable[..., mx.array]] = PerModule()  # language model -> compiled pass


_SUSPENDED: PerModule[Fused] = PerModule()  # fused weights set aside (adapters it can't take)
_ADAPTER: PerModule[Folded] = PerModule()  # the active adapter's folded form: see attach_lora


def fused(lm: Any) -> Fused | None:
    """The fused weights of `lm`, where `fuse(lm)` ran."""
    return _FUSED.get(lm)


def suspend_fusion(lm: Any) -> None:
    """Run mlx-vlm's own layers (adapters `attach_lora` cannot fold in live there; the fused
    weights bypass them) and drop the compiled pass, which holds the arrays it was traced with."""
    weights = _FUSED.get(lm)
    if weights is not None:
        _SUSPENDED.set(lm, weights)
        _FUSED.pop(lm)
    _COMPILED.pop(lm)
    _ADAPTER.pop(lm)


def resume_fusion(lm: Any) -> None:
    """Undo `suspend_fusion` (if it ran): the base weights are the fused ones again."""
    weights = _SUSPENDED.get(lm)
    if weights is not None:
        _FUSED.set(lm, weights)
        _SUSPENDED.pop(lm)
        _COMPILED.pop(lm)


def _is_lora(module: Any) -> bool:
    return type(module).__name__ == "LoRALinear" and hasattr(module, "linear")


def lora_terms(lm: Any) -> list[dict[str, tuple[mx.array, mx.array]]] | None:
    """The LoRA layers mlx-vlm put on `lm`, folded for the fused pass: per layer, the q/k/v
    (and gate/up) adapters as one low-rank pair, A side by side and B block-diagonal with the
    scale folded in, so an adapter costs two thin matmuls per projection group. None for what
    cannot be folded (DoRA)."""
    terms = []
    for layer in lm.model.layers:
        layer_terms = {}
        for name, modules in _groups(layer).items():
            wrapped = [x for x in modules if hasattr(x, "lora_a")]
            if not wrapped:
                continue
            if not all(_is_lora(x) for x in wrapped):
                return None
            layer_terms[name] = _low_rank_pair(modules)
        terms.append(layer_terms)
    return terms


def _groups(layer: Any) -> dict[str, list[Any]]:
    """A decoder layer's projections, grouped as the fused pass runs them."""
    a, m = layer.self_attn, layer.mlp
    return {
        "qkv": [a.q_proj, a.k_proj, a.v_proj],
        "o": [a.o_proj],
        "gate_up": [m.gate_proj, m.up_proj],
        "down": [m.down_proj],
    }


def merged_weights(lm: Any, terms: list[dict[str, tuple[mx.array, mx.array]]]) -> dict:
    """Each group's weight with the adapter merged in, W + (A B)^T: no cost per inference,
    one copy of every adapted weight in memory. The base arrays are left as they were, so
    the bare base stays bit-identical; groups the adapter leaves alone share them."""
    base = _FUSED.get(lm) or _SUSPENDED.get(lm)
    assert base is not None
    merged: dict[str, list[mx.array]] = {"qkv": [], "gate_up": [], "o": [], "down": []}
    for layer, (qkv_w, _), gate_up_w, layer_terms in zip(
        lm.model.layers, base.qkv, base.gate_up, terms, strict=True
    ):
        a, m = layer.self_attn, layer.mlp
        weights = {
            "qkv": qkv_w,
            "gate_up": gate_up_w,
            "o": _base_layer(a.o_proj).weight,
            "down": _base_layer(m.down_proj).weight,
        }
        for name, w in weights.items():
            pair = layer_terms.get(name)
            if pair is not None:
                delta = (pair[0].astype(mx.float32) @ pair[1].astype(mx.float32)).T
                w = (w.astype(mx.float32) + delta).astype(w.dtype)
                mx.eval(w)
            merged[name].append(w)
    return merged


def attach_lora(lm: Any, folded: Folded | None = None) -> Folded | None:
    """Let the fused pass run the adapter on `lm` (`folded`, or folded now from its LoRA
    layers: merged where `fuse` was asked to merge adapters, else low-rank pairs). Either way
    its arrays are inputs of the compiled pass, so switching between adapters of one shape
    does not retrace. What cannot be folded suspends fusion instead (mlx-vlm's layers run).
    Where `fuse` never ran (CPUs) there is nothing to do. Returns what is in use."""
    base = _FUSED.get(lm) or _SUSPENDED.get(lm)
    if base is None:
        return None
    if folded is None:
        terms = lora_terms(lm)
        if terms is None:
            suspend_fusion(lm)
            return None
        if not any(terms):
            folded = Folded()
        elif base.merge_adapters:
            folded = Folded(merged=merged_weights(lm, terms))
        else:
            folded = Folded(lora=terms)
    resume_fusion(lm)
    if folded.lora is not None or folded.merged is not None:
        _ADAPTER.set(lm, folded)
    return folded


def _low_rank_pair(modules: list[Any]) -> tuple[mx.array, mx.array]:
    """(A, B) with x @ A @ B == the concatenated LoRA terms of `modules` (zeros where one
    has no adapter)."""
    lora = [x for x in modules if _is_lora(x)]
    outs = [_base_layer(x).weight.shape[0] for x in modules]
    b = mx.zeros((sum(x.lora_a.shape[1] for x in lora), sum(outs)), dtype=lora[0].lora_b.dtype)
    r0 = o0 = 0
    for x, o in zip(modules, outs, strict=True):
        if _is_lora(x):
            r = x.lora_a.shape[1]
            b[r0 : r0 + r, o0 : o0 + o] = (x.lora_b * x.scale).astype(b.dtype)
            r0 += r
        o0 += o
    pair = (mx.concatenate([x.lora_a for x in lora], axis=1), b)
    mx.eval(*pair)
    return pair


def detach_lora(lm: Any) -> None:
    """The bare base again (`attach_lora` undone, or fusion resumed after a suspension)."""
    _ADAPTER.pop(lm)
    resume_fusion(lm)


def _slices(whole: mx.array, sizes: list[int]) -> list[mx.array]:
    out, start = [], 0
    for n in sizes:
        out.append(whole[start : start + n])
        start += n
    return out


def fuse(lm: Any, merge_adapters: bool = False) -> bool:
    """Fuse every decoder layer's q/k/v and gate/up projections (plain float Linear layers
    only; a quantized or otherwise different layer leaves the model as it is). True if done.
    `merge_adapters`: adapters get merged weights rather than low-rank terms (`attach_lora`)."""
    layers = getattr(getattr(lm, "model", None), "layers", None)
    if not layers:
        return False
    done = _FUSED.get(lm)
    if done is not None:  # already fused: only the adapter mode may change
        _FUSED.set(lm, Fused(done.qkv, done.gate_up, merge_adapters))
        return True
    for layer in layers:
        a, m = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        names = ("q_proj", "k_proj", "v_proj")
        if a is None or m is None or not hasattr(a, "rotary_emb"):
            return False
        parts = [getattr(a, n, None) for n in names]
        parts += [getattr(m, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if any(type(p) is not nn.Linear for p in parts):
            return False
        if len({"bias" in p for p in parts[:3]}) != 1 or any("bias" in p for p in parts[3:5]):
            return False
    result = Fused([], [], merge_adapters)
    for layer in layers:
        a, m = layer.self_attn, layer.mlp
        projs = [a.q_proj, a.k_proj, a.v_proj]
        sizes = [p.weight.shape[0] for p in projs]
        weight = mx.concatenate([p.weight for p in projs])
        bias = mx.concatenate([p.bias for p in projs]) if "bias" in a.q_proj else None
        gate_up = mx.concatenate([m.gate_proj.weight, m.up_proj.weight])
        mx.eval(weight, gate_up, *([] if bias is None else [bias]))
        for p, w in zip(projs, _slices(weight, sizes), strict=True):
            p.weight = w
        if bias is not None:
            for p, b in zip(projs, _slices(bias, sizes), strict=True):
                p.bias = b
        width = m.gate_proj.weight.shape[0]
        m.gate_proj.weight, m.up_proj.weight = _slices(gate_up, [width, width])
        mx.eval(a.parameters(), m.parameters())
        result.qkv.append((weight, bias))
        result.gate_up.append(gate_up)
    _FUSED.set(lm, result)
    return True


def refuse(lm: Any) -> bool:
    """Fuse again after the layers' weights were swapped (a template's own weights,
    `template_weights.py`): the fused copy and the pass compiled on it hold the old arrays and
    would answer with them. True if fused now; False where `fuse` never ran (CPUs)."""
    old = _FUSED.get(lm) or _SUSPENDED.get(lm)
    if old is None:
        return False
    for registry in (_FUSED, _SUSPENDED, _COMPILED, _ADAPTER):
        registry.pop(lm)
    return fuse(lm, old.merge_adapters)


def decoder_pass(
    lm: Any,
    embeds: mx.array,
    positions: mx.array,
    mask: mx.array | None = None,
    lora: list[dict[str, tuple[mx.array, mx.array]]] | None = None,
    merged: dict[str, list[mx.array]] | None = None,
) -> mx.array:
    """`lm.model(None, inputs_embeds=embeds, mask=mask, position_ids=positions)` (no cache)
    on the fused weights: hidden states after the final norm. Needs `fuse(lm)` first. The
    active adapter (`attach_lora`), if any: `lora` pairs per layer added to the base
    projections, or `merged` weights used in place of the base ones."""
    weights = _FUSED.get(lm)
    if weights is None:
        raise ValueError("decoder_pass needs fuse(lm) first")
    model = lm.model
    h = embeds
    batch, length, _ = h.shape
    cos, sin = model.layers[0].self_attn.rotary_emb(h, positions)  # (B, L, D), mlx-vlm's own
    attend_mask = "causal" if mask is None else mask
    for i, (layer, (weight, bias), gate_up_w) in enumerate(
        zip(model.layers, weights.qkv, weights.gate_up, strict=True)
    ):
        a, m = layer.self_attn, layer.mlp
        terms = lora[i] if lora is not None else {}
        if merged is not None:
            weight, gate_up_w = merged["qkv"][i], merged["gate_up"][i]
        x = layer.input_layernorm(h)
        qkv = _plus(x @ weight.T if bias is None else mx.addmm(bias, x, weight.T), x, terms, "qkv")
        q, k, v = rope_qkv(qkv, cos, sin, a.n_heads, a.n_kv_heads)
        out = qwen_lm.scaled_dot_product_attention(q, k, v, None, scale=a.scale, mask=attend_mask)
        out = out.transpose(0, 2, 1, 3).reshape(batch, length, -1)
        h = h + _project(a.o_proj, out, terms, "o", merged and merged["o"][i])
        x = layer.post_attention_layernorm(h)
        gate_up = _plus(x @ gate_up_w.T, x, terms, "gate_up")
        width = gate_up.shape[-1] // 2
        out = vlm_mlp.swiglu(gate_up[..., :width], gate_up[..., width:])
        h = h + _project(m.down_proj, out, terms, "down", merged and merged["down"][i])
    return model.norm(h)


def _plus(y: mx.array, x: mx.array, terms: dict[str, Any], name: str) -> mx.array:
    """`y` plus the low-rank term `name` of `x`, where the adapter has one."""
    pair = terms.get(name)
    return y if pair is None else y + (x @ pair[0]) @ pair[1]


def _base_layer(module: Any) -> Any:
    return module.linear if _is_lora(module) else module


def _project(
    module: Any, x: mx.array, terms: dict[str, Any], name: str, weight: mx.array | None = None
) -> mx.array:
    """A projection through its base layer plus the folded adapter term, or with the merged
    `weight` (a LoRA layer is bypassed for its base: its arrays would be constants of a
    compiled pass)."""
    base = _base_layer(module)
    if weight is not None:
        y = x @ weight.T
        return y + base.bias if "bias" in base else y
    if name in terms:
        return _plus(base(x), x, terms, name)
    return module(x)


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


def logits_of(lm: Any, hidden: mx.array, token_ids: tuple[int, ...] | None) -> mx.array:
    """Logits of `token_ids` (None: the whole vocabulary) for the given hidden states only."""
    if token_ids is None:
        if getattr(lm.args, "tie_word_embeddings", False):
            return lm.model.embed_tokens.as_linear(hidden)
        return lm.lm_head(hidden)
    rows = head_rows(lm, token_ids)
    return hidden @ rows.astype(hidden.dtype).T


def layers_pass(lm: Any, compiled: bool) -> Callable[..., mx.array]:
    """`(embeds, positions, mask) -> hidden` through the decoder layers, no cache: on the fused
    projections where `fuse` ran (GPUs), else mlx-vlm's model. Compiled once per model
    (mx.compile retraces per new shape by itself)."""

    ref = weakref.ref(lm)  # a compiled pass kept for `lm` must not keep it alive

    def run(
        embeds: mx.array,
        positions: mx.array,
        mask: mx.array | None = None,
        lora: Any = None,
        merged: Any = None,
    ) -> mx.array:
        model = ref()
        if _FUSED.get(model) is not None:
            return decoder_pass(model, embeds, positions, mask, lora, merged)
        return model.model(None, inputs_embeds=embeds, mask=mask, position_ids=positions)

    fn = run
    if compiled:
        fn = _COMPILED.get(lm)
        if fn is None:
            fn = mx.compile(run)
            _COMPILED.set(lm, fn)

    def with_adapter(
        embeds: mx.array, positions: mx.array, mask: mx.array | None = None
    ) -> mx.array:
        folded = _ADAPTER.get(ref()) or Folded()
        return fn(embeds, positions, mask, folded.lora, folded.merged)

    return with_adapter


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
        hidden = layers_pass(lm, compiled)(embeds, position_ids)
    else:
        hidden = lm.model(None, inputs_embeds=embeds, cache=cache, position_ids=position_ids)
    return logits_of(lm, hidden[:, -1, :], token_ids)


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
    run = layers_pass(lm, compiled)
    hidden = run(embeds, mx.array(pos[:, None, :]), mask.astype(embeds.dtype)[None, None])
    return logits_of(lm, hidden[0, mx.array(last)], token_ids)


@dataclass(frozen=True)
class Row:
    """One image's prompt in a batched pass: its prefix (embeddings (1, P, D) and M-RoPE
    positions (3, 1, P), the next text position) and its questions' suffixes."""

    embeds: mx.array
    positions: mx.array
    next_position: int
    suffixes: list[list[int]]

    @property
    def length(self) -> int:
        return self.embeds.shape[1] + sum(len(s) for s in self.suffixes)


def rows_logits(
    lm: Any,
    rows: list[Row],
    token_ids: tuple[int, ...] | None = None,
    compiled: bool = False,
    length: int | None = None,
    batch: int | None = None,
    head: int = 0,
) -> mx.array:
    """Several images' prompts in one forward: one batch row per image, each packed as
    `packed_logits` packs one (prefix, then every suffix, each suffix seeing the prefix and
    itself), right-padded to `length` (default: the longest row), and `batch` rows in all
    (default: as many as given; extra rows repeat the last one and are never read). Padding
    tokens see their row's prefix and themselves, so nothing real ever attends to them and
    their softmax never has an empty row. Rows, not one long packed sequence: attention costs
    each image its own length squared, never the batch's.

    `head`: the first `head` tokens are the same in every row (the text before the image:
    system turn, user header, about half of a small model's prompt). Uncompiled, they run
    once, on one row, and every row attends to their keys and values (`SharedPrefixCache`);
    compiled passes (GPUs) have no cache and run them in each row.

    Returns (total suffixes, vocab|ids): row by row, suffix by suffix."""
    if not rows or any(not r.suffixes or any(not s for s in r.suffixes) for r in rows):
        raise ValueError("every row needs suffixes of at least one token")
    length = max(r.length for r in rows) if length is None else length
    batch = len(rows) if batch is None else batch
    if length < max(r.length for r in rows) or batch < len(rows):
        raise ValueError(f"rows of up to {max(r.length for r in rows)} tokens do not fit")
    head = 0 if compiled else head
    embed = lm.model.embed_tokens
    dtype = rows[0].embeds.dtype
    owner = np.empty((batch, length), dtype=np.int32)  # -1: prefix; j: suffix j; n: padding
    pos = np.zeros((3, batch, length), dtype=np.int32)
    pieces, last = [], []
    for b in range(batch):
        row = rows[min(b, len(rows) - 1)]
        p = row.embeds.shape[1]
        owner[b, :p] = -1
        pos[:, b, :p] = np.array(row.positions).reshape(3, -1)
        tokens, start = [], p
        for j, suffix in enumerate(row.suffixes):
            n = len(suffix)
            owner[b, start : start + n] = j
            pos[:, b, start : start + n] = np.arange(row.next_position, row.next_position + n)
            if b < len(rows):
                last.append(b * (length - head) + start - head + n - 1)
            tokens += suffix
            start += n
        pad = length - start
        owner[b, start:] = len(row.suffixes)
        pos[:, b, start:] = np.arange(row.next_position, row.next_position + pad)
        tokens += [tokens[-1]] * pad
        text = embed(mx.array([tokens])).astype(dtype)
        pieces.append(mx.concatenate([row.embeds[:, head:], text], axis=1))
    keys = mx.array(owner[:, head:])
    index = mx.arange(length - head)
    causal = index[None, :] <= index[:, None]  # (L, L)
    same = (keys[:, None, :] == -1) | (keys[:, None, :] == keys[:, :, None])  # (B, L, L)
    allowed = causal[None] & same
    embeds, positions = mx.concatenate(pieces), mx.array(pos[:, :, head:])
    if head:  # the shared head: once, its keys and values seen by every row
        cache = [KVCache() for _ in lm.model.layers]
        lm.model(
            None, inputs_embeds=rows[0].embeds[:, :head], cache=cache,
            position_ids=mx.array(pos[:, :1, :head]),
        )  # fmt: skip
        views = [SharedPrefixCache(c.keys[..., :head, :], c.values[..., :head, :]) for c in cache]
        seen = mx.ones((batch, length - head, head), dtype=mx.bool_)
        mask = mx.where(mx.concatenate([seen, allowed], axis=2), 0.0, -mx.inf).astype(dtype)
        hidden = lm.model(
            None, inputs_embeds=embeds, mask=mask[:, None], cache=views, position_ids=positions
        )
    else:
        mask = mx.where(allowed, 0.0, -mx.inf).astype(dtype)[:, None]
        hidden = layers_pass(lm, compiled)(embeds, positions, mask)
    flat = hidden.reshape(batch * (length - head), hidden.shape[-1])
    return logits_of(lm, flat[mx.array(last)], token_ids)


def shared_head(prompts: list[list[int]], stop: int) -> int:
    """How many leading tokens every prompt has in common, before the first `stop` token."""
    first = prompts[0]
    n = min(len(p) for p in prompts)
    if stop in first:
        n = min(n, first.index(stop))
    for i in range(n):
        if any(p[i] != first[i] for p in prompts):
            return i
    return n


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
        SharedPrefixCache(c.keys[..., :prefix_len, :], c.values[..., :prefix_len, :]) for c in cache
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
    return logits_of(lm, hidden[mx.arange(n), last], token_ids)


def answer_hidden(
    lm: Any, prefix: mx.array, rows: mx.array, positions: mx.array, last: mx.array
) -> mx.array:
    """Final hidden state at position `last` of each row of `rows` (q, s, D), all continuing one
    shared `prefix` (1, p, D); `positions` (3, 1, p + s) the M-RoPE positions. For training.

    The text before the image is the same in every prompt, and a causal model computes it
    the same way for each: it runs once, on one row, and its keys and values are broadcast
    to the rows (image, question), which run as mlx-vlm runs them. In the last layer only
    the answer position's query, attention output and MLP are computed, since nothing else
    reaches the answer. Together about two thirds of the language model's work.
    """
    rope = qwen_lm.apply_multimodal_rotary_pos_emb
    model = lm.model
    *early, final = model.layers
    attn = final.self_attn
    if attn.rotary_emb.fused_apply:
        raise RuntimeError("fused mrope (Metal) is not supported by the training pass")
    p, (q, s, _) = prefix.shape[1], rows.shape
    cos, sin = attn.rotary_emb(prefix, positions)  # (1, p + s, head_dim)
    head = (cos[:, :p], sin[:, :p])
    tail = (cos[:, p:], sin[:, p:])
    # row query i (at position p + i) sees the prefix and row keys 0..i
    causal = mx.arange(p + s)[None, :] <= mx.arange(p, p + s)[:, None]
    row_mask = mx.where(causal, 0.0, -mx.inf).astype(rows.dtype)
    for layer in early:
        kv = SharedPrefixCache()
        prefix = layer(prefix, "causal", kv, positions[..., :p], head)
        rows = layer(rows, row_mask, kv, positions[..., p:], tail)
    idx = mx.arange(q)

    def heads(x: mx.array, n: int) -> mx.array:
        return x.reshape(x.shape[0], -1, n, attn.head_dim).transpose(0, 2, 1, 3)

    xp, xr = final.input_layernorm(prefix), final.input_layernorm(rows)
    k = mx.concatenate(
        [
            mx.broadcast_to(rope(*[heads(attn.k_proj(xp), attn.n_kv_heads)] * 2, *head)[1],
                            (q, attn.n_kv_heads, p, attn.head_dim)),
            rope(*[heads(attn.k_proj(xr), attn.n_kv_heads)] * 2, *tail)[1],
        ],
        axis=2,
    )  # fmt: skip
    v = mx.concatenate(
        [
            mx.broadcast_to(heads(attn.v_proj(xp), attn.n_kv_heads),
                            (q, attn.n_kv_heads, p, attn.head_dim)),
            heads(attn.v_proj(xr), attn.n_kv_heads),
        ],
        axis=2,
    )  # fmt: skip
    query = heads(attn.q_proj(xr[idx, last][:, None]), attn.n_heads)
    at = (tail[0][0, last][:, None], tail[1][0, last][:, None])  # (q, 1, head_dim)
    query = rope(query, query, *at)[0]
    visible = mx.arange(p + s)[None, :] <= (p + last)[:, None]  # padding after `last`: unseen
    bias = mx.where(visible, 0.0, -mx.inf)[:, None, None, :].astype(query.dtype)
    out = mx.fast.scaled_dot_product_attention(query, k, v, scale=attn.scale, mask=bias)
    out = attn.o_proj(out.transpose(0, 2, 1, 3).reshape(q, 1, -1))
    hidden = rows[idx, last][:, None] + out
    hidden = hidden + final.mlp(final.post_attention_layernorm(hidden))
    return model.norm(hidden)[:, 0]


__all__ = [
    "Row",
    "SharedPrefixCache",
    "answer_hidden",
    "attach_lora",
    "decoder_pass",
    "detach_lora",
    "fuse",
    "head_rows",
    "last_position_logits",
    "layers_pass",
    "logits_of",
    "lora_terms",
    "merged_weights",
    "mrope_positions",
    "packed_logits",
    "prefill",
    "refuse",
    "rows_logits",
    "shared_head",
    "suffix_logits",
]
