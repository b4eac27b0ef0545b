"""The OpenAI-compatible facade's stream: a solve's events as `chat.completion.chunk`s."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from flux_agent.agent import SolveResult
from flux_agent.api.jobs import SolveJob
from flux_agent.api.protocol import (
    Budgets,
    ChatCompletionRequest,
    chat_chunk,
    chat_usage,
)


async def chat_chunks(job: SolveJob, include_usage: bool) -> AsyncIterator[dict[str, Any]]:
    """A solve as `chat.completion.chunk`s: step text as reasoning, the answer as content.

    Every chunk also carries the graph event it came from in `flux_event`; the last
    content chunk carries the whole `SolveResult` in `flux`. An error becomes an
    OpenAI-style `{"error": ...}` object, which OpenAI clients raise as an exception.
    """
    created = int(time.time())
    yield chat_chunk(job.run_id, created, {"role": "assistant", "content": ""})
    async with contextlib.aclosing(job.events()) as events:
        async for event in events:
            kind = event["type"]
            if kind == "keepalive":
                yield event
            elif kind == "error":
                yield {"error": event["error"]}
                return
            elif kind == "result":
                result: SolveResult = event["result"]
                answer = {"content": result.answer or ""}
                flux = result.model_dump(mode="json")
                yield chat_chunk(job.run_id, created, answer, finish_reason="stop", flux=flux)
                if include_usage:
                    usage = chat_usage(result).model_dump()
                    yield {**chat_chunk(job.run_id, created, {}, usage=usage), "choices": []}
                return
            else:
                delta = {"reasoning_content": event["delta"]} if kind == "step_text" else {}
                yield chat_chunk(job.run_id, created, delta, flux_event=event)


def chat_budgets(request: ChatCompletionRequest) -> Budgets | None:
    limit = request.max_completion_tokens or request.max_tokens
    return Budgets(max_total_tokens=limit) if limit else None
