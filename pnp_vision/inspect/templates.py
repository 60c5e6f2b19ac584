"""Inspection templates: `prompts/*.toml`, validated at load, rendered only from checked values.

A parameter value is checked against its declared type, pattern, choices and length before it
goes anywhere near a prompt: a value outside them is a `BadParams` naming the value, never text
pasted into the question.

    name = "part_marking"
    description = "..."
    question = "Does the part marking read {marking}? Answer YES or NO."
    answers = ["YES", "NO"]           # optional, default YES/NO; any small set of labels
    system = "..."                    # optional system text
    max_pixels = 200704               # optional pixel budget for this question
    roi = [0.25, 0.25, 0.5, 0.5]      # optional crop (x, y, w, h) as fractions of the frame
    view = [112, 84]                  # optional: the ROI resized to exactly this, any camera
    mirror = "corner"                 # optional: a corner parameter the view is mirrored by

    [params.marking]
    type = "string"                   # or "integer"
    pattern = "^[A-Z0-9][A-Z0-9-]{0,15}$"
    max_length = 16
"""

from __future__ import annotations

import re
import string
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from pnp_vision.config import StrictModel
from pnp_vision.errors import BadParams, ConfigError, FolderNotFound, UnknownTemplate
from pnp_vision.protocol.base import one_line

DEFAULT_SYSTEM = (
    "You inspect camera images from a pick-and-place machine. "
    "Reply with exactly one of the allowed answers."
)
_NAME = r"^[a-z][a-z0-9_]{0,63}$"
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
_LABEL = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


def corner_mirroring(corner: str) -> tuple[bool, bool]:
    """(left-right, top-bottom): the mirroring that makes `corner` the top left."""
    return corner.endswith("right"), corner.startswith("bottom")


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"


class Question(StrictModel):
    """One question about an image: a template name and its parameter values."""

    template: str = Field(description="Template name, e.g. nozzle_alignment.")
    params: dict[str, str] = Field(default_factory=dict, description="Template parameters.")


class Param(StrictModel):
    type: ParamType = Field(ParamType.STRING, description="Value type.")
    description: str = Field("", description="What the value means, for `templates` listings.")
    pattern: str | None = Field(None, description="Regular expression the whole value must match.")
    choices: list[str] | None = Field(None, min_length=1, description="The allowed values.")
    max_length: int = Field(32, ge=1, le=256, description="Longest allowed value.")
    minimum: int | None = Field(None, description="Smallest integer (type integer).")
    maximum: int | None = Field(None, description="Largest integer (type integer).")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _constrained(self) -> Param:
        if self.type is ParamType.STRING and self.pattern is None and self.choices is None:
            raise ValueError("a string parameter needs a pattern or choices")
        return self

    def check(self, name: str, value: str) -> str:
        """The value, if allowed; else BadParams naming it and the rule it breaks."""
        if not isinstance(value, str):
            raise BadParams(f"parameter {name!r}: expected a string, got {type(value).__name__}")
        if len(value) > self.max_length:
            raise BadParams(
                f"parameter {name!r}: value {value[:40]!r}... is {len(value)} characters,"
                f" max {self.max_length}"
            )
        if self.choices is not None and value not in self.choices:
            raise BadParams(
                f"parameter {name!r}: {value!r} is not one of {', '.join(self.choices)}"
            )
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise BadParams(f"parameter {name!r}: {value!r} does not match {self.pattern}")
        if self.type is ParamType.INTEGER:
            if re.fullmatch(r"-?[0-9]+", value) is None:
                raise BadParams(f"parameter {name!r}: {value!r} is not an integer")
            number = int(value)
            if self.minimum is not None and number < self.minimum:
                raise BadParams(f"parameter {name!r}: {number} is below {self.minimum}")
            if self.maximum is not None and number > self.maximum:
                raise BadParams(f"parameter {name!r}: {number} is above {self.maximum}")
        return value


class Template(StrictModel):
    name: str = Field(pattern=_NAME, description="Unique name; the file stem by convention.")
    description: str = Field(description="What the template checks, for people.")
    question: str = Field(min_length=1, description="Question text with {param} placeholders.")
    params: dict[str, Param] = Field(default_factory=dict, description="Declared parameters.")
    answers: list[str] = Field(
        default_factory=lambda: ["YES", "NO"],
        min_length=2,
        max_length=16,
        description="Allowed answers; the model is scored on exactly these.",
    )
    system: str = Field(DEFAULT_SYSTEM, description="System text before the image.")
    max_pixels: int | None = Field(
        None, ge=28 * 28, le=4096 * 4096, description="Pixel budget the image is resized to."
    )
    roi: tuple[float, float, float, float] | None = Field(
        None, description="Crop (x, y, w, h) as fractions of the (camera-cropped) frame."
    )
    view: tuple[int, int] | None = Field(
        None,
        description="Pixels (width, height) the ROI is resized to, at any camera resolution"
        " (its pixel budget; the box keeps the ROI's centre and height: inspect/views.py).",
    )

    mirror: str | None = Field(
        None,
        description="A parameter naming a corner (top_left, top_right, bottom_left,"
        " bottom_right): the view is mirrored so that corner becomes its top left, and the"
        " question is asked about the top left. A question about where something lies is then"
        " one check of the image, whatever corner the caller names (the model never has to"
        " match a word in the question against a place in the image).",
    )
    symmetries: list[Literal["flip_x", "flip_y", "shift", "turn"]] = Field(
        default_factory=list,
        description="Changes of the template's view that never change its answer: mirrorings"
        " (left-right, top-bottom), `shift` (the view moved by up to 15% of its size, for"
        " checks of where things are relative to each other, not to the view) and `turn` (a"
        " quarter turn about the view's centre, for things that may lie either way); fine-tuning"
        " on few labelled frames adds such copies.",
    )

    @field_validator("view")
    @classmethod
    def _view_size(cls, view: tuple[int, int] | None) -> tuple[int, int] | None:
        if view is not None and not all(28 <= v <= 4096 for v in view):
            raise ValueError(f"view {list(view)} must be [width, height], each in 28..4096")
        return view

    @field_validator("answers")
    @classmethod
    def _labels(cls, answers: list[str]) -> list[str]:
        for answer in answers:
            if re.fullmatch(_LABEL, answer) is None:
                raise ValueError(f"answer {answer!r} must match {_LABEL}")
        if len(set(answers)) != len(answers):
            raise ValueError(f"answers {answers} contain duplicates")
        return answers

    @field_validator("roi")
    @classmethod
    def _roi_inside(
        cls, roi: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if roi is not None:
            x, y, w, h = roi
            if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1):
                raise ValueError(f"roi {roi} must be fractions: 0 <= x, y < 1 and 0 < w, h <= 1")
            if x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
                raise ValueError(f"roi {roi} reaches outside the frame (x + w or y + h > 1)")
        return roi

    @model_validator(mode="after")
    def _placeholders_match(self) -> Template:
        fields = {f for _, f, _, _ in string.Formatter().parse(self.question) if f is not None}
        if fields != set(self.params):
            raise ValueError(
                f"question placeholders {sorted(fields)} differ from params {sorted(self.params)}"
            )
        return self

    @model_validator(mode="after")
    def _mirror_is_a_corner(self) -> Template:
        if self.mirror is None:
            return self
        param = self.params.get(self.mirror)
        if param is None or not param.choices or not set(param.choices) <= set(CORNERS):
            raise ValueError(
                f"mirror {self.mirror!r} must name a parameter whose choices are corners"
                f" ({', '.join(CORNERS)})"
            )
        return self

    def mirroring(self, params: dict[str, str]) -> tuple[bool, bool]:
        """(left-right, top-bottom): how the view is mirrored for these (checked) values."""
        return (False, False) if self.mirror is None else corner_mirroring(params[self.mirror])

    def render(self, params: dict[str, str]) -> str:
        """The question with checked parameter values; BadParams on any missing/extra/bad one."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise BadParams(
                f"template {self.name!r}: unknown parameter(s) {', '.join(unknown)};"
                f" expected {', '.join(self.params) or 'none'}"
            )
        missing = sorted(set(self.params) - set(params))
        if missing:
            raise BadParams(f"template {self.name!r}: missing parameter(s) {', '.join(missing)}")
        values = {name: spec.check(name, params[name]) for name, spec in self.params.items()}
        if self.mirror is not None:  # the view is mirrored: the named corner is its top left
            values[self.mirror] = CORNERS[0]
        return self.question.format(**values)


class TemplateSet:
    """The templates of one folder, by name."""

    def __init__(self, templates: dict[str, Template]) -> None:
        self._templates = dict(sorted(templates.items()))

    @classmethod
    def load(cls, directory: Path | list[Path]) -> TemplateSet:
        """Read and validate every `*.toml` in `directory`; ConfigError names the bad file.

        Several folders (the shipped templates, then a rig folder's): a later folder's template
        replaces an earlier one of the same name."""
        folders = [Path(d) for d in directory] if isinstance(directory, list) else [Path(directory)]
        templates: dict[str, Template] = {}
        for folder in folders:
            if not folder.is_dir():
                raise FolderNotFound(f"template folder {folder} does not exist")
            templates.update(_load_folder(folder))
        if not templates:
            where = ", ".join(str(f) for f in folders)
            raise ConfigError(f"template folder {where} has no *.toml templates")
        return cls(templates)

    def names(self) -> list[str]:
        return list(self._templates)

    def get(self, name: str) -> Template:
        try:
            return self._templates[name]
        except KeyError:
            raise UnknownTemplate(
                f"unknown template {name!r}; known: {', '.join(self._templates)}"
            ) from None

    def render(self, question: Question) -> str:
        return self.get(question.template).render(question.params)

    def __iter__(self):
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)


def _load_folder(directory: Path) -> dict[str, Template]:
    templates: dict[str, Template] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            template = Template.model_validate(tomllib.loads(path.read_text()))
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid template: {one_line(exc)}") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: invalid template: {exc}") from exc
        if template.name in templates:
            raise ConfigError(f"{path}: duplicate template name {template.name!r}")
        templates[template.name] = template
    return templates


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`--param key=value` options as a dict (values are checked later, by the template)."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParams(f"--param {pair!r} must look like key=value")
        params[key] = value
    return params
