"""Reload without downtime, with real processes: capture + worker, a steady request stream, and
reloads (request and SIGHUP) to the same and to another model folder named in a changed config.

The worker reads its model folder from a config folder of this test (PNP_VISION_CONFIG_DIR, no
--model option), so rewriting the TOML and reloading is exactly what an integrator does.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pnp_vision.client import Inspection, VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import PnpVisionError, UnknownTemplate
from pnp_vision.stack.launch import ServiceStack, service_stack

NEW_TEMPLATE = """name = "tip_on_part"
description = "A template added while the worker runs."
question = "Is the nozzle tip centred on the part? Answer YES or NO."
"""


def _write_config(folder: Path, **values: Path | str | dict[str, Path]) -> None:
    lines = [f'{key} = "{value}"' for key, value in values.items() if not isinstance(value, dict)]
    for key, table in values.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f'{name} = "{path}"' for name, path in table.items())]
    (folder / "service.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def folders(run_dir: Path) -> dict[str, Path]:
    config = run_dir / "config"
    prompts = run_dir / "prompts"
    config.mkdir()
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    return {"config": config, "prompts": prompts, "outcomes": run_dir / "outcomes"}


@pytest.fixture(scope="module")
def models(tiny_model_dir: Callable[[str], Path]) -> dict[str, Path]:
    return {"qwen": tiny_model_dir("qwen2_5_vl"), "mllama": tiny_model_dir("mllama")}


@pytest.fixture(scope="module")
def configure(folders: dict[str, Path]) -> Callable[..., None]:
    def write(model: Path, **more: Path | str | dict[str, Path]) -> None:
        _write_config(
            folders["config"],
            model_dir=model,
            prompts_dir=folders["prompts"],
            outcomes_dir=folders["outcomes"],
            **more,
        )

    return write


@pytest.fixture(scope="module")
def reload_stack(
    run_dir: Path, folders: dict[str, Path], models: dict[str, Path], configure: Callable
) -> Iterator[ServiceStack]:
    configure(models["qwen"])
    with service_stack(
        model_dir=None,
        worker_env={"PNP_VISION_CONFIG_DIR": str(folders["config"])},
        run_dir=run_dir,
    ) as running:
        yield running


@pytest.fixture
def vc(reload_stack: ServiceStack) -> Iterator[VisionClient]:
    with VisionClient(reload_stack.requests_endpoint, timeout=120.0, retries=0) as c:
        yield c


@dataclass
class Stream:
    """A controller asking without pause on its own thread; every outcome is kept."""

    endpoint: str
    answers: list[Inspection] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        with VisionClient(self.endpoint, timeout=30.0, retries=0) as client:
            while not self.stop.is_set():
                try:
                    got = client.inspect("demo", "nozzle_alignment", deadline=20.0)
                except PnpVisionError as exc:
                    with self.changed:
                        self.failures.append(f"{exc.code}: {exc}")
                        self.changed.notify_all()
                    continue
                with self.changed:
                    self.answers.append(got)
                    self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 120.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate() or bool(self.failures), timeout), (
                f"stream did not get there in {timeout} s: {len(self.answers)} answers"
            )
        assert not self.failures, self.failures

    def generations(self) -> list[int]:
        return [a.model.generation for a in self.answers if a.model is not None]


def test_zero_failed_requests_while_the_worker_swaps_models(
    reload_stack: ServiceStack,
    vc: VisionClient,
    folders: dict[str, Path],
    models: dict[str, Path],
    configure: Callable,
) -> None:
    stream = Stream(reload_stack.requests_endpoint)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        stream.wait_for(lambda: len(stream.answers) >= 5)
        # 1: a new template and the same folder, by request; the worker did not know it before.
        (folders["prompts"] / "tip_on_part.toml").write_text(NEW_TEMPLATE)
        with pytest.raises(UnknownTemplate):
            vc.inspect("demo", "tip_on_part")
        first = vc.reload()
        assert first.model.path == str(models["qwen"])
        assert "tip_on_part" in first.templates and "tip_on_part" in first.checked
        assert vc.inspect("demo", "tip_on_part").model == first.model
        before = len(stream.answers)
        stream.wait_for(lambda: len(stream.answers) >= before + 5)

        # 2: another model folder named in the changed config, by SIGHUP.
        configure(models["mllama"])
        reload_stack.worker.send_signal(signal.SIGHUP)
        stream.wait_for(lambda: max(stream.generations()) >= first.model.generation + 1)
        before = len(stream.answers)
        stream.wait_for(lambda: len(stream.answers) >= before + 5)
    finally:
        stream.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert not stream.failures, stream.failures
    identities = [a.model for a in stream.answers]
    assert all(m is not None for m in identities)
    generations = stream.generations()
    assert generations == sorted(generations), "an answer from an older model after a newer one"
    start = generations[0]
    assert set(generations) == {start, start + 1, start + 2}
    last = identities[-1]
    assert last is not None and last.path == str(models["mllama"])
    assert identities[0] is not None and identities[0].path == str(models["qwen"])
    assert identities[0].fingerprint != last.fingerprint
    status = vc.status()
    assert status.model.identity == last
    assert status.reload is not None and status.reload.state == "ok"
    assert status.model.info["model_type"] == "mllama"
    configure(models["qwen"])
    vc.reload()


def test_a_failed_reload_keeps_the_old_model_answering_and_says_why(
    vc: VisionClient, run_dir: Path, models: dict[str, Path], configure: Callable
) -> None:
    before = vc.inspect("demo", "nozzle_alignment").model
    empty = run_dir / "not-a-model"
    empty.mkdir(exist_ok=True)
    configure(empty)
    try:
        with pytest.raises(PnpVisionError) as failed:
            vc.reload()
        assert str(empty) in str(failed.value)
        status = vc.status()
        assert status.ready and status.model.identity == before
        assert status.reload is not None and status.reload.state == "failed"
        assert status.reload.error is not None and str(empty) in status.reload.error
        assert vc.inspect("demo", "nozzle_alignment").model == before
    finally:
        configure(models["qwen"])


def test_a_broken_config_fails_the_reload_not_the_worker(
    vc: VisionClient, folders: dict[str, Path], models: dict[str, Path], configure: Callable
) -> None:
    (folders["config"] / "service.toml").write_text("model_dir = [not toml\n")
    try:
        with pytest.raises(PnpVisionError, match="cannot read settings"):
            vc.reload()
        assert vc.inspect("demo", "nozzle_alignment").answer in ("YES", "NO")
    finally:
        configure(models["qwen"])


def test_outcomes_from_the_controller_label_the_inspected_frame(
    vc: VisionClient, folders: dict[str, Path]
) -> None:
    import cv2

    from pnp_vision.capture.recording import INDEX_NAME
    from pnp_vision.errors import BadRequest
    from pnp_vision.evaluation.labels import load_labels
    from pnp_vision.teach.lora import examples_from_recording

    asked = vc.inspect_many("demo", ["nozzle_alignment", ("polarity_mark", {"corner": "top_left"})])
    first = vc.outcome(asked.id, {0: "YES"})
    later = vc.outcome(asked.id, {1: "NO"})  # the same frame, labelled once more
    assert (later.seq, later.file) == (first.seq, first.file)
    other = vc.outcome(vc.inspect("demo", "tombstone").id, {0: "NO"})
    assert other.seq == first.seq + 1
    for wrong, match in (
        ({0: "MAYBE"}, "not one of YES, NO"),
        ({5: "YES"}, "question 5 does not exist"),
    ):
        with pytest.raises(BadRequest, match=match):
            vc.outcome(asked.id, wrong)
    with pytest.raises(BadRequest, match="no recent inspection"):
        vc.outcome("never-asked", {0: "YES"})

    outcomes = folders["outcomes"]
    labels = {f.seq: f for f in load_labels(outcomes)}
    questions = {
        (q.template, tuple(q.params.items()), q.answer) for q in labels[first.seq].questions
    }
    assert questions == {
        ("nozzle_alignment", (), "YES"),
        ("polarity_mark", (("corner", "top_left"),), "NO"),
    }
    image = cv2.imread(str(outcomes / first.file))
    assert image is not None and image.shape[2] == 3
    assert len((outcomes / INDEX_NAME).read_text().splitlines()) == 2
    # What `pnp-vision train --recording OUTCOMES_DIR` reads.
    assert len(examples_from_recording(outcomes)) == 3


@pytest.fixture(scope="module")
def adapter(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny Qwen base (a few seconds of mlx-vlm training)."""
    import contextlib
    import io

    from pnp_vision.teach import lora

    frames = sorted((PROJECT_ROOT / "recordings" / "demo").glob("*nozzle_tip.png"))[:3]
    examples = [lora.Example(f, "part_on_nozzle", {}, "YES") for f in frames]
    out = tmp_path_factory.mktemp("adapter") / "part_on_nozzle"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lora.train_lora(models["qwen"], examples, out, steps=20, lr=3e-3, seed=0, holdout=0.0)
    return out


def test_adapters_per_template_and_camera_switch_on_one_base(
    vc: VisionClient, models: dict[str, Path], configure: Callable, adapter: Path
) -> None:
    image = sorted((PROJECT_ROOT / "recordings" / "demo").glob("*nozzle_tip.png"))[0]
    both = ["part_on_nozzle", "nozzle_alignment"]
    vc.reload()  # the bare base, for reference
    base = vc.inspect_many("tool", both, image=image)
    assert [r.adapter for r in base.results] == [None, None]
    # Alone, as it will be once its neighbour is routed to an adapter (packing changes rounding).
    alone = vc.inspect("tool", "nozzle_alignment", image=image).result
    configure(
        models["qwen"], adapters={"part_on_nozzle": adapter}, camera_adapters={"top": adapter}
    )
    try:
        loaded = vc.reload()
        assert loaded.adapters == {
            "template:part_on_nozzle": str(adapter),
            "camera:top": str(adapter),
        }
        routed = vc.inspect_many("tool", both, image=image)
        assert [r.adapter for r in routed.results] == [str(adapter), None]
        assert routed.results[0].probabilities != base.results[0].probabilities
        # The question without an adapter is the bare base's answer, bit for bit.
        assert routed.results[1].probabilities == alone.probabilities
        by_camera = vc.inspect_many("top", both, image=image)
        assert [r.adapter for r in by_camera.results] == [str(adapter), str(adapter)]
        assert vc.status().model.adapters == loaded.adapters
    finally:
        configure(models["qwen"])
        vc.reload()


def test_an_adapter_for_another_base_is_a_clear_error_and_the_old_set_stays(
    vc: VisionClient, models: dict[str, Path], configure: Callable, adapter: Path, run_dir: Path
) -> None:
    import json

    from pnp_vision.errors import BadRequest

    foreign = run_dir / "foreign-adapter"
    shutil.copytree(adapter, foreign, dirs_exist_ok=True)
    meta_path = foreign / "pnp_adapter.json"
    meta = json.loads(meta_path.read_text())
    meta["base"] = {"path": "/models/another", "fingerprint": "0123456789abcdef"}
    meta_path.write_text(json.dumps(meta))
    before = vc.inspect("demo", "part_on_nozzle").model
    configure(models["qwen"], adapters={"part_on_nozzle": foreign})
    try:
        # A ConfigError in the worker: `bad_request` on the wire, naming both bases.
        with pytest.raises(BadRequest, match="was made for base /models/another"):
            vc.reload()
        assert vc.inspect("demo", "part_on_nozzle").model == before
    finally:
        configure(models["qwen"])


def test_the_reload_command_swaps_and_status_shows_the_generation(
    reload_stack: ServiceStack, vc: VisionClient
) -> None:
    import json
    import subprocess
    import sys

    before = vc.status().model.identity
    assert before is not None
    command = [sys.executable, "-m", "pnp_vision.cli"]
    endpoint = ["--endpoint", reload_stack.requests_endpoint]
    done = subprocess.run(
        [*command, "reload", *endpoint, "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"]["generation"] == before.generation + 1
    shown = subprocess.run(
        [*command, "status", *endpoint], capture_output=True, text=True, timeout=60
    )
    assert f"generation: {before.generation + 1}" in shown.stdout
    assert "last reload: ok" in shown.stdout
