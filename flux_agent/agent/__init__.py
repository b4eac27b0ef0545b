"""The template-guided agent: graph state, nodes, routing, `build_graph()` and the runner."""

from flux_agent.agent.graph import build_graph
from flux_agent.agent.models import (
    FinalAnswer,
    Plan,
    PlanStep,
    Revision,
    RoleUsage,
    RunSummary,
    SolveResult,
    StepRecord,
    StepResult,
)
from flux_agent.agent.runner import (
    FluxAgent,
    RunNotFound,
    list_runs,
    load_run,
    validate_problem,
)
from flux_agent.agent.state import AgentContext, AgentState

__all__ = [
    "AgentContext",
    "AgentState",
    "FinalAnswer",
    "FluxAgent",
    "Plan",
    "PlanStep",
    "Revision",
    "RoleUsage",
    "RunNotFound",
    "RunSummary",
    "SolveResult",
    "StepRecord",
    "StepResult",
    "build_graph",
    "list_runs",
    "load_run",
    "validate_problem",
]
