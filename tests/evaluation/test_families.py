"""The evaluation families: valid make_recording command lines, and the summary table."""

from __future__ import annotations

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.families import COMMON, FAMILIES, table
from pnp_vision.devtools.make_recording import build_parser, variation_of


def test_every_family_is_a_valid_command_line_and_documented() -> None:
    docs = (PROJECT_ROOT / "docs" / "evaluation.md").read_text()
    seeds = set()
    for name, args in FAMILIES.items():
        parsed = build_parser().parse_args([*COMMON, *args, "--out", "x"])
        assert not variation_of(parsed).check(), name
        seeds.add(parsed.seed)
        assert f"--out eval/{name} " in docs, name  # the docs list the same families
    assert len(seeds) == len(FAMILIES)  # a new seed for each
    assert not seeds & {0, 1_000_003}  # never the training or held-out stream


def test_table_shows_accuracy_confident_wrong_ece_and_untrained() -> None:
    def stats(acc: float, cw: float, ece: float | None, trained: bool | None) -> dict:
        return {
            "accuracy": acc, "confident_wrong_share": cw, "ece": ece, "questions": 10,
            "trained": trained,
        }  # fmt: skip

    reports = {
        "base": {"templates": {"tombstone": stats(0.97, 0.004, 0.021, True)}},
        "shift26": {
            "templates": {
                "tombstone": stats(0.5, 0.3, None, True),
                "part_marking": stats(0.5, 0.0, 0.4, False),
            }
        },
    }
    lines = table(reports).splitlines()
    assert lines[0] == "| family | part_marking | tombstone |"
    assert lines[2] == "| base | - | 97.0 / 0.4 / 0.021 (n=10) |"
    assert (
        lines[3] == "| shift26 | 50.0 / 0.0 / 0.400 (n=10) (untrained) | 50.0 / 30.0 / - (n=10) |"
    )


def test_run_evaluates_a_family_with_the_shipped_model(tmp_path) -> None:
    """`families.run` is `pnp-vision eval --json` per family: one small family, the real model."""
    from pnp_vision.devtools.families import run
    from pnp_vision.devtools.make_recording import main as make_recording

    folder = tmp_path / "tiny"
    args = ["--out", str(folder), "--frames", "6", "--seed", "9009", "--size", "160x120"]
    assert make_recording([*args, "--png-level", "1"]) == 0
    reports = run(PROJECT_ROOT / "models" / "pnp-inspector", {"tiny": folder}, 0.8)
    templates = reports["tiny"]["templates"]
    assert sum(s["questions"] for s in templates.values()) >= 6
    assert {"nozzle_alignment", "tombstone"} <= set(templates)


def test_make_scales_a_family_and_keeps_its_first_frames(tmp_path) -> None:
    """`--scale 2` records twice the frames of the same stream (the first half unchanged), and
    a recording of the wrong length is made anew rather than reused."""
    from pnp_vision.devtools.families import make

    labels = make(tmp_path, ["tiny"])["tiny"] / "labels.jsonl"
    once = labels.read_text().splitlines()
    assert len(once) == int(COMMON[1])
    twice = (make(tmp_path, ["tiny"], scale=2)["tiny"] / "labels.jsonl").read_text().splitlines()
    assert len(twice) == 2 * len(once)
    assert twice[: len(once)] == once
