"""The agent graph, built in one factory.

    START -> plan -> retrieve -> instantiate -> check --next----> instantiate
                        ^                         |--retry---> instantiate
                        |                         |--revise--> revise -> retrieve
                        |                         '--answer--> answer -> END
                        '-- revise

The `check` node makes the decision (it owns the budgets); the routing function
only reads it. Loops are bounded by `AgentSettings`: retries per step, revisions
per run, steps per plan and generated tokens.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from langgraph.graph import END, START, StateGraph

from flux_agent.agent import check, nodes
from flux_agent.agent.state import AgentContext, AgentState

PLAN: Final = "plan"
RETRIEVE: Final = "retrieve"
INSTANTIATE: Final = "instantiate"
CHECK: Final = "check"
REVISE: Final = "revise"
ANSWER: Final = "answer"


def route_after_check(state: AgentState) -> Literal["instantiate", "revise", "answer"]:
    decision = state.get("decision")
    if decision in ("retry", "next"):
        return INSTANTIATE
    if decision == "revise":
        return REVISE
    return ANSWER


def route_after_revise(state: AgentState) -> Literal["retrieve", "instantiate", "answer"]:
    decision = state.get("decision")
    if decision == "revised":
        return RETRIEVE
    # A failed revision keeps the old plan and moves past the failed step.
    return INSTANTIATE if decision == "next" else ANSWER


def build_graph(checkpointer: Any = None) -> Any:
    """Wire the nodes and compile; pass a LangGraph checkpointer to record runs."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node(PLAN, nodes.plan)
    graph.add_node(RETRIEVE, nodes.retrieve)
    graph.add_node(INSTANTIATE, nodes.instantiate_step)
    graph.add_node(CHECK, check.check)
    graph.add_node(REVISE, nodes.revise)
    graph.add_node(ANSWER, nodes.answer)
    graph.add_edge(START, PLAN)
    graph.add_edge(PLAN, RETRIEVE)
    graph.add_edge(RETRIEVE, INSTANTIATE)
    graph.add_edge(INSTANTIATE, CHECK)
    graph.add_conditional_edges(CHECK, route_after_check, [INSTANTIATE, REVISE, ANSWER])
    graph.add_conditional_edges(REVISE, route_after_revise, [RETRIEVE, INSTANTIATE, ANSWER])
    graph.add_edge(ANSWER, END)
    return graph.compile(checkpointer=checkpointer)
