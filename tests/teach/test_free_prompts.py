"""A template with a free-text parameter (part_marking's marking) trains on the very token ids
the Inspector asks with, for any value, including in a helper process (tokenizer rebuilt)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

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
