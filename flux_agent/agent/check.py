"""The `check` node: compute the step's expression exactly and decide what comes next.

The decision (next step, retry the step, revise the plan, or answer) is made
here because this is where the budgets are known; the graph's routing function
only reads it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from langgraph.runtime import Runtime

from flux_agent.agent.models import StepRecord
from flux_agent.agent.nodes import advance, timed
from flux_agent.agent.state import AgentContext, AgentState
from flux_agent.verify.answers import extract_answer
from flux_agent.verify.expressions import CONSTANTS, FUNCTIONS
from flux_agent.verify.sandbox import SandboxError, SandboxTimeout

_PROSE = re.compile(r"(?<!\\)\b[A-Za-z]{3,}\b")


def _looks_like_maths(text: str) -> bool:
    """True for '2, 3' or '\\frac{3}{4}', false for 'the roots are 2 and 3'."""
    return bool(text.strip()) and not _PROSE.search(re.sub(r"\\[A-Za-z]+", "", text))


def _is_formula(expression: str) -> bool:
    """False when the 'expression' is a sentence: two or more words that are not known
    functions or constants. A misspelt formula still counts as one (and fails to parse)."""
    words = re.findall(r"[A-Za-z_]{3,}", expression)
    unknown = [w for w in words if w not in FUNCTIONS and w not in CONSTANTS]
    return len(unknown) < 2


@timed("check")
async def check(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Evaluate the step's expression exactly and decide what happens next."""
    ctx, emit = runtime.context, runtime.stream_writer
    record = StepRecord.model_validate(state["pending"])
    if record.check != "failed" and record.expression and _is_formula(record.expression):
        try:
            value = await asyncio.to_thread(
                ctx.sandbox.evaluate, record.expression, ctx.settings.check_timeout_s
            )
        except (SandboxError, SandboxTimeout) as exc:
            record.check, record.check_detail = "error", f"expression did not evaluate: {exc}"
        else:
            if value.text in ("True", "False"):
                # '15 * 15 == 225' or '40 * 0.75 = 35' checks a claim; it is not a value.
                record.check = "error"
                record.check_detail = (
                    f"the expression is a comparison (it is {value.text}); write the "
                    "formula for the value itself"
                )
            else:
                record.value = value.latex
                record.check, record.check_detail = await _compare(ctx, record, value.latex)
    elif record.check != "failed" and record.expression:
        # Prose where a formula belongs: nothing to compute, so nothing to retry for.
        record.check_detail = "the expression was prose, not a formula; not checked"
    emit(
        {
            "type": "check",
            "step": record.index,
            "status": record.check,
            "detail": record.check_detail,
            "value": record.value,
        }
    )
    return _decide(state, ctx, record)


async def _compare(ctx: AgentContext, record: StepRecord, value: str) -> tuple[Any, str]:
    stated = extract_answer(record.result) if _looks_like_maths(record.result) else None
    if stated is None:
        return "verified", f"computed {value}"
    try:
        same = await asyncio.to_thread(ctx.sandbox.equivalent, stated, value)
    except (SandboxError, SandboxTimeout) as exc:
        return "verified", f"computed {value} (could not compare with the stated {stated}: {exc})"
    if same:
        return "verified", f"stated {stated} equals computed {value}"
    return "mismatch", f"stated result {stated} but the expression evaluates to {value}"


def _decide(state: AgentState, ctx: AgentContext, record: StepRecord) -> dict[str, Any]:
    settings = ctx.settings
    failures = list(state.get("failures") or [])
    ok = record.check in ("verified", "unchecked")
    if not ok and state.get("attempts", 1) <= settings.max_step_retries:
        return {
            "decision": "retry",
            "feedback": record.check_detail,
            "pending": record.model_dump(),
            "failures": failures,
        }
    if not ok and len(state.get("revisions") or []) < settings.max_revisions:
        return {"decision": "revise", "pending": record.model_dump(), "failures": failures}
    if not ok:
        failures.append(f"step {record.index + 1} kept failing: {record.check_detail}")
    return advance(state, record, ctx, failures)
