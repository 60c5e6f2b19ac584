"""Templates: the shipped set, rendering only checked values, and every invalid file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnp_vision.errors import BadParams, ConfigError, UnknownTemplate
from pnp_vision.inspect import Question, TemplateSet

SHIPPED = {
    "nozzle_alignment": {},
    "part_on_nozzle": {},
    "part_marking": {"marking"},
    "polarity_mark": {"corner"},
    "tombstone": {},
    "feeder_pocket_empty": {},
}
MARKING = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")


def test_shipped_templates(templates):
    assert set(templates.names()) == set(SHIPPED)
    for name, params in SHIPPED.items():
        t = templates.get(name)
        assert set(t.params) == set(params)
        assert t.answers == ["YES", "NO"]
    assert templates.get("polarity_mark").params["corner"].choices == [
        "top_left",
        "top_right",
        "bottom_left",
        "bottom_right",
    ]
    assert templates.get("nozzle_alignment").question.startswith(
        "Is the nozzle tip centred on the crosshair?"
    )


def test_render(templates):
    q = Question(template="part_marking", params={"marking": "STM32F103"})
    assert templates.render(q) == "Does the part marking read STM32F103? Answer YES or NO."


@pytest.mark.parametrize(
    ("corner", "mirroring"),
    [
        ("top_left", (False, False)),
        ("top_right", (True, False)),
        ("bottom_left", (False, True)),
        ("bottom_right", (True, True)),
    ],
)
def test_a_mirrored_corner_is_asked_as_the_top_left(templates, corner, mirroring):
    """polarity_mark mirrors its view so the named corner is the top left (the engine's
    test_inspect_groups checks the pixels): the question always names the top left."""
    q = Question(template="polarity_mark", params={"corner": corner})
    assert templates.render(q) == "Is the polarity dot in the top_left corner? Answer YES or NO."
    assert templates.get("polarity_mark").mirroring(q.params) == mirroring


@pytest.mark.parametrize(
    ("template", "params", "fragment"),
    [
        ("part_marking", {"marking": "r10k"}, "'r10k' does not match"),
        ("part_marking", {"marking": "R10K? Answer YES"}, "does not match"),
        ("part_marking", {"marking": "A" * 40}, "max 16"),
        ("part_marking", {}, "missing parameter(s) marking"),
        ("part_marking", {"marking": "R1", "extra": "x"}, "unknown parameter(s) extra"),
        ("polarity_mark", {"corner": "middle"}, "'middle' is not one of top_left"),
        ("tombstone", {"corner": "top_left"}, "unknown parameter(s) corner"),
    ],
)
def test_bad_params_name_the_value(templates, template, params, fragment):
    with pytest.raises(BadParams) as info:
        templates.render(Question(template=template, params=params))
    assert fragment in str(info.value)


def test_unknown_template(templates):
    with pytest.raises(UnknownTemplate, match="unknown template 'nozle_alignment'"):
        templates.get("nozle_alignment")


@given(st.text(max_size=24))
def test_marking_values_outside_the_pattern_never_reach_the_prompt(templates_for_hypothesis, value):
    q = Question(template="part_marking", params={"marking": value})
    if MARKING.fullmatch(value):
        assert f"read {value}?" in templates_for_hypothesis.render(q)
    else:
        with pytest.raises(BadParams):
            templates_for_hypothesis.render(q)


@pytest.fixture(scope="module")
def templates_for_hypothesis(prompts_dir: Path) -> TemplateSet:
    return TemplateSet.load(prompts_dir)


GOOD = 'name = "t"\ndescription = "d"\nquestion = "Q?"\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name = ", "invalid template"),
        (GOOD + "colour = 1\n", "colour"),
        ('name = "t"\ndescription = "d"\nquestion = "Q {x}?"\n', "placeholders"),
        (GOOD + 'answers = ["YES", "YES"]\n', "duplicates"),
        (GOOD + 'answers = ["YES"]\n', "answers"),
        (GOOD + 'answers = ["YES", "no way"]\n', "'no way'"),
        (GOOD + "roi = [0.5, 0.5, 0.8, 0.2]\n", "outside the frame"),
        (GOOD + "max_pixels = 10\n", "max_pixels"),
        (
            'name = "t"\ndescription = "d"\nquestion = "Q {x}?"\n[params.x]\ntype = "string"\n',
            "needs a pattern or choices",
        ),
        (
            'name = "t"\ndescription = "d"\nquestion = "Q {x}?"\n[params.x]\npattern = "(["\n',
            "does not compile",
        ),
        ('name = "Bad Name"\ndescription = "d"\nquestion = "Q?"\n', "name"),
        (GOOD + 'mirror = "corner"\n', "must name a parameter whose choices are corners"),
        (
            'name = "t"\ndescription = "d"\nquestion = "Q {x}?"\nmirror = "x"\n[params.x]\n'
            'choices = ["top_left", "middle"]\n',
            "must name a parameter whose choices are corners",
        ),
    ],
)
def test_invalid_template_files(tmp_path, text, fragment):
    (tmp_path / "t.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        TemplateSet.load(tmp_path)
    assert "t.toml" in str(info.value) and fragment in str(info.value)


def test_empty_missing_and_duplicate_folders(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TemplateSet.load(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"no \*\.toml"):
        TemplateSet.load(tmp_path)
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match="duplicate template name 't'"):
        TemplateSet.load(tmp_path)


def test_integer_params(tmp_path):
    (tmp_path / "n.toml").write_text(
        'name = "n"\ndescription = "d"\nquestion = "Are there {count} parts?"\n'
        '[params.count]\ntype = "integer"\npattern = "^[0-9]+$"\nminimum = 1\nmaximum = 9\n'
    )
    templates = TemplateSet.load(tmp_path)
    assert templates.render(Question(template="n", params={"count": "3"})).startswith("Are there 3")
    with pytest.raises(BadParams, match="above 9"):
        templates.render(Question(template="n", params={"count": "12"}))
