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
        " and the model folder did not say it never learned the template."
    )
    trained: bool | None = Field(
        None,
        description="Whether the model folder learned this template (its calibration.json);"
        " None: the folder does not say. An untrained template is never confident.",
    )
    timings: Timings
