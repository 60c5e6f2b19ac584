"""What an inspection returns: pydantic models that go on the wire unchanged."""

from __future__ import annotations

from pydantic import Field

from pnp_vision.config import StrictModel


class Timings(StrictModel):
    """Milliseconds spent for one answer.

    Work shared by the questions asked about one image in one call (image prep, the vision
    tower, the system + image prefix) is split evenly between them, so the `total_ms` of the
    results of one call add up to the call's own time. On GPUs the language pass is queued
    while the vision tower runs, so `vision_ms` lasts until the host has queued it and found
    the image features ready, and `language_ms` is what runs after; their sum is the model time.
    """

    prep_ms: float = Field(ge=0, description="Decode, crop, resize, processor.")
    vision_ms: float = Field(ge=0, description="Vision tower.")
    language_ms: float = Field(ge=0, description="Language model: prefix share + question.")
    total_ms: float = Field(ge=0, description="prep + vision + language.")


class InspectionResult(StrictModel):
    template: str
    params: dict[str, str]
    question: str = Field(description="The rendered question text.")
    answer: str = Field(description="The most probable allowed answer.")
    probabilities: dict[str, float] = Field(
        description="Every allowed answer's probability (softmax over the answer set; sums to 1)."
    )
    confident: bool = Field(
        description="The (calibrated) answer probability >= the configured minimum confidence,"
        " the model folder did not say it never learned the template, and the view is not"
        " unfamiliar to it."
    )
    trained: bool | None = Field(
        None,
        description="Whether the model folder learned this template (its calibration.json);"
        " None: the folder does not say. An untrained template is never confident.",
    )
    familiar: bool | None = Field(
        None,
        description="Whether the view looks like the template's training views to the model"
        " (familiarity <= 1); None: the folder has no familiarity statistic for it. An"
        " unfamiliar answer is never confident.",
    )
    familiarity: float | None = Field(
        None,
        ge=0,
        description="The view's distance from the template's training views, as a multiple of"
        " the threshold fitted on held-out in-look views (1.0: the bar).",
    )
    timings: Timings
