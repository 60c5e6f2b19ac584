"""`pnp-vision demo`, the README's main job, run exactly as a person runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from pnp_vision.config import PROJECT_ROOT

TEMPLATES = (
    "nozzle_alignment",
    "part_on_nozzle",
    "part_marking",
    "polarity_mark",
    "tombstone",
    "feeder_pocket_empty",
)


def test_demo_answers_every_template_on_live_frames_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("demo ")]
    assert {row[3] for row in rows} == set(TEMPLATES), out
    for row in rows:
        assert row[5] in ("YES", "NO"), row  # an answer, never an error
        assert 0.5 <= float(row[6]) <= 1.0, row  # probability of the winning answer
        assert row[8] in ("yes", "NO", "-"), row  # whether the model learned the template
        assert row[9] in ("yes", "NO", "-"), row  # whether the view looked familiar
        assert row[10] in ("YES", "NO"), row  # the recording's true label for that frame
        if "NO" in (row[8], row[9]):  # untrained, or an unfamiliar view: never confident
            assert row[7] == "no", row
    answered = re.search(r"(\d+)/(\d+) questions answered on live frames", out)
    assert answered and answered.group(1) == answered.group(2) == str(len(rows)), out
    assert "exit codes 0, 0" in out
    assert "FAILED" not in out
    # A cold start is not silent: each step is printed as it is reached, before the table.
    assert out.index("worker up, loading the model") < out.index("ready in")


def test_demo_skips_a_users_template_it_cannot_fill_and_says_so(tmp_path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    (prompts / "reel_lot.toml").write_text(
        'name = "reel_lot"\ndescription = "Does the reel label show lot {lot}?"\n'
        'question = "Does the reel label show lot {lot}? Answer YES or NO."\n'
        '[params.lot]\ntype = "string"\npattern = "^[0-9]{6}$"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PNP_VISION_PROMPTS_DIR": str(prompts)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped reel_lot: no labelled frame and no example value" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("demo ")]
    assert {row[3] for row in rows} == set(TEMPLATES)
