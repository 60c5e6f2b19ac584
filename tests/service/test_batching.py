"""The MLX thread's batches (`service/batching.py`) on a real tiny model and a real LoRA adapter:
what the queue hands over, and that a batch answers every job as it would be answered alone:
adapter routes grouped, a job past its deadline not started, a bad job failing alone.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import Path

import cv2
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import DeadlineExceeded, ImageError
from pnp_vision.inspect import Inspector, TemplateSet
from pnp_vision.protocol.requests import InspectRequest, QuestionSpec
from pnp_vision.service import batching
from pnp_vision.service.jobs import Job, RequestQueue
from pnp_vision.service.model_thread import AdapterRoutes

FRAMES = sorted((PROJECT_ROOT / "recordings" / "demo").glob("*.png"))


def _job(name: str, templates: list[str], image: bytes, deadline_s: float = 30.0) -> Job:
    now = time.monotonic()
    request = InspectRequest(
        id=name, camera=None, image=True, questions=[QuestionSpec(template=t) for t in templates]
    )
    return Job(
        key=(name, b""),
        envelope=[name.encode()],
        request=request,
        image_bytes=image,
        arrival_wall=time.time(),
        arrival=now,
        deadline=now + deadline_s,
    )


def _png(i: int) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.imread(str(FRAMES[i % len(FRAMES)])))
    assert ok
    return buf.tobytes()


def test_take_batch_hands_over_what_is_ready_up_to_the_limit() -> None:
    queue = RequestQueue(16)
    jobs = [_job(f"j{i}", ["tombstone"], b"") for i in range(5)]
    for job in jobs:
        queue.put(job)
    assert queue.take_batch(3) == jobs[:3]  # the limit
    assert queue.take_batch(16) == jobs[3:]  # what is queued, no waiting for more
    late = _job("late", ["tombstone"], b"")
    first = _job("first", ["tombstone"], b"")
    queue.put(first)

    def put_when_taken() -> None:
        end = time.monotonic() + 10
        while len(queue) and time.monotonic() < end:
            time.sleep(0.001)  # polling a deadline-bounded wait
        queue.put(late)

    helper = threading.Thread(target=put_when_taken)
    helper.start()
    assert queue.take_batch(2, wait_s=30.0) == [first, late]  # joined within the wait
    helper.join()
    stop = threading.Event()
    stop.set()
    assert queue.take_batch(4, until=stop) == []  # a retired generation takes nothing


def test_batches_wait_only_while_requests_come_together() -> None:
    queue = RequestQueue(16)
    batches = batching.Batches(queue, size=8, wait_s=30.0)
    queue.put(_job("alone", ["tombstone"], b""))
    started = time.monotonic()
    assert len(batches.take()) == 1  # after a batch of one (the start): no wait at all
    assert time.monotonic() - started < 10.0
    with pytest.raises(ValueError):
        batching.Batches(queue, size=0, wait_s=0.0)


@pytest.fixture(scope="module")
def routed(tiny_model_dir, tmp_path_factory) -> tuple[Inspector, AdapterRoutes, object]:
    """The tiny Qwen model, and a LoRA adapter (a few seconds of mlx-vlm training) routed to
    part_on_nozzle."""
    from pnp_vision.inspect.adapters import AdapterSet
    from pnp_vision.teach import lora

    base = tiny_model_dir("qwen2_5_vl")
    examples = [lora.Example(f, "part_on_nozzle", {}, "YES") for f in FRAMES[:3]]
    adapter = tmp_path_factory.mktemp("batch-adapter") / "part_on_nozzle"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lora.train_lora(base, examples, adapter, steps=20, lr=3e-3, seed=0, holdout=0.0)
    inspector = Inspector(base, TemplateSet.load(PROJECT_ROOT / "prompts"))
    adapters = AdapterSet(inspector.model, base, {str(adapter): adapter})
    return inspector, AdapterRoutes(templates={"part_on_nozzle": Path(adapter)}), adapters


def test_a_batch_answers_every_job_as_alone(routed) -> None:
    inspector, routes, adapters = routed

    def answer(jobs: list[Job]) -> list:
        return batching.answer(
            inspector, jobs, route=routes.route, activate=adapters.activate, model=None
        )

    asks = [
        ["part_on_nozzle", "nozzle_alignment"],  # two routes in one job
        ["tombstone"],
        ["part_on_nozzle"],
        ["feeder_pocket_empty", "tombstone"],
    ]
    jobs = [_job(f"j{i}", t, _png(i)) for i, t in enumerate(asks)]
    jobs.insert(2, _job("broken", ["tombstone"], b"not an image"))
    jobs.insert(4, _job("late", ["tombstone"], _png(9), deadline_s=-1.0))
    done = batching.answer(
        inspector, jobs, route=routes.route, activate=adapters.activate, model=None
    )
    assert [d.job for d in done] == jobs
    by_id = {d.job.id: d for d in done}
    assert isinstance(by_id["broken"].error, ImageError) and by_id["broken"].ran
    assert isinstance(by_id["late"].error, DeadlineExceeded) and not by_id["late"].ran
    for i, questions in enumerate(asks):
        got = by_id[f"j{i}"]
        assert got.error is None and got.batch == 5  # the live jobs ran together
        (alone,) = answer([_job(f"alone{i}", questions, _png(i))])
        assert alone.batch == 1
        for b, a, template in zip(got.results, alone.results, questions, strict=True):
            assert b.template == template
            assert b.adapter == (routes.route(template, None))
            assert b.adapter == a.adapter
            for answer_name, p in a.probabilities.items():
                assert abs(b.probabilities[answer_name] - p) < 1e-5
