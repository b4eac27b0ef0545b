"""Answer extraction, equivalence, and safe evaluation of model-written maths."""

from flux_agent.verify.answers import extract_answer, normalise_answer
from flux_agent.verify.expressions import ExpressionError, parse_expression
from flux_agent.verify.sandbox import (
    Evaluation,
    Sandbox,
    SandboxError,
    SandboxTimeout,
    default_sandbox,
)

__all__ = [
    "Evaluation",
    "ExpressionError",
    "Sandbox",
    "SandboxError",
    "SandboxTimeout",
    "default_sandbox",
    "extract_answer",
    "normalise_answer",
    "parse_expression",
]
