"""The optimized paths compute what plain mlx-vlm computes, on the tiny real-architecture models.

Compared: the batched-window vision tower against mlx-vlm's window-by-window tower (several
grids, uneven windows, two images), and the language-model shortcuts (last position only,
packed questions, cached prefix + batched suffixes) against mlx-vlm's full forward pass.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from pnp_vision.inspect import rope
from pnp_vision.inspect.loading import load_model
from pnp_vision.inspect.models import patching
from pnp_vision.inspect.models.qwen2_5_vl import language, vision
from pnp_vision.inspect.runtime import setup_runtime


@pytest.fixture(scope="module")
def qwen(tiny_model_dir):
    model, _, config = load_model(tiny_model_dir("qwen2_5_vl"))
    model.set_dtype(mx.float32)
    mx.eval(model.parameters())
    return model, config


def _pixels(grid: list[list[int]], seed: int) -> mx.array:
    n = sum(t * h * w for t, h, w in grid)
    return mx.array(np.random.default_rng(seed).standard_normal((n, 3 * 2 * 14 * 14), np.float32))


def _rel(a: mx.array, b: mx.array) -> float:
    return float(mx.abs(a - b).max() / mx.abs(b).max())


# 8x8: windows fit exactly; 10x14 and 6x20: padded, uneven windows; two images, one of 2 frames.
GRIDS = [[[1, 8, 8]], [[1, 10, 14]], [[1, 6, 20]], [[1, 8, 8], [2, 6, 10]]]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: "+".join("x".join(map(str, x)) for x in g))
def test_batched_window_vision_matches_mlx_vlm(qwen, grid):
    model, _ = qwen
    tower = model.vision_tower
    px, g = _pixels(grid, 1), mx.array(grid)
    plain = vision.plain_forward(tower, px, g)
    for how in vision.VisionAttention:
        for compiled in (False, True):
            fast = vision.FastVision(tower, setup_runtime(), how, compiled)(px, g)
            assert fast.shape == plain.shape
            assert _rel(fast, plain) < 1e-5, (how, compiled)


def test_window_plan_is_a_permutation_with_its_inverse():
    plan = vision.plan_windows([(1, 10, 14), (2, 6, 6)], merge=2, patch=14, window=112, head_dim=16)
    units = (10 * 14 + 2 * 6 * 6) // 4
    order = np.array(plan.window_index)
    assert sorted(order.tolist()) == list(range(units))
    assert np.array_equal(order[np.array(plan.reverse_index)], np.arange(units))
    assert plan.windows.mask is not None  # 10x14 patches do not tile into 8x8-patch windows
    assert plan.images.count == 3  # one image and one of two frames
    assert plan.tiles is None  # two grids: the permutation is a gather
    for grid in ([(1, 16, 24)], [(2, 8, 8)]):  # windows tile these exactly: a transpose
        plan = vision.plan_windows(grid, merge=2, patch=14, window=112, head_dim=16)
        assert plan.tiles is not None
        units = np.arange(len(np.array(plan.window_index)), dtype=np.float32)[:, None]
        x = mx.array(np.repeat(units, 4, axis=0))  # 4 patches per merge unit
        moved = np.array(vision._to_windows(x, plan, 4))[::4, 0]
        assert np.array_equal(moved, np.array(plan.window_index))
        back = vision._from_windows(mx.array(moved[:, None]), plan)
        assert np.array_equal(np.array(back)[:, 0], units[:, 0])


def test_install_routes_the_tower_and_uninstall_restores_it(qwen):
    model, _ = qwen
    grid = [[1, 8, 8]]
    px, g = _pixels(grid, 2), mx.array(grid)
    plain = vision.plain_forward(model.vision_tower, px, g)
    patching.install(patching.patches_for("qwen2_5_vl").routes(setup_runtime()))
    fast = vision.install(model, setup_runtime(), compiled=False)
    assert fast.plans == {}
    assert _rel(model.vision_tower(px, g), plain) < 1e-5
    assert len(fast.plans) == 1  # the call went through the fast path
    vision.uninstall(model)
    assert vision.FastVision.of(model.vision_tower) is None


def _prompt(config, grid, question):
    """system text, the image, then the question (ids below the tiny vocabulary)."""
    n_image = grid[1] * grid[2] // 4
    prefix = [5, 6, 7, config["vision_start_token_id"], *[config["image_token_id"]] * n_image]
    prefix += [config["vision_end_token_id"], 8]
    return prefix, [20 + question, 30, 31 + question, 40][: 2 + question]


def _plain_probs(model, ids, px, grid, answers):
    lm = model.language_model
    lm._position_ids = lm._rope_deltas = None
    out = model(mx.array([ids]), pixel_values=px, image_grid_thw=mx.array([grid]))
    return mx.softmax(out.logits[0, -1, list(answers)].astype(mx.float32))


def test_language_shortcuts_match_the_full_forward(qwen):
    model, config = qwen
    vision.install(model, setup_runtime(), compiled=False)
    grid, answers = [1, 8, 8], (11, 12)
    px = _pixels([grid], 3)
    lm = model.language_model
    prefix, _ = _prompt(config, grid, 0)
    suffixes = [_prompt(config, grid, q)[1] for q in range(3)]
    plain = np.array(
        [np.array(_plain_probs(model, prefix + s, px, grid, answers)) for s in suffixes]
    )

    feats = model.vision_tower(px, mx.array([grid]))
    start = prefix.index(config["image_token_id"])

    def embeds(ids):
        text = lm.model.embed_tokens(mx.array([ids]))
        n = feats.shape[0]
        return mx.concatenate([text[:, :start], feats[None], text[:, start + n :]], axis=1)

    merge = model.config.vision_config.spatial_merge_size
    img = config["image_token_id"]
    one = []
    for s in suffixes:
        pos, _ = language.mrope_positions(prefix + s, [tuple(grid)], img, merge)
        logits = language.last_position_logits(lm, embeds(prefix + s), pos, answers)
        one.append(np.array(mx.softmax(logits[0])))
    np.testing.assert_allclose(np.array(one), plain, atol=1e-5)

    ppos, nxt = language.mrope_positions(prefix, [tuple(grid)], img, merge)
    packed = language.packed_logits(lm, embeds(prefix), ppos, nxt, suffixes, answers)
    np.testing.assert_allclose(np.array(mx.softmax(packed, axis=-1)), plain, atol=1e-5)

    cache = language.prefill(lm, embeds(prefix), ppos)
    batched = language.suffix_logits(lm, cache, suffixes, nxt, answers)
    np.testing.assert_allclose(np.array(mx.softmax(batched, axis=-1)), plain, atol=1e-5)


def test_host_positions_match_mlx_vlm(qwen):
    model, config = qwen
    grid = [1, 10, 14]
    prefix, suffix = _prompt(config, grid, 1)
    ids = prefix + suffix
    ref, _ = model.language_model.get_rope_index(mx.array([ids]), mx.array([grid]))
    pos, _ = language.mrope_positions(ids, [tuple(grid)], config["image_token_id"], 2)
    assert np.array_equal(np.array(ref), np.array(pos))
    _, nxt_prefix = language.mrope_positions(prefix, [tuple(grid)], config["image_token_id"], 2)
    assert int(np.array(ref)[0, 0, len(prefix)]) == nxt_prefix


def test_suffixes_must_not_be_empty(qwen):
    model, _ = qwen
    with pytest.raises(ValueError, match="at least one token"):
        language.suffix_logits(model.language_model, [], [[]], 0)


def test_padded_mlp_gives_the_same_tower(tiny_model_dir):
    """`pad_mlp` (on GPUs: aligned GEMMs) widens every block's MLP with zero units: the same
    features through mlx-vlm's own tower and through the fast one."""
    model, _, _ = load_model(tiny_model_dir("qwen2_5_vl"))
    model.set_dtype(mx.float32)
    tower = model.vision_tower
    grid = [[1, 10, 14]]
    px, g = _pixels(grid, 4), mx.array(grid)
    before = vision.plain_forward(tower, px, g)
    width = tower.blocks[0].mlp.gate_proj.weight.shape[0]
    multiple = width + 7  # whatever the tiny width is, force a pad
    assert vision.pad_mlp(tower, multiple) == multiple
    mlp = tower.blocks[-1].mlp
    assert mlp.up_proj.weight.shape[0] == mlp.down_proj.weight.shape[1] == multiple
    assert vision.pad_mlp(tower, multiple) == 0  # already aligned: nothing to do
    assert _rel(vision.plain_forward(tower, px, g), before) < 1e-6
    assert vision.install(model, setup_runtime(), compiled=False)
    assert not rope.enable_kernel()  # the CUDA kernel only on GPUs
    assert _rel(model.vision_tower(px, g), before) < 1e-5


def test_fused_decoder_matches_mlx_vlm(tiny_model_dir):
    """`language.decoder_pass` (GPUs: one q/k/v matmul, one gate/up matmul, one rotation kernel;
    here the rotation as ops) equals mlx-vlm's layers, causal and with a packed-style array
    mask, eager and compiled; mlx-vlm's own forward still works on the re-pointed weights."""
    model, _, config = load_model(tiny_model_dir("qwen2_5_vl"))
    model.set_dtype(mx.float32)
    lm = model.language_model
    grid = [1, 10, 14]
    prefix, suffix = _prompt(config, grid, 2)
    ids = prefix + suffix
    pos, _ = language.mrope_positions(ids, [tuple(grid)], config["image_token_id"], 2)
    hidden = lm.model.embed_tokens.weight.shape[1]
    embeds = mx.array(np.random.default_rng(5).standard_normal((1, len(ids), hidden), np.float32))
    n = len(ids)
    allowed = np.tri(n, dtype=bool)
    allowed[n - 2 :, len(prefix) : n - 2] = False  # the last two tokens: a second "question"
    mask = mx.array(np.where(allowed, 0.0, -np.inf).astype(np.float32))[None, None]
    want = [lm.model(None, inputs_embeds=embeds, mask=m, position_ids=pos) for m in (None, mask)]
    q_before = np.array(lm.model.layers[0].self_attn.q_proj.weight)

    assert language.fuse(lm) and language.fuse(lm)  # idempotent
    layer = lm.model.layers[-1]
    fused, _ = language.fused(lm).qkv[-1]
    assert fused.shape[0] == sum(
        getattr(layer.self_attn, p).weight.shape[0] for p in ("q_proj", "k_proj", "v_proj")
    )
    assert np.array_equal(np.array(lm.model.layers[0].self_attn.q_proj.weight), q_before)
    compiled = mx.compile(lambda e, p, m=None: language.decoder_pass(lm, e, p, m))
    for m, ref in zip((None, mask), want, strict=True):
        assert _rel(lm.model(None, inputs_embeds=embeds, mask=m, position_ids=pos), ref) < 1e-6
        assert _rel(language.decoder_pass(lm, embeds, pos, m), ref) < 1e-5
        assert _rel(compiled(embeds, pos, m), ref) < 1e-5
