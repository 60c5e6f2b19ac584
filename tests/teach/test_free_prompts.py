"""A template with a free-text parameter (part_marking's marking) trains on the very token ids
the Inspector asks with, for any value, including in a helper process (tokenizer rebuilt)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.teach.batches import Tables, build_tables

MARKINGS = ("STM32F103C8T6", "0805", "NE555", "O0-IB8", "A")


def _ids_in_child(tables: Tables, marking: str, out: mp.Queue) -> None:
    out.put(tables.prompt_ids("part_marking", {"marking": marking}))


@pytest.fixture(scope="module")
def inspector(tiny_model_dir, prompts_dir: Path) -> Inspector:
    return Inspector(tiny_model_dir("qwen2_5_vl"), TemplateSet.load(prompts_dir))


def test_free_text_prompts_match_the_inspector(inspector: Inspector) -> None:
    tables = build_tables(inspector, ["part_marking", "polarity_mark"], 0, [(320, 240)])
    assert "part_marking" in tables.free and "polarity_mark" not in tables.free
    image = inspector.adapter.image_token_id
    for marking in MARKINGS:
        question = Question(template="part_marking", params={"marking": marking})
        ids = inspector.processor.tokenizer.encode(
            inspector.prompt(question), add_special_tokens=False
        )
        at = ids.index(image)
        want = tuple(ids[:at] + [image] * tables.image_tokens + ids[at + 1 :])
        assert tables.prompt_ids("part_marking", {"marking": marking}) == want
        assert len(want) <= tables.length  # the longest marking still fits the batch
    longest = "X" * 16  # the parameter's max_length
    assert len(tables.prompt_ids("part_marking", {"marking": longest})) <= tables.length
    ctx = mp.get_context("spawn")  # as the trainer's helpers: nothing inherited
    out = ctx.Queue()
    child = ctx.Process(target=_ids_in_child, args=(tables, "LM358", out))
    child.start()
    got = out.get(timeout=60)
    child.join(timeout=60)
    assert got == tables.prompt_ids("part_marking", {"marking": "LM358"})


def test_polarity_learns_where_its_cue_is(inspector: Inspector) -> None:
    """`relate`: polarity_mark's geometry target is its cue's offset from the body's centre
    in the view's token cells, in the view the question sees: mirrored so the corner asked
    about is its top left, the offset points to the top left exactly when the answer is YES."""
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.devtools.synthetic_variation import WORLD
    from pnp_vision.teach.batches import make_batch

    names = ["part_marking", "polarity_mark"]
    tables = build_tables(inspector, names, 0, [(640, 480)], relate=["polarity_mark"])
    plain = build_tables(inspector, names, 0, [(640, 480)])
    checked = 0
    for i in range(400):  # few world parts that fit the view legibly carry a corner cue
        if checked >= 3:
            break
        frame = render(i, 808, (640, 480), scenes=["chip"], variation=WORLD)
        batch, before = make_batch(tables, [frame]), make_batch(plain, [frame])
        assert np.isnan(before.geometry).all()  # off unless asked for
        for q, row, template in zip(
            frame[1]["questions"], batch.geometry, batch.template, strict=True
        ):
            assert template == q["template"]
            if template != "polarity_mark":
                assert np.isnan(row).all()
                continue
            dx, dy, distance = row
            assert distance == pytest.approx(np.hypot(dx, dy)) and distance > 0.2
            assert (dx < 0 and dy < 0) == (q["answer"] == "YES"), q
            checked += q["answer"] == "YES"
    assert checked >= 3
