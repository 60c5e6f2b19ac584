"""Errors people read: one line naming the file, key or value and what is allowed."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from pnp_vision.config import PROJECT_ROOT, load_settings
from pnp_vision.errors import ConfigError, PnpVisionError


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "pydantic" not in text and "https://" not in text, text
    return text


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"PNP_VISION_QUEUE_SIZE": "abc"}, ["PNP_VISION_QUEUE_SIZE='abc'", "integer"]),
        ({"PNP_VISION_LOG_LEVEL": "LOUD"}, ["PNP_VISION_LOG_LEVEL='LOUD'", "'DEBUG', 'INFO'"]),
        ({"PNP_VISION_COMPUTE_DTYPE": "int8"}, ["'int8'", "'float32', 'bfloat16'"]),
        ({"PNP_VISION_QUEUESIZE": "4"}, ["PNP_VISION_QUEUESIZE", "PNP_VISION_QUEUE_SIZE?"]),
        ({"PNP_VISION_CONECT_TIMEOUT_S": "1"}, ["did you mean PNP_VISION_CONNECT_TIMEOUT_S"]),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(
    env: dict[str, str], needles: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(config_dir=tmp_path, env=env)
    text = _one_line(info.value)
    for needle in needles:
        assert needle in text


def test_settings_accept_any_case_and_name_the_toml_file(tmp_path: Path) -> None:
    settings = load_settings(config_dir=tmp_path, env={"PNP_VISION_LOG_LEVEL": "debug"})
    assert settings.log_level == "DEBUG"
    assert load_settings(config_dir=tmp_path, env={"PNP_VISION_KEEP_MEMORY": "1"})  # not a typo
    (tmp_path / "service.toml").write_text('queue_size = "many"\n')
    with pytest.raises(ConfigError, match=r"service\.toml:1: queue_size='many'"):
        load_settings(config_dir=tmp_path, env={})


def test_a_template_missing_a_field_is_one_line(tmp_path: Path) -> None:
    from pnp_vision.inspect.templates import TemplateSet

    (tmp_path / "t.toml").write_text('name = "t"\nquestion = "Is it {x}? Answer YES or NO."\n')
    with pytest.raises(ConfigError) as info:
        TemplateSet.load(tmp_path)
    text = _one_line(info.value)
    assert "t.toml" in text and "description: Field required" in text


def test_a_bad_labels_line_is_one_line(tmp_path: Path) -> None:
    from pnp_vision.evaluation.labels import load_labels

    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"seq": "x"}) + "\n")
    with pytest.raises(ConfigError) as info:
        load_labels(tmp_path)
    assert f"{path}:1: invalid label line: seq" in _one_line(info.value)


def test_ask_frame_seq_without_seq_is_one_line() -> None:
    from pnp_vision.client import VisionClient

    with (
        VisionClient("ipc:///tmp/pnpv-nobody.sock", timeout=1, retries=0) as client,
        pytest.raises(PnpVisionError) as info,
    ):
        client.inspect("demo", "tombstone", frame="seq")
    assert "`seq` is required with frame='seq'" in _one_line(info.value)


def test_record_interrupted_exits_130_and_keeps_the_frames(tmp_path: Path) -> None:
    """Ctrl-C during `record --frames N`: the frames so far are kept, the exit status says so."""
    endpoint = f"ipc://{tmp_path}/f.sock"
    out = tmp_path / "rec"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind(endpoint)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pnp_vision.cli",
            "record",
            "--camera",
            "c",
            "--out",
            str(out),
            "--frames",
            "100000",
            "--endpoint",
            endpoint,
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seq, end = 0, time.monotonic() + 60
        index = out / "index.jsonl"
        while not (index.exists() and index.read_text().count("\n") >= 2):
            assert time.monotonic() < end and proc.poll() is None, proc.stderr
            header = {
                "version": 1,
                "camera": "c",
                "session": "s",
                "seq": seq,
                "capture_time": time.time(),
                "width": 4,
                "height": 2,
            }
            pub.send_multipart([b"frame.c", json.dumps(header).encode(), b"\x20" * 24])
            seq += 1
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.02)  # paces the loop; returns at once if the recorder exits
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        pub.close(linger=0)
        ctx.term()
    assert proc.returncode == 130, err
    assert "interrupted after" in err
    assert index.read_text().count("\n") >= 2
