"""The prompt a rollout sends to the solver: follow a sampled template trajectory, in one pass.

A rollout asks how good a *plan* is, so the solver gets the plan's techniques in
order (cards without worked examples, which small models copy) and writes one chain
of thought ending in `\\boxed{}`: one call per problem, so many plans can be scored.
On the problem the plan was written for, each step also carries the plan's goal; on
a neighbour, only the techniques carry over (ReasonFlux's generalisation test).
Change `PROMPT_VERSION` when the wording changes: rollout files record it.
"""

from __future__ import annotations

from collections.abc import Sequence

from flux_agent.backends.base import Message
from flux_agent.eval.prompts import cot_messages
from flux_agent.templates.model import ThoughtTemplate

PROMPT_VERSION = "1"

PlannedStep = tuple[ThoughtTemplate | None, str | None]
"""A step to follow: its template (None when the plan named an unknown one) and its goal."""


def follow_plan_messages(problem: str, steps: Sequence[PlannedStep]) -> list[Message]:
    """Solve `problem` by following `steps` in order, ending with a boxed answer."""
    (system, _) = cot_messages(problem)
    parts = []
    for number, (template, goal) in enumerate(steps, start=1):
        technique = template.render(with_example=False) if template else "(no technique given)"
        aim = f"\nGoal of this step: {goal}" if goal else ""
        parts.append(f"Step {number}.{aim}\nTechnique:\n{technique}")
    user = (
        "A plan for this problem, one technique per step:\n\n"
        + "\n\n".join(parts)
        + f"\n\nProblem:\n{problem}\n\n"
        "Solve the problem by carrying out the plan's steps in order with the problem's "
        "own numbers."
    )
    return [system, {"role": "user", "content": user}]
