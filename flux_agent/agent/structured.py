"""Getting a pydantic model out of an LLM: schema-constrained request, validation, bounded retries.

Backends constrain decoding with the JSON schema where they can, but a reply may
still be cut off by the token limit or break a rule the schema cannot express.
Each invalid reply is answered with the validation error and another try, up to
`retries` times; after that the caller gets `None` and the errors, never an
exception, so the agent can record the failure and carry on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from flux_agent.agent.prompts import repair_message
from flux_agent.backends.base import (
    BackendError,
    GenerationRequest,
    LLMBackend,
    Message,
    TextCallback,
    Usage,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass
class StructuredReply(Generic[ModelT]):
    """The parsed value (or None), what it cost, and every error met on the way."""

    value: ModelT | None
    usage: Usage = field(default_factory=Usage)
    errors: list[str] = field(default_factory=list)
    raw: str = ""


def json_text(text: str) -> str:
    """The JSON object in a reply, tolerating code fences and chatter around it."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1)
    start = text.find("{")
    end = text.rfind("}")
    if start == -1 or end < start:
        return text.strip()
    return text[start : end + 1]


def _describe(error: ValidationError | json.JSONDecodeError | ValueError) -> str:
    if isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}"
            for err in error.errors()[:5]
        ]
        return "; ".join(parts)
    return str(error)


async def generate_structured(
    backend: LLMBackend,
    messages: Sequence[Message],
    model: type[ModelT],
    *,
    schema: dict[str, Any] | None = None,
    max_tokens: int = 512,
    temperature: float = 0.0,
    retries: int = 2,
    validate: Callable[[ModelT], None] | None = None,
    on_text: TextCallback | None = None,
) -> StructuredReply[ModelT]:
    """Ask `backend` for a `model` instance.

    Args:
        schema: the JSON schema to constrain decoding (default: the model's own).
        validate: extra checks beyond the schema; raise ValueError to reject.
        retries: extra attempts after the first, each with the error fed back.
        on_text: streamed text of every attempt (index is always 0).

    Backend failures (unreachable server, missing model) are not retried here:
    they raise `BackendError` for the caller to report.
    """
    schema = schema or model.model_json_schema()
    conversation = list(messages)
    reply: StructuredReply[ModelT] = StructuredReply(value=None)
    for _ in range(retries + 1):
        request = GenerationRequest(
            messages=tuple(conversation),
            max_tokens=max_tokens,
            temperature=temperature,
            json_schema=schema,
        )
        (completion,) = await backend.generate([request], on_text=on_text)
        reply.usage = reply.usage + completion.usage
        reply.raw = completion.text
        try:
            # strict=False: llama.cpp grammars let raw newlines into strings; they are harmless.
            value = model.model_validate(json.loads(json_text(completion.text), strict=False))
            if validate is not None:
                validate(value)
        except (ValidationError, ValueError) as exc:  # JSONDecodeError is a ValueError
            error = _describe(exc)
            if completion.finish_reason == "length":
                error += " (the reply was cut off at the token limit; be shorter)"
            reply.errors.append(error)
            conversation += [
                {"role": "assistant", "content": completion.text[:2000]},
                repair_message(error),
            ]
            continue
        reply.value = value
        return reply
    return reply


__all__ = ["BackendError", "StructuredReply", "generate_structured"]
