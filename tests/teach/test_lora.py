"""LoRA fine-tuning with mlx-vlm's trainer on the tiny real-architecture models (CPU).

Each architecture is trained once per module (a few seconds): three demo nozzle frames, asked
two questions each, labelled per question (`part_on_nozzle` YES, `nozzle_alignment` NO), so the
adapter has something to learn that the base does not answer. Every figure is measured through
the real Inspector.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pnp_vision.errors import ConfigError
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect import adapters as inspect_adapters
from pnp_vision.teach import lora

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "recordings" / "demo"
KINDS = ("qwen2_5_vl", "mllama")
STEPS = 60
LR = 3e-3


def _examples(answers: tuple[str, str] = ("YES", "YES")) -> list[lora.Example]:
    """Three nozzle frames, both nozzle questions. Both templates see the same view of the
    frame (prompts/: the middle half), so a tiny model tells them apart only by their text:
    the default labels agree, and what is tested is that the adapter moves answers."""
    frames = sorted(DEMO.glob("*nozzle_tip.png"))[:3]
    held, aligned = answers
    return [lora.Example(f, "part_on_nozzle", {}, held) for f in frames] + [
        lora.Example(f, "nozzle_alignment", {}, aligned) for f in frames
    ]


def _quiet_train(*args: object, **kwargs: object) -> lora.LoraReport:
    """mlx-vlm's trainer reports every step through tqdm: kept out of the test log."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return lora.train_lora(*args, **kwargs)


@dataclass
class Trained:
    kind: str
    model_dir: Path
    inspector: Inspector
    examples: list[lora.Example]
    base_probabilities: list[float]
    report: lora.LoraReport


@pytest.fixture(scope="module", params=KINDS)
def trained(request, tiny_model_dir, prompts_dir, tmp_path_factory) -> Trained:
    kind = request.param
    model_dir = tiny_model_dir(kind)
    inspector = Inspector(model_dir, TemplateSet.load(prompts_dir))
    examples = _examples()
    before = lora.label_probabilities(inspector, examples)
    out = tmp_path_factory.mktemp(f"adapter-{kind}")
    report = _quiet_train(
        model_dir, examples, out, steps=STEPS, lr=LR, seed=0, holdout=0.0, inspector=inspector
    )
    return Trained(kind, model_dir, inspector, examples, before, report)


def _answers(inspector: Inspector) -> list[dict[str, float]]:
    """Full probabilities of several questions on several frames (packed and cached paths)."""
    frames = sorted(DEMO.glob("*.png"))[:4]
    questions = [
        Question(template="part_on_nozzle"),
        Question(template="nozzle_alignment"),
        Question(template="polarity_mark", params={"corner": "top_left"}),
    ]
    out = []
    for frame in frames:
        image = lora._image(frame)
        out.extend(r.probabilities for r in inspector.inspect(image, questions))
    return out


def test_loss_falls(trained: Trained) -> None:
    losses = trained.report.losses
    assert len(losses) == STEPS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_adapter_moves_answers_toward_the_labels(trained: Trained) -> None:
    inspector = trained.inspector
    assert lora.label_probabilities(inspector, trained.examples) == trained.base_probabilities
    inspect_adapters.load_adapter(inspector.model, trained.report.adapter_dir, trained.model_dir)
    try:
        after = lora.label_probabilities(inspector, trained.examples)
    finally:
        inspect_adapters.unload_adapter(inspector.model)
    before = trained.base_probabilities
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    # the labels' probability nears 1; what the base gave them depends on its random weights,
    # which follow the template files' bytes (the tiny tokenizer is trained on them)
    miss_before, miss_after = (1 - sum(p) / len(p) for p in (before, after))
    assert sum(after) / len(after) > 0.9 and miss_after < 0.1 * miss_before, (before, after)


def test_adapter_folder_records_its_base_and_templates(trained: Trained) -> None:
    folder = trained.report.adapter_dir
    assert (folder / inspect_adapters.WEIGHTS_FILE).is_file()
    assert (folder / "adapter_config.json").is_file()  # mlx-vlm's own settings
    meta = json.loads((folder / inspect_adapters.META_FILE).read_text())
    assert meta["base"]["fingerprint"] == inspect_adapters.base_fingerprint(trained.model_dir)
    assert meta["base"]["path"] == str(trained.model_dir.resolve())
    assert meta["templates"] == ["nozzle_alignment", "part_on_nozzle"]
    assert meta["report"]["losses"] == trained.report.losses
    assert trained.report.train_examples == len(trained.examples)


def test_load_switch_unload_leave_base_answers_bit_identical(
    trained: Trained, tmp_path: Path
) -> None:
    inspector, model = trained.inspector, trained.inspector.model
    base = _answers(inspector)
    other = _quiet_train(
        trained.model_dir,
        _examples(("NO", "NO")),
        tmp_path / "opposite",
        steps=5,
        lr=LR,
        seed=1,
        holdout=0.0,
        inspector=inspector,
    )
    assert _answers(inspector) == base  # training leaves the base as it found it

    inspect_adapters.load_adapter(model, trained.report.adapter_dir, trained.model_dir)
    adapted = _answers(inspector)
    assert adapted != base
    assert inspect_adapters.unload_adapter(model)
    assert _answers(inspector) == base
    assert not inspect_adapters.unload_adapter(model)  # nothing left to unload

    adapters = inspect_adapters.AdapterSet(
        model,
        trained.model_dir,
        {"held": trained.report.adapter_dir, "opposite": other.adapter_dir},
    )
    assert _answers(inspector) == base  # reading adapters leaves none active
    assert adapters.for_template("part_on_nozzle") == "held"
    adapters.activate("held")
    assert _answers(inspector) == adapted  # same numbers as loading that folder alone
    adapters.activate("opposite")
    opposite = _answers(inspector)
    assert opposite not in (base, adapted)
    adapters.activate(None)
    assert _answers(inspector) == base
    adapters.activate("held")
    assert _answers(inspector) == adapted
    with pytest.raises(ConfigError, match="unknown adapter 'nope'"):
        adapters.activate("nope")
    adapters.activate(None)
    assert _answers(inspector) == base


def test_an_adapter_for_another_base_is_a_clear_error(
    trained: Trained, tiny_model_dir, tmp_path: Path
) -> None:
    other_kind = next(k for k in KINDS if k != trained.kind)
    other_dir = tiny_model_dir(other_kind)
    model = trained.inspector.model
    with pytest.raises(ConfigError) as caught:
        inspect_adapters.load_adapter(model, trained.report.adapter_dir, other_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert str(trained.model_dir.resolve()) in message and str(other_dir) in message
    assert not inspect_adapters.unload_adapter(model)  # nothing was applied
    with pytest.raises(ConfigError, match="not a pnp-vision adapter folder"):
        inspect_adapters.load_adapter(model, tmp_path, trained.model_dir)


def test_the_training_forward_sees_what_inference_sends(trained: Trained) -> None:
    """Logits of mlx-vlm's forward on a training batch (image preprocessed, prompt rendered and
    answer appended by lora.py) give the Inspector's answer probabilities at the prompt's end."""
    import mlx.core as mx
    from mlx_vlm.trainer.vlm.sft.runtime import forward_vlm_logits

    inspector = trained.inspector
    adapter = lora._adapter(inspector)
    for example in trained.examples[::3]:
        row = lora._row(inspector, adapter, example)
        batch = next(lora._iterate_batches([row], 1, 10_000))
        ids = batch["input_ids"]
        logits = forward_vlm_logits(inspector.model, ids[:, :-1], None, batch)
        plan = inspector.answer_plan(example.template)
        first = mx.array([seq[0] for seq in plan.sequences])
        probs = mx.softmax(logits[0, row.answer_from - 1][first]).tolist()
        question = Question(template=example.template, params=example.params)
        result = inspector.inspect(lora._image(example.image), [question])[0]
        expected = [result.probabilities[a] for a in plan.answers]
        assert probs == pytest.approx(expected, abs=1e-4)
        supervised = batch["completion_mask"][0].tolist()
        assert supervised == [0] * row.answer_from + [1] * (len(row.ids) - row.answer_from)


def test_examples_come_from_a_recordings_labels() -> None:
    examples = lora.examples_from_recording(DEMO)
    lines = [json.loads(line) for line in (DEMO / "labels.jsonl").read_text().splitlines()]
    assert len(examples) == sum(len(line["questions"]) for line in lines)
    assert all(Path(e.image).is_file() for e in examples)
    only = lora.examples_from_recording(DEMO, templates=["tombstone"])
    assert only and {e.template for e in only} == {"tombstone"}
    train, held = lora.split_heldout(examples, 0.2, seed=3)
    frames = {str(e.image) for e in examples}
    held_frames = {str(e.image) for e in held}
    assert len(held_frames) == round(0.2 * len(frames)) and len(train) + len(held) == len(examples)
    assert not held_frames & {str(e.image) for e in train}  # no frame on both sides
    assert lora.split_heldout(examples, 0.2, seed=3) == (train, held)


def test_a_bad_label_is_refused_before_training(trained: Trained, tmp_path: Path) -> None:
    bad = [*trained.examples, lora.Example(trained.examples[0].image, "tombstone", {}, "MAYBE")]
    with pytest.raises(ConfigError, match="'MAYBE' is not one of template 'tombstone'"):
        lora.train_lora(trained.model_dir, bad, tmp_path, steps=1, inspector=trained.inspector)
    assert not (tmp_path / inspect_adapters.WEIGHTS_FILE).exists()


def test_held_out_accuracy_is_measured_before_and_after(trained: Trained, tmp_path: Path) -> None:
    examples = lora.examples_from_recording(DEMO, templates=["part_on_nozzle"])[:6]
    report = _quiet_train(
        trained.model_dir,
        examples,
        tmp_path,
        steps=3,
        lr=LR,
        holdout=0.34,
        inspector=trained.inspector,
    )
    assert report.heldout_examples == 2 and report.train_examples == 4
    assert report.accuracy_before in (0.0, 0.5, 1.0)
    assert report.accuracy_after in (0.0, 0.5, 1.0)
    assert "held-out (2) accuracy" in report.summary()


@pytest.mark.parametrize("merge", [False, True], ids=["low-rank", "merged"])
@pytest.mark.parametrize("trained", ["qwen2_5_vl"], indirect=True)  # the one fused architecture
def test_adapters_reach_the_fused_compiled_path(
    trained: Trained, prompts_dir: Path, monkeypatch: pytest.MonkeyPatch, merge: bool
) -> None:
    """GPUs run Qwen through fused q/k/v and gate/up weights in a compiled pass, which would
    bypass LoRA layers: forced on here (a runtime with compile on), the adapter is folded into
    that pass and its answers must match the plain path's; switching adapters must not
    retrace, and unloading must give the fused base's answers back bit for bit."""
    import dataclasses

    from pnp_vision.inspect.models.qwen2_5_vl import language
    from pnp_vision.inspect.runtime import setup_runtime

    adapted_plain = []
    inspect_adapters.load_adapter(
        trained.inspector.model, trained.report.adapter_dir, trained.model_dir
    )
    try:
        adapted_plain = _answers(trained.inspector)
    finally:
        inspect_adapters.unload_adapter(trained.inspector.model)
    traces = []  # decoder_pass runs in Python only while mx.compile traces it
    real = language.decoder_pass
    monkeypatch.setattr(language, "decoder_pass", lambda *a, **k: traces.append(1) or real(*a, **k))
    compiled = dataclasses.replace(setup_runtime(), compile=True, merge_adapters=merge)
    fused = Inspector(trained.model_dir, TemplateSet.load(prompts_dir), runtime=compiled)
    assert language.fused(fused.model.language_model) is not None
    base = _answers(fused)
    assert traces  # the compiled fused pass ran
    inspect_adapters.load_adapter(fused.model, trained.report.adapter_dir, trained.model_dir)
    adapted = _answers(fused)
    for got, want in zip(adapted, adapted_plain, strict=True):
        assert got == pytest.approx(want, abs=1e-4)
    lm = fused.model.language_model
    folded = language._ADAPTER.get(lm)  # folded into the pass
    assert language.fused(lm) is not None and folded is not None
    assert (folded.merged is not None, folded.lora is not None) == (merge, not merge)
    inspect_adapters.unload_adapter(fused.model)
    assert language.fused(lm) is not None and language._ADAPTER.get(lm) is None
    assert _answers(fused) == base

    folder = trained.report.adapter_dir
    adapters = inspect_adapters.AdapterSet(
        fused.model, trained.model_dir, {"one": folder, "two": folder}
    )
    adapters.activate("one")
    assert _answers(fused) == adapted
    traced = len(traces)
    adapters.activate("two")  # another adapter of the same shape: new inputs, same trace
    assert _answers(fused) == adapted and len(traces) == traced
    adapters.activate(None)
    assert _answers(fused) == base


def test_a_padded_batch_gives_each_row_its_own_logits(trained: Trained, tmp_path: Path) -> None:
    """Two prompts of different lengths in one right-padded batch (Qwen2.5-VL); mllama's
    forward cannot batch several images, so it refuses batch_size > 1 up front."""
    import mlx.core as mx
    from mlx_vlm.trainer.vlm.sft.runtime import forward_vlm_logits

    inspector = trained.inspector
    frame = trained.examples[0].image
    pair = [
        lora.Example(frame, "part_on_nozzle", {}, "YES"),
        lora.Example(frame, "polarity_mark", {"corner": "top_left"}, "NO"),
    ]
    if trained.kind == "mllama":
        with pytest.raises(ConfigError, match="batch_size 1"):
            lora.train_lora(
                trained.model_dir, pair, tmp_path, steps=1, batch_size=2, inspector=inspector
            )
        return
    adapter = lora._adapter(inspector)
    rows = [lora._row(inspector, adapter, e) for e in pair]
    assert len({len(r.ids) for r in rows}) == 2
    batch = next(lora._iterate_batches(rows, 2, 10_000))
    logits = forward_vlm_logits(inspector.model, batch["input_ids"][:, :-1], None, batch)
    for i in range(2):
        ids = batch["input_ids"][i].tolist()
        row = next(r for r in rows if ids[: len(r.ids)] == r.ids)
        alone = next(lora._iterate_batches([row], 1, 10_000))
        single = forward_vlm_logits(inspector.model, alone["input_ids"][:, :-1], None, alone)
        at = row.answer_from - 1
        assert mx.allclose(logits[i, at], single[0, at], atol=1e-4).item()
    report = _quiet_train(
        trained.model_dir,
        pair * 2,
        tmp_path,
        steps=2,
        batch_size=2,
        holdout=0.0,
        inspector=inspector,
    )
    assert len(report.losses) == 2 and all(loss > 0 for loss in report.losses)
