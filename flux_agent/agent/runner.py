"""Running the graph: solve, stream events, resume by run id, read back results.

`FluxAgent` owns the compiled graph's dependencies and a SQLite checkpointer
file; every solve is a LangGraph thread whose id is the run id, so an
interrupted solve can be resumed and a finished one read back.

    agent = FluxAgent(context, runs_path)
    async for event in agent.stream("What is 2 + 2?"):
        ...
    result = await agent.solve("What is 2 + 2?")
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from flux_agent.agent.graph import build_graph
from flux_agent.agent.models import (
    Plan,
    Revision,
    RoleUsage,
    RunSummary,
    SolveResult,
    StepRecord,
)
from flux_agent.agent.state import AgentContext, AgentState, initial_state

Event = dict[str, Any]
MAX_PROBLEM_CHARS = 20_000
_RECURSION_LIMIT = 200


class RunNotFound(KeyError):
    """No run with that id in the run store."""


class FluxAgent:
    """Solves problems with the template-guided graph, recording every run."""

    def __init__(self, context: AgentContext, runs_path: Path) -> None:
        self.context = context
        self.runs_path = Path(runs_path)

    @asynccontextmanager
    async def _graph(self) -> AsyncIterator[Any]:
        self.runs_path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(self.runs_path)) as saver:
            yield build_graph(checkpointer=saver)

    async def stream(
        self, problem: str, *, run_id: str | None = None, expected: str | None = None
    ) -> AsyncIterator[Event]:
        """Solve `problem`, yielding events as they happen; the last is `{"type": "result"}`."""
        problem = validate_problem(problem)
        run_id = run_id or uuid.uuid4().hex[:12]
        async for event in self._run(run_id, initial_state(problem, expected)):
            yield event

    async def resume(self, run_id: str) -> AsyncIterator[Event]:
        """Continue an interrupted run from its last checkpoint (a finished run just reports)."""
        async for event in self._run(run_id, None):
            yield event

    async def solve(
        self,
        problem: str,
        *,
        run_id: str | None = None,
        expected: str | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> SolveResult:
        """Solve and return the result; `on_event` sees every event on the way."""
        return await _last_result(self.stream(problem, run_id=run_id, expected=expected), on_event)

    async def resume_result(
        self, run_id: str, on_event: Callable[[Event], None] | None = None
    ) -> SolveResult:
        return await _last_result(self.resume(run_id), on_event)

    async def get_result(self, run_id: str) -> SolveResult:
        """The recorded result of a run (status `interrupted` if it did not finish)."""
        return await load_run(self.runs_path, run_id)

    async def _run(self, run_id: str, start: AgentState | None) -> AsyncIterator[Event]:
        config = _config(run_id)
        began = time.perf_counter()
        async with self._graph() as graph:
            if start is None:
                snapshot = await graph.aget_state(config)
                if not snapshot.values:
                    raise RunNotFound(run_id)
            yield {"type": "run", "run_id": run_id, "resumed": start is None}
            # durability="sync": each checkpoint is on disk before the next node starts, so
            # a run cancelled at any moment (deadline, closed connection) can be resumed.
            async for mode, payload in graph.astream(
                start,
                config,
                context=self.context,
                stream_mode=["custom", "updates"],
                durability="sync",
            ):
                if mode == "custom":
                    yield payload
                else:
                    for node in payload:
                        yield {"type": "node_finished", "node": node}
            snapshot = await graph.aget_state(config)
        result = result_from_state(run_id, snapshot.values, finished=not snapshot.next)
        result.timings["total"] = round(time.perf_counter() - began, 4)
        yield {"type": "result", "result": result}


async def load_run(runs_path: Path, run_id: str) -> SolveResult:
    """Read a run back from the run store without any backend or template store."""
    if not Path(runs_path).exists():
        raise RunNotFound(run_id)
    async with AsyncSqliteSaver.from_conn_string(str(runs_path)) as saver:
        snapshot = await build_graph(checkpointer=saver).aget_state(_config(run_id))
    if not snapshot.values:
        raise RunNotFound(run_id)
    return result_from_state(run_id, snapshot.values, finished=not snapshot.next)


async def list_runs(runs_path: Path, *, limit: int = 20, offset: int = 0) -> list[RunSummary]:
    """Stored runs, most recently updated first (`offset` skips that many)."""
    if not Path(runs_path).exists():
        return []
    async with AsyncSqliteSaver.from_conn_string(str(runs_path)) as saver:
        await saver.setup()
        # Checkpoint ids are time-ordered (uuid6), so a thread's largest is its latest.
        query = (
            "SELECT thread_id, MAX(checkpoint_id) AS latest FROM checkpoints "
            "WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY latest DESC LIMIT ? OFFSET ?"
        )
        async with saver.conn.execute(query, (limit, offset)) as cursor:
            run_ids = [row[0] for row in await cursor.fetchall()]
        graph = build_graph(checkpointer=saver)
        summaries = []
        for run_id in run_ids:
            snapshot = await graph.aget_state(_config(run_id))
            if not snapshot.values:
                continue
            result = result_from_state(run_id, snapshot.values, finished=not snapshot.next)
            summaries.append(
                RunSummary(
                    run_id=run_id,
                    problem=result.problem,
                    status=result.status,
                    answer=result.answer,
                    verified=result.verified,
                    steps=len(result.steps),
                    updated_at=snapshot.created_at,
                )
            )
    return summaries


def _config(run_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": run_id}, "recursion_limit": _RECURSION_LIMIT}


async def _last_result(
    events: AsyncIterator[Event], on_event: Callable[[Event], None] | None
) -> SolveResult:
    result: SolveResult | None = None
    async for event in events:
        if on_event is not None:
            on_event(event)
        if event["type"] == "result":
            result = event["result"]
    if result is None:  # the stream always ends with a result unless it raised
        raise RuntimeError("the run ended without a result")
    return result


def validate_problem(problem: str) -> str:
    """A clean problem text, or ValueError saying what is wrong with it."""
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError("the problem is empty")
    problem = problem.strip()
    if len(problem) > MAX_PROBLEM_CHARS:
        raise ValueError(f"the problem is longer than {MAX_PROBLEM_CHARS} characters")
    return problem


def result_from_state(run_id: str, state: dict[str, Any], *, finished: bool) -> SolveResult:
    """Turn a (final or partial) graph state into a `SolveResult`."""
    usage = {role: RoleUsage(**value) for role, value in (state.get("usage") or {}).items()}
    answer = state.get("answer")
    status: Literal["answered", "failed", "interrupted"] = (
        "interrupted" if not finished else ("answered" if answer else "failed")
    )
    return SolveResult(
        run_id=run_id,
        problem=state.get("problem", ""),
        status=status,
        answer=answer,
        verified=bool(state.get("verified")),
        verification=state.get("verification", ""),
        expected=state.get("expected"),
        correct=state.get("correct"),
        plan=Plan.model_validate(state["plan"]) if state.get("plan") else None,
        steps=[StepRecord.model_validate(s) for s in state.get("steps") or []],
        revisions=[Revision.model_validate(r) for r in state.get("revisions") or []],
        usage=usage,
        llm_calls=sum(u.calls for u in usage.values()),
        timings=dict(state.get("timings") or {}),
        failures=list(state.get("failures") or []),
    )
