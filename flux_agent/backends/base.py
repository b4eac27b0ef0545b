"""The `LLMBackend` protocol: what the agent needs from any language model.

One call, `generate(requests)`, async and batched. Each request carries chat
messages, sampling settings and optionally a JSON schema the reply must follow
(structured output). Each completion carries the text and its token usage, so
the agent can account for cost per role without knowing which backend ran.

Streaming is a callback, `on_text(index, delta)`, invoked with each piece of
text as it is generated (index = position of the request in the batch).
Backends that cannot stream call it once with the whole text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": "..."}."""

TextCallback = Callable[[int, str], None]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete."""

    messages: Sequence[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    json_schema: dict[str, Any] | None = None
    seed: int | None = None
    logprobs: bool = False
    """Ask for the generated tokens' log-probabilities (`Completion.mean_logprob`)."""
    prefill: str = ""
    """Text the assistant's reply already starts with; the model continues it, and
    `Completion.text` holds only the continuation. Backends that cannot continue a
    partial reply raise `BackendError` (`supports_prefill` says which can)."""


@dataclass(frozen=True)
class Usage:
    """Tokens read and written by one or more calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )


@dataclass(frozen=True)
class Completion:
    """The model's reply to one request."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    mean_logprob: float | None = None
    """Mean log-probability of the generated tokens, when asked for and available."""


class BackendError(RuntimeError):
    """The backend could not produce a completion (unreachable, missing model, bad reply)."""


@runtime_checkable
class LLMBackend(Protocol):
    """Anything that completes chat requests."""

    name: str
    supports_prefill: bool
    """Whether `GenerationRequest.prefill` works: the model continues a partial reply as
    raw text after the rendered chat prompt (no new assistant turn in between), as
    budget forcing needs. Backends without it raise `BackendError` for a prefill."""

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        """Complete every request; the result is in request order."""
        ...

    async def aclose(self) -> None:
        """Release connections, processes or models held by the backend."""
        ...


def loop_emitter(
    loop: asyncio.AbstractEventLoop, on_text: TextCallback, index: int
) -> Callable[[str], None]:
    """A callback for a worker thread that runs `on_text(index, delta)` on `loop`, so
    in-process backends stream without ever calling `on_text` off the loop's thread."""

    def emit(delta: str) -> None:
        loop.call_soon_threadsafe(on_text, index, delta)

    return emit
