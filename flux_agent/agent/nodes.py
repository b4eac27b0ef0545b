"""The agent's node functions: plan, retrieve, instantiate, revise, answer (check is in check.py).

Each node takes the state and LangGraph's runtime (whose `context` is an
`AgentContext`), and returns only the keys it changes. Nodes report progress
through `runtime.stream_writer` as plain dict events (`{"type": ...}`), which
the CLI and the API turn into a live view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol

from langgraph.runtime import Runtime

from flux_agent.agent import prompts
from flux_agent.agent.models import (
    FinalAnswer,
    Plan,
    PlanStep,
    Revision,
    RoleUsage,
    StepRecord,
    StepResult,
    plan_schema,
)
from flux_agent.agent.state import AgentContext, AgentState, Decision
from flux_agent.agent.structured import generate_structured
from flux_agent.backends.base import GenerationRequest, Usage
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.verify.answers import extract_answer, normalise_answer
from flux_agent.verify.sandbox import SandboxError, SandboxTimeout


class Node(Protocol):
    """A node as LangGraph calls it: the state, and the runtime by keyword."""

    def __call__(
        self, state: AgentState, *, runtime: Runtime[AgentContext]
    ) -> Awaitable[dict[str, Any]]: ...


def timed(name: str) -> Callable[[Node], Node]:
    """Announce the node (a `node_started` event) and add its wall time to `timings[name]`."""

    def decorate(node: Node) -> Node:
        @wraps(node)
        async def run(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
            runtime.stream_writer({"type": "node_started", "node": name})
            start = time.perf_counter()
            update = await node(state, runtime=runtime)
            timings = dict(update.get("timings") or state.get("timings") or {})
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 4)
            return {**update, "timings": timings}

        return run

    return decorate


def _with_usage(state: AgentState, role: str, usage: Usage) -> dict[str, dict[str, int]]:
    totals = {key: dict(value) for key, value in (state.get("usage") or {}).items()}
    current = RoleUsage(**totals.get(role, {})).add(usage)
    totals[role] = current.model_dump()
    return totals


def generated_tokens(state: AgentState) -> int:
    return sum(role["completion_tokens"] for role in (state.get("usage") or {}).values())


def _templates(ctx: AgentContext, ids: list[str]) -> list[ThoughtTemplate]:
    found = (ctx.store.get(template_id) for template_id in ids)
    return [template for template in found if template is not None]


def _temperature(ctx: AgentContext, *, retry: bool) -> float:
    settings = ctx.settings
    return max(settings.temperature, settings.retry_temperature) if retry else settings.temperature


def step_records(state: AgentState) -> list[StepRecord]:
    return [StepRecord.model_validate(step) for step in state.get("steps") or []]


@timed("plan")
async def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Offer the closest templates to the navigator and get a trajectory over them."""
    ctx, emit = runtime.context, runtime.stream_writer
    problem = state["problem"]
    hits = await asyncio.to_thread(ctx.store.search, problem, ctx.settings.candidates)
    candidates = [hit.template for hit in hits]
    ids = [t.id for t in candidates]
    emit(
        {
            "type": "candidates",
            "templates": [
                {"id": hit.template.id, "name": hit.template.name, "score": round(hit.score, 3)}
                for hit in hits
            ],
        }
    )
    reply = await generate_structured(
        ctx.navigator,
        prompts.plan_messages(problem, candidates, ctx.settings.max_steps),
        Plan,
        schema=plan_schema(ids, ctx.settings.max_steps),
        max_tokens=ctx.settings.plan_tokens,
        temperature=ctx.settings.temperature,
        retries=ctx.settings.max_json_retries,
        validate=lambda p: _validate_plan(p, ids, ctx.settings.max_steps),
    )
    failures = list(state.get("failures") or [])
    if reply.value is None:
        # Degrade, visibly: the best-matching template as a one-step plan.
        failures.append(f"navigator gave no valid plan ({'; '.join(reply.errors)[:300]})")
        chosen = Plan(
            analysis="(fallback plan: the navigator's replies were invalid)",
            steps=[PlanStep(template_id=ids[0], goal="Solve the problem with this technique.")],
        )
    else:
        chosen = reply.value
    emit({"type": "plan", "plan": chosen.model_dump(), "fallback": reply.value is None})
    return {
        "candidate_ids": ids,
        "plan": chosen.model_dump(),
        "usage": _with_usage(state, "navigator", reply.usage),
        "failures": failures,
    }


def _validate_plan(value: Plan, ids: list[str], max_steps: int) -> None:
    unknown = [s.template_id for s in value.steps if s.template_id not in ids]
    if unknown:
        raise ValueError(f"unknown template ids {unknown}; choose from {ids}")
    if len(value.steps) > max_steps:
        raise ValueError(f"the plan has {len(value.steps)} steps; at most {max_steps} allowed")


@timed("retrieve")
async def retrieve(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Resolve each remaining planned step to its full template.

    A step naming a template the store lacks is re-pointed to the template
    closest to the step's goal, and the change is recorded.
    """
    ctx, emit = runtime.context, runtime.stream_writer
    current = Plan.model_validate(state["plan"])
    start = state.get("step_index", 0)
    failures = list(state.get("failures") or [])
    steps = list(current.steps)
    for position in range(start, len(steps)):
        step = steps[position]
        template = await asyncio.to_thread(ctx.store.get, step.template_id)
        if template is None:
            hits = await asyncio.to_thread(ctx.store.search, step.goal, 1)
            failures.append(f"step {position + 1}: template {step.template_id!r} not in the store")
            steps[position] = PlanStep(template_id=hits[0].template.id, goal=step.goal)
            template = hits[0].template
        emit(
            {
                "type": "template",
                "step": position,
                "id": template.id,
                "name": template.name,
                "description": template.description,
            }
        )
    return {"plan": Plan(analysis=current.analysis, steps=steps).model_dump(), "failures": failures}


@timed("instantiate")
async def instantiate_step(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Have the solver carry out the current step with its template."""
    ctx, emit = runtime.context, runtime.stream_writer
    current = Plan.model_validate(state["plan"])
    index = state.get("step_index", 0)
    step = current.steps[index]
    template = await asyncio.to_thread(ctx.store.get, step.template_id)
    if template is None:  # retrieve guarantees this; a store edited mid-run is the exception
        raise LookupError(f"template {step.template_id} vanished from the store")
    attempts = state.get("attempts", 0) + 1
    emit(
        {
            "type": "step_started",
            "step": index,
            "template_id": step.template_id,
            "goal": step.goal,
            "attempt": attempts,
        }
    )
    temperature = _temperature(ctx, retry=attempts > 1)
    messages = prompts.step_messages(
        state["problem"],
        template,
        step.goal,
        step_records(state),
        state.get("feedback"),
        with_example=ctx.settings.worked_examples,
    )
    # First the work, in free text, streamed; then its result and formula as JSON.
    (work,) = await ctx.solver.generate(
        [
            GenerationRequest(
                messages=tuple(messages),
                max_tokens=ctx.settings.step_tokens,
                temperature=temperature,
            )
        ],
        on_text=lambda _, delta: emit({"type": "step_text", "step": index, "delta": delta}),
    )
    reasoning = work.text.strip()
    reply = await generate_structured(
        ctx.solver,
        [*messages, {"role": "assistant", "content": reasoning}, prompts.step_result_message()],
        StepResult,
        max_tokens=ctx.settings.result_tokens,
        temperature=temperature,
        retries=ctx.settings.max_json_retries,
    )
    record = StepRecord(
        index=index,
        template_id=step.template_id,
        goal=step.goal,
        reasoning=reasoning,
        attempts=attempts,
    )
    if reply.value is None:
        record.check = "failed"
        record.check_detail = "no valid step result: " + "; ".join(reply.errors)[:300]
    else:
        record.result = reply.value.result
        record.expression = reply.value.expression.strip()
    emit(
        {
            "type": "step_result",
            "step": index,
            "result": record.result,
            "expression": record.expression,
        }
    )
    return {
        "pending": record.model_dump(),
        "attempts": attempts,
        "usage": _with_usage(state, "solver", work.usage + reply.usage),
    }


@timed("revise")
async def revise(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the navigator to rewrite the trajectory from the failed step on."""
    ctx, emit = runtime.context, runtime.stream_writer
    current = Plan.model_validate(state["plan"])
    failed = StepRecord.model_validate(state["pending"])
    index = failed.index
    hits = await asyncio.to_thread(ctx.store.search, failed.goal, ctx.settings.candidates)
    ids = list(dict.fromkeys([*state.get("candidate_ids", []), *(h.template.id for h in hits)]))
    room = max(1, ctx.settings.max_steps - index)
    reply = await generate_structured(
        ctx.navigator,
        prompts.revise_messages(
            state["problem"],
            _templates(ctx, ids),
            step_records(state),
            failed,
            current.steps[index + 1 :],
            room,
        ),
        Plan,
        schema=plan_schema(ids, room),
        max_tokens=ctx.settings.plan_tokens,
        temperature=_temperature(ctx, retry=True),
        retries=ctx.settings.max_json_retries,
        validate=lambda p: _validate_plan(p, ids, room),
    )
    revisions = list(state.get("revisions") or [])
    update: dict[str, Any] = {"usage": _with_usage(state, "navigator", reply.usage)}
    if reply.value is None:
        # No usable revision: keep the failed step and go on with the old plan.
        failures = [
            *state.get("failures", []),
            f"revision after step {index + 1} failed: {'; '.join(reply.errors)[:300]}",
        ]
        revisions.append(
            Revision(
                after_step=index,
                reason=failed.check_detail,
                old_steps=current.steps[index:],
                new_steps=current.steps[index:],
            ).model_dump()
        )
        emit({"type": "revision", "after_step": index, "failed": True})
        return {**update, "revisions": revisions, **advance(state, failed, ctx, failures)}
    new_steps = reply.value.steps[:room]
    revisions.append(
        Revision(
            after_step=index,
            reason=failed.check_detail,
            old_steps=current.steps[index:],
            new_steps=new_steps,
        ).model_dump()
    )
    emit(
        {
            "type": "revision",
            "after_step": index,
            "failed": False,
            "new_steps": [s.model_dump() for s in new_steps],
        }
    )
    revised = Plan(analysis=current.analysis, steps=[*current.steps[:index], *new_steps])
    return {
        **update,
        "plan": revised.model_dump(),
        "revisions": revisions,
        "candidate_ids": ids,
        "pending": None,
        "feedback": None,
        "attempts": 0,
        "decision": "revised",
    }


def advance(
    state: AgentState, record: StepRecord, ctx: AgentContext, failures: list[str]
) -> dict[str, Any]:
    """Accept `record` as its step's result; go to the next step, or answer when the plan
    is done or the token budget is spent."""
    failures = list(failures)
    index = record.index + 1
    decision: Decision = "next"
    if index >= len(Plan.model_validate(state["plan"]).steps):
        decision = "answer"
    elif generated_tokens(state) >= ctx.settings.max_total_tokens:
        failures.append(
            f"token budget of {ctx.settings.max_total_tokens} reached after step {index}"
        )
        decision = "answer"
    return {
        "decision": decision,
        "steps": [*state.get("steps", []), record.model_dump()],
        "step_index": index,
        "pending": None,
        "feedback": None,
        "attempts": 0,
        "failures": failures,
    }


@timed("answer")
async def answer(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Get the final answer, then verify it against the exactly computed step values."""
    ctx, emit = runtime.context, runtime.stream_writer
    done = step_records(state)
    reply = await generate_structured(
        ctx.solver,
        prompts.answer_messages(state["problem"], done),
        FinalAnswer,
        max_tokens=ctx.settings.answer_tokens,
        temperature=ctx.settings.temperature,
        retries=ctx.settings.max_json_retries,
    )
    failures = list(state.get("failures") or [])
    final: str | None
    if reply.value is not None:
        final = extract_answer(reply.value.answer) or normalise_answer(reply.value.answer)
    else:
        failures.append(f"no valid final answer: {'; '.join(reply.errors)[:300]}")
        last = next((r for r in reversed(done) if r.value or r.result), None)
        final = (last.value or extract_answer(last.result)) if last else None
    verified, verification = await _verify(ctx, final, done)
    correct = None
    if final is not None and state.get("expected"):
        correct = await _equivalent(ctx, final, state["expected"] or "")
    emit(
        {
            "type": "answer",
            "answer": final,
            "verified": verified,
            "verification": verification,
            "correct": correct,
        }
    )
    return {
        "answer": final,
        "verified": verified,
        "verification": verification,
        "correct": correct,
        "failures": failures,
        "usage": _with_usage(state, "solver", reply.usage),
    }


async def _equivalent(ctx: AgentContext, candidate: str, reference: str) -> bool:
    try:
        return await asyncio.to_thread(ctx.sandbox.equivalent, candidate, reference)
    except (SandboxError, SandboxTimeout):
        return False


async def _verify(
    ctx: AgentContext, final: str | None, records: list[StepRecord]
) -> tuple[bool, str]:
    if final is None:
        return False, "no answer"
    for record in reversed(records):
        verified_value = record.check == "verified" and record.value is not None
        if verified_value and await _equivalent(ctx, final, record.value or ""):
            return True, f"equals the computed value of step {record.index + 1}"
    if not any(r.value for r in records):
        return False, "no step computed a value to check the answer against"
    return False, "does not match any computed step value"
