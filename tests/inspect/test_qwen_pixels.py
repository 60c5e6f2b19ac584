"""Our Qwen2/2.5-VL pixel preparation equals mlx-vlm's image processor bit for bit; the
compiled, bucket-padded packed pass equals the op-by-op one."""

from __future__ import annotations

import numpy as np
import pytest
from mlx_vlm.models.qwen3_vl.processing_qwen3_vl import Qwen3VLImageProcessor
from PIL import Image

from pnp_vision.inspect import Question
from pnp_vision.inspect.models.qwen2_5_vl.adapter import packed_bucket
from pnp_vision.inspect.models.qwen2_5_vl.pixels import QwenPixels, smart_resize

CLIP = {"image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711]}  # fmt: skip
QWEN25 = {"patch_size": 14, "min_pixels": 3136, "max_pixels": 12_845_056, **CLIP}
SIZES = [(448, 448), (96, 128), (480, 640), (960, 1280), (33, 700), (1000, 37), (29, 29), (5, 9)]
BUDGETS = [None, 3136, 50_000, 200_704]


def _image(height: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + height * 7919 + width)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _budget(proc, max_pixels: int | None) -> dict[str, int]:
    """The kwargs the Qwen adapter passes for a template's pixel budget."""
    if max_pixels is None:
        return {}
    top = min(max_pixels, proc.max_pixels)
    return {"max_pixels": top, "min_pixels": min(proc.min_pixels, top)}


def _assert_same(proc, pixels: QwenPixels, image: Image.Image, **kwargs) -> None:
    want = proc(images=[image], **kwargs)
    values, grid = pixels(image, **kwargs)
    assert np.array_equal(grid, want["image_grid_thw"]), (grid, want["image_grid_thw"])
    assert values.dtype == want["pixel_values"].dtype == np.float32
    assert values.shape == want["pixel_values"].shape
    assert np.array_equal(values, want["pixel_values"])  # bit-equal, not just close


@pytest.mark.parametrize("max_pixels", BUDGETS)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_pixels_equal_the_processor(height, width, max_pixels):
    proc = Qwen3VLImageProcessor(**QWEN25)
    pixels = QwenPixels.from_processor(proc)
    assert pixels is not None
    _assert_same(proc, pixels, _image(height, width), **_budget(proc, max_pixels))


@pytest.mark.parametrize(
    "settings",
    [
        {"patch_size": 16, "merge_size": 2, "min_pixels": 4096, "max_pixels": 300_000},  # Qwen3
        {**QWEN25, "temporal_patch_size": 3, "rescale_factor": 0.004},
        {**QWEN25, "do_normalize": False},
        {**QWEN25, "do_rescale": False, "max_pixels": 100_000},
    ],
)
def test_pixels_equal_the_processor_settings(settings):
    proc = Qwen3VLImageProcessor(**settings)
    pixels = QwenPixels.from_processor(proc)
    for height, width in [(448, 448), (300, 500), (61, 90)]:
        _assert_same(proc, pixels, _image(height, width))


@pytest.mark.parametrize(("height", "width"), [(448, 448), (200, 333), (56, 84)])
def test_device_lookup_equals_the_processor(height, width):
    """The GPU branch of the adapter (patches cut and looked up in MLX), run here on the CPU
    device, from a PIL image and from the BGR frame itself (no PIL where no resize is needed:
    448x448 and 56x84 are at the processor's size, 200x333 is resized)."""
    proc = Qwen3VLImageProcessor(**QWEN25)
    pixels = QwenPixels.from_processor(proc)
    image = _image(height, width)
    bgr = np.asarray(image)[:, :, ::-1]
    want = proc(images=[image], max_pixels=200_704, min_pixels=3136)
    for source in (image, bgr, np.ascontiguousarray(bgr)):
        values, grid = pixels.values_mx(source, max_pixels=200_704, min_pixels=3136)
        assert np.array_equal(np.array(values), want["pixel_values"])
        assert np.array_equal(grid, want["image_grid_thw"])
        index, grid = pixels.indices(source, max_pixels=200_704, min_pixels=3136)
        assert np.array_equal(pixels.expand(index), want["pixel_values"])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_pixels_convert_like_the_processor(mode):
    proc = Qwen3VLImageProcessor(**QWEN25)
    image = _image(120, 160).convert(mode)
    _assert_same(proc, QwenPixels.from_processor(proc), image, max_pixels=50_000)


def test_size_rule_matches_the_processor():
    proc = Qwen3VLImageProcessor(**QWEN25)
    rng = np.random.default_rng(3)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 3000, 2))
        if max(h, w) / min(h, w) > 200:
            with pytest.raises(ValueError, match="aspect ratio"):
                smart_resize(h, w, 28, 3136, 200_704)
            continue
        budget = int(rng.choice([3136, 50_000, 200_704, 1_000_000]))
        got = smart_resize(h, w, 28, min(3136, budget), budget)
        assert got == proc._resolved_size(h, w, min_pixels=min(3136, budget), max_pixels=budget)


def test_other_processors_are_left_alone():
    class Lookalike:  # same attributes, unknown resampling
        patch_size, merge_size, temporal_patch_size = 14, 2, 2
        min_pixels, max_pixels = 3136, 200_704
        do_rescale, rescale_factor, do_normalize = True, 1 / 255, True
        image_mean = image_std = (0.5, 0.5, 0.5)

    assert QwenPixels.from_processor(Lookalike()) is None


def test_adapter_preprocess_equals_the_processor(inspectors, make_frame):
    """The engine's own preprocess (CPU: numpy table lookup) against the model's processor."""
    import mlx.core as mx

    inspector = inspectors["qwen2_5_vl"]
    adapter, proc = inspector._adapter, inspector.processor.image_processor
    for (height, width), budget in [((96, 128), None), ((240, 320), 12_544), ((61, 300), 3136)]:
        image = Image.fromarray(make_frame(5, height, width)[:, :, ::-1])
        got = adapter.preprocess(image, budget)
        assert adapter._pixels is not None  # the fast copy, not the processor
        want = proc(images=[image], **_budget(proc, budget))
        assert np.array_equal(np.array(got.arrays["pixel_values"]), want["pixel_values"])
        assert got.arrays["image_grid_thw"].tolist() == want["image_grid_thw"].tolist()
        assert got.arrays["pixel_values"].dtype == mx.float32
        t, h, w = want["image_grid_thw"][0]
        assert got.n_image_tokens == t * h * w // 4


def test_packed_bucket():
    assert [packed_bucket(n) for n in (1, 16, 17, 303, 1000, 1024, 1025)] == [
        16, 16, 32, 304, 1024, 1024, 1088,
    ]  # fmt: skip
    for n in range(1, 9000):
        b = packed_bucket(n)
        assert b >= n and packed_bucket(b) == b
        assert b - n < 16 or (b - n) / n < 1 / 16
    assert len({packed_bucket(n) for n in range(1, 8192)}) == 96


def test_compiled_packed_pass_pads_to_a_bucket(inspectors, make_frame, monkeypatch):
    """Where compiling is on (GPUs; here forced), every language pass runs at a bucket length
    (one question: causal, no array mask; several: the packed mask) and its answers equal the
    op-by-op pass."""
    from pnp_vision.inspect.models.qwen2_5_vl import language

    inspector = inspectors["qwen2_5_vl"]
    frame = make_frame(11, 96, 128)
    names = ("nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty")
    asks = [[Question(template=names[0])], [Question(template=n) for n in names]]
    plain = [[r.probabilities for r in inspector.inspect(frame, qs)] for qs in asks]

    passes: list[tuple[int, bool]] = []  # (length, with an array mask) of each compiled pass
    real = language.layers_pass

    def spy(lm, compiled):
        assert compiled
        fn = real(lm, compiled)

        def run(embeds, positions, mask=None):
            passes.append((embeds.shape[1], mask is not None))
            return fn(embeds, positions) if mask is None else fn(embeds, positions, mask)

        return run

    monkeypatch.setattr(language, "layers_pass", spy)
    monkeypatch.setattr(inspector.adapter, "compiled", True)
    compiled = [[r.probabilities for r in inspector.inspect(frame, qs)] for qs in asks]
    assert passes and all(packed_bucket(n) == n for n, _ in passes)  # bucket lengths only
    assert passes[0] == (passes[0][0], False)  # one question: no array mask
    for want, got in zip(plain, compiled, strict=True):
        for p, q in zip(want, got, strict=True):
            assert max(abs(p[a] - q[a]) for a in p) < 1e-5
