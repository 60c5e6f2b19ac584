"""Inspection: templates, image prep, model loading and constrained scoring.

Importing this package does not import mlx: the model is loaded by `Inspector(...)`, after
`setup_runtime()` (which it calls, where the entry point has not) has set up the CPU BLAS.
"""

from pnp_vision.inspect.engine import Inspector
from pnp_vision.inspect.results import InspectionResult, Timings
from pnp_vision.inspect.templates import Param, Question, Template, TemplateSet

__all__ = [
    "InspectionResult",
    "Inspector",
    "Param",
    "Question",
    "Template",
    "TemplateSet",
    "Timings",
]
