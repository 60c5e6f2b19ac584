"""Training batches made exactly as the engine makes its inputs.

A batch is a handful of frames plus the questions (of the templates being trained) that their
labels answer. Each frame goes through the engine's own image prep (`imageprep.prepare`, then
the model's image processor with the adapter's pixel budget) once per distinct view (a
template's ROI and pixel budget) its questions ask for; each question's token ids come from the
Inspector's own prompt (system, image, rendered question, assistant header) and tokenizer; its
target is the labelled answer among the first tokens of the Inspector's own answer plan (the
loss is over that answer set, exactly what the Inspector scores). `Tables` captures all of that
once, in the training process, as plain picklable data, so helper processes can make batches
too (`devtools/train_data.py` renders synthetic ones; `teach/train.py` takes a rig's labelled
frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pnp_vision.inspect import imageprep
from pnp_vision.inspect.models.qwen2_5_vl.pixels import QwenPixels
from pnp_vision.inspect.templates import corner_mirroring
from pnp_vision.inspect.views import view_box

# a template's (roi, max_pixels, view size): what decides the image it is asked about
View = tuple[tuple[float, float, float, float] | None, int | None, tuple[int, int] | None]


class EmptyBatch(ValueError):
    """No frame of a batch asks a question of the templates being trained (a scene that asks
    a template only of some frames: world chip frames ask polarity_mark of one in four)."""


@dataclass(frozen=True)
class Batch:
    pixels: np.ndarray  # (views * patches, 3, 1, area) uint16: QwenPixels.indices, still bytes
    grid: np.ndarray  # (views, 3) int, image_grid_thw
    ids: np.ndarray  # (questions, length) int32, right-padded prompts
    last: np.ndarray  # (questions,) int32, index of each prompt's last token
    frame_of: np.ndarray  # (questions,) int32, which view (of which frame) each question sees
    target: np.ndarray  # (questions,) int32, index of the labelled answer in answer_ids
    template: list[str]  # (questions,) template name
    answer: list[str]  # (questions,) labelled answer
    # (questions, 3) float32: the scene's geometry behind the answer, where it has one (the
    # nozzle tip's offset from the crosshair, dx, dy, distance, in units / GEOMETRY_SCALE),
    # else NaN: an auxiliary target that teaches where things are, not just YES or NO
    geometry: np.ndarray
    # (views, 4) float32: where the scene drew its key points in each view (the nozzle tip's
    # centre, then the crosshair's, x and y in image-token cells of 28 pixels), else NaN
    points: np.ndarray


@dataclass(frozen=True)
class Tables:
    """Everything a helper process needs to encode frames and questions like the engine."""

    pixels: QwenPixels  # the engine's exact pixel prep (the processor's numbers, bytes first)
    views: dict[str, View]  # template -> the view of the frame it is asked about
    prompts: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, ...]]
    answer_ids: tuple[int, ...]  # the first token of each answer (one answer set for all)
    targets: dict[tuple[str, str], int]  # (template, answer) -> index into answer_ids
    templates: tuple[str, ...]
    length: int
    caps: dict[str, int] = field(default_factory=dict)  # per batch: at most N of each answer
    # Templates with a free-text parameter (part_marking's marking): the prompt text with a
    # sentinel per parameter, tokenized per question with the model's own tokenizer (its JSON,
    # so helper processes can rebuild it), the image placeholder expanded to `image_tokens`.
    free: dict[str, str] = field(default_factory=dict)
    tokenizer_json: str = ""
    image_token: int = 0
    image_tokens: int = 0
    # Templates whose geometry target is the offset between their two drawn key points, in
    # the view's image-token cells (polarity_mark: the cue from the body's centre): a relation
    # the answer depends on, which the YES/NO label alone teaches slowly or not at all.
    relate: frozenset[str] = frozenset()
    # Templates whose view is mirrored by a corner parameter (`Template.mirror`): its name
    mirrors: dict[str, str] = field(default_factory=dict)

    def mirroring(self, template: str, params: dict[str, str]) -> tuple[bool, bool]:
        """(left-right, top-bottom) as `Template.mirroring` gives for these values."""
        mirror = self.mirrors.get(template)
        return (False, False) if mirror is None else corner_mirroring(params[mirror])

    def prompt_ids(self, template: str, params: dict[str, str]) -> tuple[int, ...]:
        """The question's token ids, exactly as the Inspector makes them."""
        key = (template, tuple(sorted(params.items())))
        ids = self.prompts.get(key)
        if ids is not None:
            return ids
        if template not in self.free:
            raise KeyError(f"no prompt for {template} {params}")
        return _free_prompt(self, template, key[1])


_SENTINEL = "\x00{}\x00"  # a parameter's place in a free template's prompt text
_TOKENIZERS: dict[int, Any] = {}  # per process: the tokenizer rebuilt from a Tables' JSON
_FREE_IDS: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, ...]] = {}


def _param_sets(template: Any) -> list[dict[str, str]]:
    """Every parameter combination of a template whose parameters all have fixed choices."""
    combos: list[dict[str, str]] = [{}]
    for name, param in template.params.items():
        if not param.choices:
            raise ValueError(f"template {template.name!r}: parameter {name!r} has no fixed choices")
        combos = [{**c, name: v} for c in combos for v in param.choices]
    return combos


def _free_prompt(tables: Tables, template: str, params: tuple[tuple[str, str], ...]) -> tuple:
    key = (template, params)
    ids = _FREE_IDS.get(key)
    if ids is None:
        from tokenizers import Tokenizer

        tokenizer = _TOKENIZERS.get(id(tables))
        if tokenizer is None:
            tokenizer = _TOKENIZERS[id(tables)] = Tokenizer.from_str(tables.tokenizer_json)
        text = tables.free[template]
        for name, value in params:
            text = text.replace(_SENTINEL.format(name), value)
        raw = tokenizer.encode(text, add_special_tokens=False).ids
        at = raw.index(tables.image_token)
        ids = tuple(raw[:at] + [tables.image_token] * tables.image_tokens + raw[at + 1 :])
        if len(ids) > tables.length:
            raise ValueError(f"a {template} prompt of {len(ids)} tokens exceeds {tables.length}")
        if len(_FREE_IDS) > 100_000:
            _FREE_IDS.clear()
        _FREE_IDS[key] = ids
    return ids


def build_tables(
    inspector: Any,
    templates: Sequence[str],
    length: int,
    frame_sizes: Sequence[tuple[int, int]],
    caps: dict[str, int] | None = None,
    relate: Sequence[str] = (),
) -> Tables:
    """Prompt ids, answer tokens and image settings for `templates`, from the Inspector itself.
    `length`: every prompt is right-padded to it (0: to the longest prompt). Every view must
    give one image token count at every camera size in `frame_sizes` (one compiled step)."""
    from pnp_vision.inspect import Question

    adapter = inspector.adapter
    pixels = QwenPixels.from_processor(inspector.processor.image_processor)
    if pixels is None:
        raise ValueError("training needs the Qwen image processor that QwenPixels reproduces")
    views: dict[str, View] = {}
    counts = set()
    for name in templates:
        t = inspector.templates.get(name)
        views[name] = (t.roi, t.max_pixels, t.view)
        for width, height in frame_sizes:
            probe = np.zeros((height, width, 3), np.uint8)
            image = imageprep.prepare(
                probe, template_roi=t.roi, max_pixels=t.max_pixels, view_size=t.view
            )
            counts.add(adapter.preprocess(image, t.max_pixels).n_image_tokens)
    if len(counts) != 1:
        raise ValueError(f"learned templates' views must give one image token count: {counts}")
    n_tokens = counts.pop()
    tokenizer = inspector.processor.tokenizer
    prompts: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, ...]] = {}
    targets: dict[tuple[str, str], int] = {}
    answer_ids: tuple[int, ...] | None = None
    free: dict[str, str] = {}
    free_room = 0  # tokens a free parameter may add (at most one per character)
    for name in templates:
        plan = inspector.answer_plan(name)
        if not plan.one_pass:
            raise ValueError(f"template {name!r}: answers share a first token; not trainable")
        tokens = tuple(int(t) for t in plan.first_tokens)
        if answer_ids is not None and set(tokens) != set(answer_ids):
            raise ValueError(f"template {name!r}: answers {plan.answers} differ from the others'")
        answer_ids = answer_ids or tokens
        for answer, token in zip(plan.answers, tokens, strict=True):
            targets[(name, answer)] = answer_ids.index(token)
        template = inspector.templates.get(name)
        if any(not p.choices for p in template.params.values()):
            sentinels = {n: _SENTINEL.format(n) for n in template.params}
            free[name] = _render(inspector, name, sentinels)
            room = sum(p.max_length or 64 for p in template.params.values())
            base = len(tokenizer.encode(free[name], add_special_tokens=False))
            free_room = max(free_room, base + room + n_tokens)
            continue
        for params in _param_sets(template):
            text = inspector.prompt(Question(template=name, params=params))
            ids = list(tokenizer.encode(text, add_special_tokens=False))
            at = ids.index(adapter.image_token_id)
            ids = ids[:at] + [adapter.image_token_id] * n_tokens + ids[at + 1 :]
            prompts[(name, tuple(sorted(params.items())))] = tuple(ids)
    longest = max([free_room, *map(len, prompts.values())])
    if length and longest > length:
        raise ValueError(f"prompt of {longest} tokens exceeds the batch length {length}")
    return Tables(
        pixels, views, prompts, answer_ids or (), targets,
        tuple(templates), length or longest, dict(caps or {}), free,
        tokenizer.backend_tokenizer.to_str() if free else "", adapter.image_token_id, n_tokens,
        frozenset(relate),
        {n: m for n in templates if (m := inspector.templates.get(n).mirror) is not None},
    )  # fmt: skip


def _render(inspector: Any, name: str, params: dict[str, str]) -> str:
    """The Inspector's prompt text for `name` with these parameter values, unchecked (the
    sentinels are no valid values)."""
    template = inspector.templates.get(name)
    question = template.question
    for key, value in params.items():
        question = question.replace("{" + key + "}", value)
    messages = inspector.adapter.messages(template.system, question)
    return inspector.processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )


def encode_image(
    tables: Tables, bgr: np.ndarray, view: View, mirror: tuple[bool, bool] = (False, False)
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel indices, image_grid_thw) exactly as the engine's Qwen adapter prepares `bgr`;
    `pixel_values` expands the indices to what the model sees."""
    roi, max_pixels, view_size = view
    image = imageprep.prepare(
        bgr, template_roi=roi, max_pixels=max_pixels, view_size=view_size, mirror=mirror
    )
    px = tables.pixels
    kwargs = {}
    if max_pixels is not None:  # the adapter's rule, kept in step by the parity test
        kwargs["max_pixels"] = min(max_pixels, px.max_pixels)
        kwargs["min_pixels"] = min(px.min_pixels, kwargs["max_pixels"])
    return px.indices(image, **kwargs)


def pixel_values(tables: Tables, batch: Batch) -> np.ndarray:
    """The batch's pixel_values (views * patches, patch_dim) float32, as the processor gives."""
    return tables.pixels.expand(batch.pixels)


def make_batch(tables: Tables, frames: list[tuple[np.ndarray, dict[str, Any]]]) -> Batch:
    """One batch from rendered (image, labels) pairs; prompts right-padded to `tables.length`."""
    pixels, grids = [], []
    ids, last, frame_of, target, template, answer = [], [], [], [], [], []
    geometry, points = [], []
    taken: dict[tuple[str, str], int] = {}
    for bgr, label in frames:
        kept = []
        for q in label["questions"]:
            if q["template"] not in tables.templates:
                continue
            key = (q["template"], q["answer"])
            if taken.get(key, 0) >= tables.caps.get(q["template"], len(frames)):
                continue  # an easy question asked on every frame of a scene: keep it balanced
            taken[key] = taken.get(key, 0) + 1
            kept.append(q)
        # the views the kept questions look at (a template's view, mirrored as its question
        # asks), each encoded once
        seen: dict[tuple[View, tuple[bool, bool]], int] = {}
        drawn = {
            tables.views[t]: p for t, p in label.get("points", {}).items() if t in tables.views
        }
        asks = [(tables.views[q["template"]], tables.mirroring(q["template"], q["params"]))
                for q in kept]  # fmt: skip
        for view, mirror in dict.fromkeys(asks):
            pv, grid = encode_image(tables, bgr, view, mirror)
            seen[(view, mirror)] = len(grids)
            pixels.append(pv)
            grids.append(grid)
            located = drawn.get(view) if not any(mirror) else None  # (unmirrored views only)
            points.append(_view_points(located, bgr.shape, view, grid))
        for q, ask in zip(kept, asks, strict=True):
            seq = tables.prompt_ids(q["template"], q["params"])
            ids.append(list(seq) + [0] * (tables.length - len(seq)))
            last.append(len(seq) - 1)
            frame_of.append(seen[ask])
            target.append(tables.targets[(q["template"], q["answer"])])
            template.append(q["template"])
            answer.append(q["answer"])
            offset = label.get("geometry", {}).get(q["template"])
            if offset is None and q["template"] in tables.relate:
                view, mirror = ask
                drawn_here = label.get("points", {}).get(q["template"])
                dx, dy, far = _relation(drawn_here, bgr.shape, view, grids[seen[ask]])
                geometry.append([-dx if mirror[0] else dx, -dy if mirror[1] else dy, far])
            else:
                geometry.append(_geometry(offset))
    if not ids:
        raise EmptyBatch(f"none of {len(frames)} frames asks {', '.join(tables.templates)}")
    return Batch(
        pixels=np.concatenate(pixels),
        grid=np.concatenate(grids),
        ids=np.array(ids, dtype=np.int32),
        last=np.array(last, dtype=np.int32),
        frame_of=np.array(frame_of, dtype=np.int32),
        target=np.array(target, dtype=np.int32),
        template=template,
        answer=answer,
        geometry=np.array(geometry, dtype=np.float32),
        points=np.array(points, dtype=np.float32).reshape(-1, 4),
    )


TOKEN_CELL = 28  # pixels of the processed image one image token covers (14-pixel patches, 2x2)


def _view_points(
    drawn: Sequence[float] | None, shape: tuple[int, ...], view: View, grid: np.ndarray
) -> list[float]:
    """Key points drawn at frame pixel coordinates (x, y, x, y) in the view's image-token
    cells, as the model sees them: the view's box of the frame, stretched to the processed
    image (grid * 14 pixels); token cell (i, j) spans [j, j + 1) x [i, i + 1)."""
    roi, _, view_size = view
    if drawn is None or view_size is None:  # (a template without a view: not located)
        return [float("nan")] * 4
    height, width = shape[:2]
    left, top, right, bottom = view_box((width, height), roi, view_size)
    sx = int(grid[0][2]) * 14 / (right - left) / TOKEN_CELL
    sy = int(grid[0][1]) * 14 / (bottom - top) / TOKEN_CELL
    xs, ys = np.asarray(drawn[0::2]), np.asarray(drawn[1::2])
    # pixel k's centre is k + 0.5 in continuous coordinates, where the box's scale applies
    cells = np.column_stack([(xs + 0.5 - left) * sx, (ys + 0.5 - top) * sy])
    return np.ravel(cells).tolist()


def _relation(
    drawn: Sequence[float] | None, shape: tuple[int, ...], view: View, grid: np.ndarray
) -> list[float]:
    """The first key point's offset from the second (dx, dy, distance) in the view's token
    cells (`Tables.relate`); NaN where the frame drew none (a classic chip)."""
    if drawn is None or len(drawn) < 4:
        return [float("nan")] * 3
    x1, y1, x2, y2 = _view_points(drawn[:4], shape, view, grid)
    dx, dy = x1 - x2, y1 - y2
    return [dx, dy, float(np.hypot(dx, dy))]


GEOMETRY_SCALE = 20.0  # units: offsets of 0-40 units become targets of 0-2


def _geometry(offset: Sequence[float] | None) -> list[float]:
    if offset is None:
        return [float("nan")] * 3
    dx, dy = offset
    return [v / GEOMETRY_SCALE for v in (dx, dy, float(np.hypot(dx, dy)))]
