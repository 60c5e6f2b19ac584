"""`python -m pnp_vision.devtools.train --set NAME=VALUE` gives each field its own type, and a
typo or a value of the wrong kind stops the command with a message instead of training on it."""

from __future__ import annotations

import pytest

from pnp_vision.devtools import train


def test_set_parses_numbers_ranges_and_words() -> None:
    assert train._setting("steps", "5000") == 5000
    assert train._setting("lr", "1e-3") == pytest.approx(0.001)
    assert train._setting("off", "12,26") == (12.0, 26.0)
    assert train._setting("jpeg_quality", "40,90") == (40, 90)
    assert train._setting("compile", "false") is False
    assert train._setting("compile", "yes") is True


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (("stepz", "10"), "no such setting"),
        (("steps", "ten"), "not a valid int"),
        (("mix", "nozzle_tip=2"), "not settable"),
        (("tip_styles", "disc"), "not settable"),
    ],
)
def test_set_refuses_what_it_cannot_parse(item: tuple[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        train._setting(*item)


@pytest.mark.parametrize("argv", [["--set", "steps"], ["--mix", "nozzle_tip"], ["--mix", "a=b"]])
def test_the_command_stops_on_a_malformed_option_before_training(tmp_path, argv) -> None:
    with pytest.raises(SystemExit, match="write"):
        train.main(["--out", str(tmp_path / "m"), *argv])
    assert not (tmp_path / "m").exists()
