"""`pnp-vision eval` on a held-out recording, run as a person runs it (the CLI entry point)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pnp_vision.cli import main as cli_main
from pnp_vision.errors import ConfigError
from pnp_vision.evaluation.labels import load_labels


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = cli_main(["eval", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize("recording", ["heldout_recording", "even_light_recording"])
def test_trained_model_is_at_least_95_percent_right_on_every_learned_template(
    trained_model: Path,
    learned: list[str],
    recording: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    heldout_recording: Path = request.getfixturevalue(recording)
    only = [arg for name in learned for arg in ("--template", name)]
    code, report = _eval_json(
        capsys,
        "--model",
        str(trained_model),
        "--recording",
        str(heldout_recording),
        "--fail-under",
        "0.95",
        *only,
    )
    assert set(report["templates"]) == set(learned)
    for name, stats in report["templates"].items():
        assert stats["accuracy"] >= 0.95, (name, stats)
        confusion = stats["confusion"]
        assert sum(map(sum, (row.values() for row in confusion.values()))) == stats["questions"]
        assert confusion["YES"]["YES"] + confusion["NO"]["NO"] == stats["correct"]
        assert confusion["YES"]["YES"] + confusion["YES"]["NO"] > 0  # both labels occur
        assert confusion["NO"]["NO"] + confusion["NO"]["YES"] > 0
        assert stats["latency_ms_p50"] <= stats["latency_ms_p95"]
    assert code == 0
    asked = [
        f
        for f in load_labels(heldout_recording)
        if {q.template for q in f.questions} & set(learned)
    ]
    assert report["frames"] == len(asked) > 0 and not report["skipped_frames"]


def test_table_output_and_confidence_bar_override(
    tiny_model_dir: Callable[[str], Path],
    heldout_recording: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The random-weight tiny model is never certain: a bar of 1.0 puts every answer below it,
    # a bar of 0.0 none, and the bar never changes which answer wins.
    args = ["--model", str(tiny_model_dir("qwen2_5_vl")), "--recording", str(heldout_recording)]
    args += ["--template", "tombstone", "--template", "polarity_mark"]
    _, strict = _eval_json(capsys, *args, "--min-confidence", "1.0")
    _, lax = _eval_json(capsys, *args, "--min-confidence", "0.0")
    assert strict["min_confidence"] == 1.0 and lax["min_confidence"] == 0.0
    for name in ("tombstone", "polarity_mark"):
        hard, easy = strict["templates"][name], lax["templates"][name]
        assert hard["below_bar"] == hard["questions"] > 0 and hard["below_bar_share"] == 1.0
        assert easy["below_bar"] == 0 and easy["confident_accuracy"] == easy["accuracy"]
        assert hard["confusion"] == easy["confusion"]
        # nothing clears a bar of 1.0, so nothing is confident and wrong; at 0.0 every miss is
        assert hard["confident_wrong"] == 0
        assert easy["confident_wrong"] == easy["questions"] - easy["correct"]
        assert sum(row["answers"] for row in easy["reliability"]) == easy["questions"]
        assert easy["ece"] == hard["ece"] and 0 <= easy["ece"] <= 1
        at_half = next(row for row in easy["coverage"] if row["bar"] == 0.5)
        assert at_half["coverage"] == 1.0  # two answers: the winner always has >= 0.5
        assert at_half["accuracy"] == pytest.approx(easy["accuracy"])
    assert cli_main(["eval", *args]) == 0
    table = capsys.readouterr().out
    assert "polarity_mark" in table and "below bar" in table and "p95 ms" in table
    assert "conf. wrong" in table and "ECE" in table and "tombstone: bar" in table
    assert "tombstone (true \\ answered)" in table  # the confusion matrix


def test_unreadable_frame_is_skipped_and_listed(
    trained_model: Path, heldout_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "rec"
    shutil.copytree(heldout_recording, copy)
    frames = load_labels(copy)
    (copy / frames[0].file).write_bytes(b"not a png")
    (copy / frames[1].file).unlink()
    _, report = _eval_json(
        capsys, "--model", str(trained_model), "--recording", str(copy), "--template", "tombstone",
        "--template", "nozzle_alignment", "--template", "part_on_nozzle",
    )  # fmt: skip
    assert report["skipped_frames"] == [frames[0].file, frames[1].file]
    assert report["frames"] == sum(
        1
        for f in frames[2:]
        if {q.template for q in f.questions} & {"tombstone", "nozzle_alignment", "part_on_nozzle"}
    )


def test_bad_label_lines_are_errors_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_text(
        '{"seq": 0, "file": "a.png", "questions": []}\n{"seq": 1, "file": "b.png", "oops": 1}\n'
    )
    with pytest.raises(ConfigError, match=r"labels.jsonl:2: invalid label line"):
        load_labels(tmp_path)
    (tmp_path / "unlabelled").mkdir()
    with pytest.raises(ConfigError, match="no label file"):
        load_labels(tmp_path / "unlabelled")
    with pytest.raises(ConfigError, match=r"recording folder .*missing does not exist"):
        load_labels(tmp_path / "missing")


def test_label_outside_the_template_answers_is_an_error(
    trained_model: Path, heldout_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "rec"
    shutil.copytree(heldout_recording, copy)
    lines = (copy / "labels.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["questions"][0]["answer"] = "MAYBE"
    (copy / "labels.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    code = cli_main(["eval", "--model", str(trained_model), "--recording", str(copy)])
    assert code == 3  # config_error
    assert "'MAYBE' is not an answer of template" in capsys.readouterr().err
