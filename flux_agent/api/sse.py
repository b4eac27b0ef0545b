"""Server-sent events: the framing of the solve stream and of the OpenAI chat stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import to_jsonable_python

KEEPALIVE = b": keep-alive\n\n"
"""A comment line: proxies see traffic during a long silent generation; clients ignore it."""


def _json(data: Any) -> str:
    return json.dumps(to_jsonable_python(data), ensure_ascii=False, separators=(",", ":"))


async def event_stream(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """`id:`, `event:` (the event's type) and `data:` (the event as JSON) per event."""
    number = 0
    async for event in events:
        if event["type"] == "keepalive":
            yield KEEPALIVE
            continue
        number += 1
        yield f"id: {number}\nevent: {event['type']}\ndata: {_json(event)}\n\n".encode()


async def openai_stream(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """OpenAI's framing: `data: {chunk}` per chunk, then `data: [DONE]`."""
    async for chunk in chunks:
        if chunk.get("type") == "keepalive":
            yield KEEPALIVE
            continue
        yield f"data: {_json(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"
