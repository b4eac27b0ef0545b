"""The data a solve produces: plans, step results, revisions and the final `SolveResult`.

`Plan`, `StepResult` and `FinalAnswer` are what the models must return; their
JSON schemas are sent to the backends for constrained decoding (see
`plan_schema`, which also pins template ids to the ones offered). The other
models are records the agent writes itself.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flux_agent.backends.base import Usage


class PlanStep(BaseModel):
    """One step of a template trajectory: which template, to reach which sub-goal."""

    template_id: str = Field(description="Id of the template this step applies.")
    goal: str = Field(min_length=1, max_length=300, description="The sub-goal, in one sentence.")


class Plan(BaseModel):
    """The navigator's template trajectory for a problem."""

    analysis: str = Field(max_length=400, description="What the problem asks, in one sentence.")
    steps: list[PlanStep] = Field(min_length=1)


class StepResult(BaseModel):
    """The solver's report on a step it has just worked out in free text.

    Reasoning stays free text (a separate call before this one): forcing a small
    model to reason inside a JSON string costs accuracy and gets cut off.
    """

    result: str = Field(max_length=200, description="What the step found (a value or a fact).")
    expression: str = Field(
        default="",
        max_length=200,
        description="Optional sympy expression computing the result, e.g. binomial(8, 3).",
    )


class FinalAnswer(BaseModel):
    """The final answer, as short as possible."""

    answer: str = Field(min_length=1, max_length=120)

    @field_validator("answer")
    @classmethod
    def _has_content(cls, value: str) -> str:
        if not re.search(r"[A-Za-z0-9]", value):
            raise ValueError("the answer must contain a number, letter or expression")
        return value


CheckStatus = Literal["verified", "mismatch", "error", "unchecked", "failed"]


class StepRecord(BaseModel):
    """A step as it was executed and checked."""

    index: int
    template_id: str
    goal: str
    reasoning: str = ""
    result: str = ""
    expression: str = ""
    value: str | None = Field(default=None, description="The expression's exact value (LaTeX).")
    check: CheckStatus = "unchecked"
    check_detail: str = ""
    attempts: int = 1


class Revision(BaseModel):
    """The navigator rewrote the remaining trajectory after a step."""

    after_step: int
    reason: str
    old_steps: list[PlanStep]
    new_steps: list[PlanStep]


class RoleUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def add(self, usage: Usage) -> RoleUsage:
        return RoleUsage(
            prompt_tokens=self.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self.completion_tokens + usage.completion_tokens,
            calls=self.calls + usage.calls,
        )


class SolveResult(BaseModel):
    """Everything a solve produced."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    problem: str
    status: Literal["answered", "failed", "interrupted"]
    answer: str | None
    verified: bool = Field(description="The answer equals a value the checker computed exactly.")
    verification: str = ""
    expected: str | None = None
    correct: bool | None = Field(
        default=None, description="Equivalent to `expected` (Math-Verify)."
    )
    plan: Plan | None
    steps: list[StepRecord]
    revisions: list[Revision]
    usage: dict[str, RoleUsage]
    llm_calls: int
    timings: dict[str, float] = Field(description="Seconds spent per node, summed, and 'total'.")
    failures: list[str]


class RunSummary(BaseModel):
    """One line of the run store's listing."""

    run_id: str
    problem: str
    status: Literal["answered", "failed", "interrupted"]
    answer: str | None
    verified: bool
    steps: int = Field(description="Steps carried out so far.")
    updated_at: str | None = Field(description="When the last checkpoint was written (ISO 8601).")


def plan_schema(template_ids: list[str], max_steps: int) -> dict[str, Any]:
    """The Plan schema with template ids pinned to those offered and a step limit.

    Constraining the ids in the schema means even a tiny navigator can only name
    templates that exist; the step limit keeps it from rambling.
    """
    schema = Plan.model_json_schema()
    step = schema["$defs"]["PlanStep"]["properties"]["template_id"]
    step["enum"] = list(template_ids)
    schema["properties"]["steps"]["maxItems"] = max_steps
    return schema
