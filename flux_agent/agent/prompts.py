"""Every prompt the agent sends, in one place, versioned.

Prompts are plain functions from data to chat messages so tests can render
them and assert on what a model will see. Change `PROMPT_VERSION` whenever the
wording changes: runs record it, and training data built from runs depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from flux_agent.agent.models import PlanStep, StepRecord
from flux_agent.backends.base import Message
from flux_agent.templates.model import ThoughtTemplate

PROMPT_VERSION = "2"

NAVIGATOR_SYSTEM = (
    "You are a math navigator. You do not solve problems; you plan how to solve them "
    "by choosing techniques (templates) from a library and ordering them into steps. "
    "Reply with JSON only."
)

_SOLVER_SYSTEM = (
    "You are a careful math solver. You carry out one step of a plan, following the "
    "given technique exactly, and report the result."
)


def _candidate_lines(candidates: Sequence[ThoughtTemplate]) -> str:
    return "\n".join(f"- {t.id} ({t.name})" for t in candidates)


def _done_lines(records: Sequence[StepRecord]) -> str:
    if not records:
        return "(none yet)"
    lines = []
    for record in records:
        value = f" (checked value: {record.value})" if record.value else ""
        lines.append(f"Step {record.index + 1} [{record.template_id}]: {record.result}{value}")
    return "\n".join(lines)


def plan_messages(
    problem: str, candidates: Sequence[ThoughtTemplate], max_steps: int
) -> list[Message]:
    """Ask the navigator for a template trajectory."""
    user = (
        f"Templates you may use:\n{_candidate_lines(candidates)}\n\n"
        f"Problem:\n{problem}\n\n"
        f"Plan at most {max_steps} steps; use as few as the problem needs (often one). For "
        "each step give the template_id and its goal: what the step must find for this "
        "problem, in your own words (for example 'Find the sum of the roots from the "
        "coefficients'). "
        'Reply as JSON: {"analysis": "...", "steps": [{"template_id": "...", "goal": "..."}]}'
    )
    return [{"role": "system", "content": NAVIGATOR_SYSTEM}, {"role": "user", "content": user}]


def step_messages(
    problem: str,
    template: ThoughtTemplate,
    goal: str,
    done: Sequence[StepRecord],
    feedback: str | None = None,
    with_example: bool = True,
) -> list[Message]:
    """Ask the solver to work one step out in free text (its result comes next, as JSON)."""
    warning = (
        "The worked example above is a different problem: do not reuse its numbers.\n\n"
        if with_example
        else ""
    )
    user = (
        f"Technique to use:\n{template.render(with_example=with_example)}\n\n"
        f"{warning}"
        f"Problem to solve:\n{problem}\n\n"
        f"Results so far:\n{_done_lines(done)}\n\n"
        f"Your step's goal: {goal}\n\n"
        "Apply the technique's steps to the problem to solve, with its own numbers. Work "
        "only this step, briefly, and end with a line 'Result: ...'."
    )
    if feedback:
        user += f"\n\nYour previous attempt was rejected: {feedback}\nTry again."
    return [{"role": "system", "content": _SOLVER_SYSTEM}, {"role": "user", "content": user}]


def step_result_message() -> Message:
    """After the free-text step, ask for its result and a checkable formula as JSON."""
    return {
        "role": "user",
        "content": "Now report that step as JSON. 'result': the value or short fact you "
        "found. 'expression': a sympy formula built from the problem's own numbers that "
        "computes the result (use ** for powers, Rational(a, b) for fractions, and "
        "functions such as sqrt, binomial, factorial, gcd, solve), or an empty string if "
        'nothing can be computed. Reply as JSON: {"result": "...", "expression": "..."}',
    }


def revise_messages(
    problem: str,
    candidates: Sequence[ThoughtTemplate],
    done: Sequence[StepRecord],
    failed: StepRecord,
    remaining: Sequence[PlanStep],
    max_steps: int,
) -> list[Message]:
    """Ask the navigator to rewrite the rest of the trajectory after a failed step."""
    planned = "\n".join(f"- {s.template_id}: {s.goal}" for s in remaining) or "(nothing)"
    user = (
        f"Problem:\n{problem}\n\n"
        f"Steps that worked:\n{_done_lines(done)}\n\n"
        f"This step failed: [{failed.template_id}] {failed.goal}\n"
        f"Why: {failed.check_detail or failed.check}\n\n"
        f"The remaining plan was:\n{planned}\n\n"
        f"Templates you may use:\n{_candidate_lines(candidates)}\n\n"
        f"Write a new plan for the rest of the solution, at most {max_steps} steps, starting "
        "with a step that replaces the failed one. "
        'Reply as JSON: {"analysis": "...", "steps": [{"template_id": "...", "goal": "..."}]}'
    )
    return [{"role": "system", "content": NAVIGATOR_SYSTEM}, {"role": "user", "content": user}]


def answer_messages(problem: str, done: Sequence[StepRecord]) -> list[Message]:
    """Ask the solver for the final answer from the step results."""
    user = (
        f"Problem:\n{problem}\n\n"
        f"Results of the solution steps:\n{_done_lines(done)}\n\n"
        "State the final answer to the problem, as short as possible (a number, an "
        'expression or a list), with no words. Reply as JSON: {"answer": "..."}'
    )
    return [{"role": "system", "content": _SOLVER_SYSTEM}, {"role": "user", "content": user}]


def repair_message(error: str) -> Message:
    """Feed a validation error back after an invalid structured reply."""
    return {
        "role": "user",
        "content": f"That reply was not valid: {error}\nReply again with only the JSON object.",
    }
