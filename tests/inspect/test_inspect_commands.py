"""The `inspect`, `templates` and `dev tiny-model` commands, in process and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pnp_vision.cli import main
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.inspect import InspectionResult

SAMPLE = PROJECT_ROOT / "pnp_vision" / "devtools" / "assets" / "sample_nozzle.png"


def test_templates_lists_names_and_params(capsys):
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    for name in ("nozzle_alignment", "part_marking", "polarity_mark", "feeder_pocket_empty"):
        assert name in out
    assert "param marking (string, matches ^[A-Z0-9][A-Z0-9-]{0,15}$" in out
    assert "param corner (string, one of top_left, top_right, bottom_left, bottom_right" in out
    assert main(["templates", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {t["name"] for t in listed} >= {"tombstone", "part_on_nozzle"}


def test_inspect_json(capsys, tiny_model_dir):
    model = tiny_model_dir("qwen2_5_vl")
    argv = [
        "inspect",
        "--model",
        str(model),
        "--image",
        str(SAMPLE),
        "--template",
        "part_marking",
        "--param",
        "marking=R10K",
        "--json",
    ]
    assert main(argv) == 0
    result = InspectionResult.model_validate_json(capsys.readouterr().out)
    assert result.template == "part_marking" and result.params == {"marking": "R10K"}
    assert set(result.probabilities) == {"YES", "NO"}


@pytest.mark.parametrize(
    ("extra", "code", "fragment"),
    [
        (["--template", "nope"], "unknown_template", "unknown template 'nope'"),
        (
            ["--template", "part_marking", "--param", "marking=bad value"],
            "bad_params",
            "'bad value'",
        ),
        (["--template", "tombstone", "--param", "oops"], "bad_params", "key=value"),
        (["--template", "tombstone", "--roi", "1,2"], "bad_request", "x,y,width,height"),
    ],
)
def test_inspect_errors(capsys, tiny_model_dir, extra, code, fragment):
    argv = ["inspect", "--model", str(tiny_model_dir("mllama")), "--image", str(SAMPLE), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error [{code}]" in err and fragment in err


def test_inspect_missing_image_and_model(capsys, tmp_path, tiny_model_dir):
    argv = ["inspect", "--model", str(tiny_model_dir("mllama")), "--template", "tombstone"]
    assert main([*argv, "--image", str(tmp_path / "no.png")]) == 2
    assert "cannot read image file" in capsys.readouterr().err
    argv = ["inspect", "--model", str(tmp_path / "none"), "--template", "tombstone"]
    assert main([*argv, "--image", str(SAMPLE)]) == 6
    assert "error [model_not_found]: model folder" in capsys.readouterr().err


def test_inspect_as_a_process(tmp_path, tiny_model_dir):
    """The real console path: a fresh interpreter, the human-readable output."""
    model = tiny_model_dir("mllama")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pnp_vision.cli",
            "inspect",
            "--model",
            str(model),
            "--image",
            str(SAMPLE),
            "--template",
            "nozzle_alignment",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("nozzle_alignment: ")
    assert any(line.strip().startswith("YES ") for line in lines)
    assert any(line.strip().startswith("NO ") for line in lines)
    assert "timings: prep" in proc.stdout


def test_dev_tiny_model_copies_a_loadable_folder(capsys, tmp_path):
    out = tmp_path / "tiny"
    assert main(["dev", "tiny-model", "--kind", "qwen2_5_vl", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert main(["dev", "tiny-model", "--kind", "qwen2_5_vl", "--out", str(out)]) == 2
