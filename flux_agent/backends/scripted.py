"""A scripted backend for tests: it returns replies you give it and records every call.

It fakes only the lowest layer, so prompt rendering, parsing, validation,
retries and routing above it all run for real. Script it with:
- a list of replies, used in order (a test fails loudly if it runs out);
- a dict from a substring of the last user message to a reply (first match wins);
- a function `(request) -> reply`.

A reply is raw text, or a `Completion` when a test needs a particular
`finish_reason` or `mean_logprob` (its usage, if left at zero, is counted as
for text: one token per word). A prefill is not prepended or checked: the reply
is the continuation, and the request, prefill included, is in `calls`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
)

Reply = str | Completion
Script = Sequence[Reply] | dict[str, Reply] | Callable[[GenerationRequest], Reply]


@dataclass
class ScriptedBackend:
    """Replies from a script; `calls` holds every request it received."""

    script: Script
    name: str = "scripted"
    supports_prefill: bool = True
    calls: list[GenerationRequest] = field(default_factory=list)
    _position: int = 0

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        completions = []
        for index, request in enumerate(requests):
            self.calls.append(request)
            completion = _completion(request, self._reply(request))
            if on_text is not None:
                # Stream word by word so consumers see more than one delta.
                for piece in _pieces(completion.text):
                    on_text(index, piece)
            completions.append(completion)
        return completions

    async def aclose(self) -> None:
        return None

    def _reply(self, request: GenerationRequest) -> Reply:
        if callable(self.script):
            return self.script(request)
        if isinstance(self.script, dict):
            last_user = next(
                (m["content"] for m in reversed(request.messages) if m["role"] == "user"), ""
            )
            for key, reply in self.script.items():
                if key in last_user:
                    return reply
            raise BackendError(f"scripted backend: no reply for prompt {last_user[:200]!r}")
        if self._position >= len(self.script):
            raise BackendError(f"scripted backend: script exhausted after {self._position} replies")
        reply = self.script[self._position]
        self._position += 1
        return reply


def _completion(request: GenerationRequest, reply: Reply) -> Completion:
    """The reply as a `Completion`, with word-count usage unless the script gave some."""
    if isinstance(reply, str):
        reply = Completion(text=reply)
    if reply.usage != Usage():
        return reply
    prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
    return replace(reply, usage=Usage(prompt_tokens, len(reply.text.split()), 1))


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]
