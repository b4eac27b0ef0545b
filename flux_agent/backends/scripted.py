"""A scripted backend for tests: it returns raw text you give it and records every call.

It fakes only the lowest layer, so prompt rendering, parsing, validation,
retries and routing above it all run for real. Script it with:
- a list of replies, used in order (a test fails loudly if it runs out);
- a dict from a substring of the last user message to a reply (first match wins);
- a function `(request) -> str`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
)

Script = Sequence[str] | dict[str, str] | Callable[[GenerationRequest], str]


@dataclass
class ScriptedBackend:
    """Replies from a script; `calls` holds every request it received."""

    script: Script
    name: str = "scripted"
    calls: list[GenerationRequest] = field(default_factory=list)
    _position: int = 0

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        completions = []
        for index, request in enumerate(requests):
            self.calls.append(request)
            text = self._reply(request)
            if on_text is not None:
                # Stream word by word so consumers see more than one delta.
                for piece in _pieces(text):
                    on_text(index, piece)
            prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
            usage = Usage(prompt_tokens, len(text.split()), 1)
            completions.append(Completion(text=text, usage=usage))
        return completions

    async def aclose(self) -> None:
        return None

    def _reply(self, request: GenerationRequest) -> str:
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


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]
