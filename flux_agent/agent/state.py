"""Graph state and per-run context.

The state holds only JSON-friendly data (dicts from the pydantic records), so
the SQLite checkpointer can store it and any later reader can load it without
importing our classes. Per-run dependencies (backends, store, settings, the math
sandbox) travel in `AgentContext`, never in the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from flux_agent.backends.base import LLMBackend
from flux_agent.config import AgentSettings
from flux_agent.templates.store import TemplateStore
from flux_agent.verify.sandbox import Sandbox

Decision = Literal["retry", "revise", "revised", "next", "answer"]


class AgentState(TypedDict, total=False):
    """What a solve knows at any point; every key is plain data."""

    problem: str
    expected: str | None
    candidate_ids: list[str]
    plan: dict[str, Any] | None
    step_index: int
    steps: list[dict[str, Any]]
    pending: dict[str, Any] | None
    feedback: str | None
    attempts: int
    decision: Decision
    revisions: list[dict[str, Any]]
    usage: dict[str, dict[str, int]]
    failures: list[str]
    timings: dict[str, float]
    answer: str | None
    verified: bool
    verification: str
    correct: bool | None


@dataclass(frozen=True)
class AgentContext:
    """The run's dependencies, handed to every node by LangGraph's runtime."""

    navigator: LLMBackend
    solver: LLMBackend
    store: TemplateStore
    settings: AgentSettings
    sandbox: Sandbox


def initial_state(problem: str, expected: str | None = None) -> AgentState:
    return AgentState(
        problem=problem,
        expected=expected,
        candidate_ids=[],
        plan=None,
        step_index=0,
        steps=[],
        pending=None,
        feedback=None,
        attempts=0,
        revisions=[],
        usage={},
        failures=[],
        timings={},
        answer=None,
        verified=False,
        verification="",
        correct=None,
    )
