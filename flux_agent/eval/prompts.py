"""The prompts of the baseline strategies, versioned like the agent's.

The baselines get the same kind of instructions a careful user would write for a
plain model: reason step by step, then state the answer in `\\boxed{}`, so that
answer extraction is the same for every strategy. Change `PROMPT_VERSION` when
the wording changes; run directories record it.
"""

from __future__ import annotations

from collections.abc import Sequence

from flux_agent.backends.base import Message
from flux_agent.templates.model import ThoughtTemplate

PROMPT_VERSION = "1"

END_OF_THINKING = "Final Answer:"
"""What budget forcing treats as the end of the thinking phase (s1's delimiter)."""
THINKING_STOPS = (END_OF_THINKING, "Final answer:", "**Final Answer")
"""The spellings of the end marker small models actually write."""

_COT_SYSTEM = (
    "You are a careful mathematician. Solve the problem step by step: say what is "
    "given and what is asked, work through the steps one at a time, and check the "
    "result. End by writing the final answer inside \\boxed{}."
)

_THINKING_SYSTEM = (
    "You are a careful mathematician. Think through the problem step by step, "
    "checking each step. When you are sure, write "
    f"'{END_OF_THINKING}' and then the answer inside \\boxed{{}}."
)


def _chat(system: str, user: str) -> list[Message]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cot_messages(problem: str) -> list[Message]:
    """Chain of thought: step-by-step reasoning ending in a boxed answer."""
    return _chat(_COT_SYSTEM, problem)


def choose_template_messages(problem: str, templates: Sequence[ThoughtTemplate]) -> list[Message]:
    """flux-guided: ask the navigator which retrieved technique fits the problem."""
    options = "\n".join(f"- {t.id}: {t.name}. {t.description}" for t in templates)
    user = (
        f"Problem:\n{problem}\n\nTechniques:\n{options}\n\n"
        "Which technique solves this problem? "
        'Reply as JSON: {"template_id": "..."}'
    )
    return _chat("You choose the right technique for a math problem.", user)


def guided_messages(problem: str, template: ThoughtTemplate) -> list[Message]:
    """flux-guided: chain of thought that follows one technique's steps.

    The worked example is left out: small models copy its numbers.
    """
    user = (
        f"A technique that fits this problem:\n{template.render(with_example=False)}\n\n"
        f"Problem:\n{problem}\n\n"
        "Solve the problem by following the technique's steps with the problem's own numbers."
    )
    return _chat(_COT_SYSTEM, user)


def thinking_messages(problem: str) -> list[Message]:
    """Budget forcing: a thinking phase with an explicit end marker, then the answer."""
    return _chat(_THINKING_SYSTEM, problem)


def self_evaluation_messages(problem: str, solution: str) -> list[Message]:
    """Ask the model to grade a candidate solution (best-of-n without log-probabilities)."""
    user = (
        f"Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
        "Check the solution step by step. How likely is its final answer to be correct? "
        'Reply as JSON: {"score": N} with N from 0 (certainly wrong) to 10 (certainly right).'
    )
    return _chat("You are a strict grader of math solutions.", user)
