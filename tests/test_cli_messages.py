"""What a person sees when a command meets a mistake: one line that names its cause.

Each case is a mistake a new user made from the README (issue 29): recording a camera the
capture daemon does not publish, a text file given as `--image`, `ask --json` failing, `eval` on
a folder that is not there, `label` fed from a pipe, `eval` of a template the model never
learned. Commands run as the user runs them: `pnp-vision` in process (or as a real process where
it installs signal handlers or reads stdin), against real sockets and the bundled model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pnp_vision.cli import main
from pnp_vision.config import PROJECT_ROOT

DEMO = PROJECT_ROOT / "recordings" / "demo"
MODEL = PROJECT_ROOT / "models" / "pnp-inspector"
NOBODY = "ipc:///tmp/pnpv-nobody-listens.sock"


def _one_error_line(err: str, command: str, code: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pnp-vision {command}: error [{code}]: "), err
    return lines[0]


def _run(*argv: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )


def test_record_of_a_camera_capture_does_not_publish_names_those_it_does(tmp_path: Path) -> None:
    """At once (the first-frame wait is 10 minutes here), not "is capture running?"."""
    from pnp_vision.capture.cameras import CameraConfig
    from pnp_vision.capture.daemon import CaptureDaemon

    endpoint = f"ipc://{tmp_path}/f.sock"  # the socket file goes with the test's folder
    demo = CameraConfig(name="demo", source=str(DEMO), loop=True, fps=20)
    with CaptureDaemon([demo], endpoint):
        done = _run(
            "record", "--camera", "nozzle", "--out", str(tmp_path / "rec"), "--frames", "1",
            "--endpoint", endpoint, "--timeout", "600",
        )  # fmt: skip
    assert done.returncode == 2
    line = _one_error_line(done.stderr, "record", "unknown_camera")
    assert f"camera 'nozzle' is not published at {endpoint};" in line
    assert "publishes demo " in line
    assert not (tmp_path / "rec").exists()


def test_a_text_file_as_image_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Before anything is sent: the worker is never asked (none listens here)."""
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    argv = ["ask", "demo", "tombstone", "--image", str(text), "--endpoint", NOBODY]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, "ask", "bad_request")
    assert line.endswith(
        f"image file {text}: cannot decode image bytes (14 bytes, starting b'not a pi'):"
        " not a PNG or JPEG image"
    )
    assert "BytesIO" not in line


def test_ask_json_errors_are_json_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["ask", "demo", "tombstone", "--json", "--endpoint", NOBODY, "--retries", "0"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    reply = json.loads(out)
    assert reply["ok"] is False and reply["error"]["code"] == "no_worker"
    assert NOBODY in reply["error"]["message"] and err == ""
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    assert main([*argv, "--image", str(text)]) == 2
    reply = json.loads(capsys.readouterr().out)
    assert reply["error"]["code"] == "bad_request" and str(text) in reply["error"]["message"]


def test_eval_on_a_missing_folder_says_the_folder_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Not "labels.jsonl: no label file", and before the model loads."""
    missing = tmp_path / "rec-later"
    assert main(["eval", "--model", str(MODEL), "--recording", str(missing)]) == 4
    line = _one_error_line(capsys.readouterr().err, "eval", "folder_not_found")
    assert line.endswith(f"recording folder {missing} does not exist")


def _three_nozzle_frames(folder: Path) -> list[dict]:
    folder.mkdir()
    rows = [json.loads(line) for line in (DEMO / "index.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "nozzle_tip" in r["file"]][:3]
    for row in rows:
        shutil.copy(DEMO / row["file"], folder / row["file"])
    (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_label_from_a_pipe_prompts_one_per_line_and_writes_no_empty_scene(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rows = _three_nozzle_frames(rec)
    # the first frame was labelled before, by a tool that knew its scene
    asked = [{"template": "part_on_nozzle", "params": {}, "answer": "NO"}]
    first = {"seq": rows[0]["seq"], "file": rows[0]["file"], "scene": "nozzle_tip"}
    first["questions"] = asked
    (rec / "labels.jsonl").write_text(json.dumps(first) + "\n")
    done = _run(
        "label", "--recording", str(rec), "--template", "nozzle_alignment", "--no-crops",
        stdin="y\nn\nyes\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    prompts = [line for line in lines if "nozzle_alignment?" in line]
    assert prompts == ["nozzle_alignment? "] * 3  # each alone on its line
    assert sum(line.startswith("[") for line in lines) == 3
    labels = [json.loads(line) for line in (rec / "labels.jsonl").read_text().splitlines()]
    given = [q["answer"] for f in labels for q in f["questions"] if q not in asked]
    assert given == ["YES", "NO", "YES"]
    assert labels[0]["scene"] == "nozzle_tip"  # kept where it is known
    assert all("scene" not in f for f in labels[1:])  # never "scene": ""


def test_eval_coverage_of_an_untrained_template_agrees_with_its_summary(
    capsys: pytest.CaptureFixture,
) -> None:
    """The bundled model did not learn polarity_mark: the summary says 0.0% confident and
    wrong, and so does every row of its bar table, which says why."""
    argv = ["eval", "--model", str(MODEL), "--recording", str(DEMO)]
    assert main([*argv, "--template", "polarity_mark"]) == 0
    out = capsys.readouterr().out
    header, _, row = out.split("\n\n")[1].splitlines()[:3]
    summary = dict(
        zip(re.split(r"  +", header.strip()), re.split(r"  +", row.strip()), strict=True)
    )
    assert summary["trained"] == "NO" and summary["conf. wrong"] == "0.0%"
    table = out.split("polarity_mark: bar")[1].split("\n\n")[0].splitlines()[2:]
    bars = [line.split() for line in table if line[:1].isdigit()]
    assert len(bars) >= 5
    assert all(cells[1] == "0.0%" and cells[3] == "0.0%" for cells in bars), table
    assert "polarity_mark: not trained, never confident at any bar" in table
