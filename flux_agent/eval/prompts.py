"""The prompts of the baseline strategies, versioned like the agent's.

The baselines get the same kind of instructions a careful user would write for a
plain model: reason step by step, then state the answer in `\\boxed{}`, so that
answer extraction is the same for every strategy. Change `PROMPT_VERSION` when
the wording changes; run directories record it.
"""

from __future__ import annotations

from flux_agent.backends.base import Message

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


def cot_messages(problem: str) -> list[Message]:
    """Chain of thought: step-by-step reasoning ending in a boxed answer."""
    return [
        {"role": "system", "content": _COT_SYSTEM},
        {"role": "user", "content": problem},
    ]


def thinking_messages(problem: str) -> list[Message]:
    """Budget forcing: a thinking phase with an explicit end marker, then the answer."""
    return [
        {"role": "system", "content": _THINKING_SYSTEM},
        {"role": "user", "content": problem},
    ]


def self_evaluation_messages(problem: str, solution: str) -> list[Message]:
    """Ask the model to grade a candidate solution (best-of-n without log-probabilities)."""
    user = (
        f"Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
        "Check the solution step by step. How likely is its final answer to be correct? "
        'Reply as JSON: {"score": N} with N from 0 (certainly wrong) to 10 (certainly right).'
    )
    return [
        {"role": "system", "content": "You are a strict grader of math solutions."},
        {"role": "user", "content": user},
    ]
