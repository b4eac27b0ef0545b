"""The HTTP API's request and response models (pydantic), shared by routes and service.

Solve results, run summaries and templates are the core's own models
(`SolveResult`, `RunSummary`, `ThoughtTemplate`); this module adds what only the
API needs: requests with their limits, list envelopes, the error body, and the
OpenAI-compatible chat models. Requests forbid unknown fields, so a typo in a
setting is an error instead of a silently ignored option, except the chat request,
which must accept whatever parameters an OpenAI client sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flux_agent.agent import RunSummary, SolveResult
from flux_agent.agent.runner import MAX_PROBLEM_CHARS
from flux_agent.templates import ThoughtTemplate

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CHAT_MODEL = "flux"
"""The model name the OpenAI-compatible facade answers to."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Request):
    """Per-solve overrides of the server's agent budgets (unset fields keep the server's)."""

    max_steps: int | None = Field(default=None, ge=1, le=12)
    max_revisions: int | None = Field(default=None, ge=0, le=10)
    max_step_retries: int | None = Field(default=None, ge=0, le=5)
    max_total_tokens: int | None = Field(default=None, ge=256, le=200_000)


Strategy = Literal["flux", "cot", "self-consistency", "best-of-n", "budget-forcing", "flux-guided"]
"""The agent (`flux`) or one of the baselines of `flux eval`."""


class SolveRequest(_Request):
    """`POST /v1/solve`."""

    problem: str = Field(min_length=1, max_length=MAX_PROBLEM_CHARS, pattern=r"\S")
    strategy: Strategy = Field(
        default="flux",
        description="`flux` runs the agent (stored, resumable, streamed step by step); the "
        "baselines answer directly and are not stored as runs.",
    )
    stream: bool = Field(default=False, description="Stream the graph's events as SSE.")
    expected: str | None = Field(
        default=None, max_length=1000, description="A reference answer to score against."
    )
    run_id: str | None = Field(
        default=None, pattern=RUN_ID_PATTERN, description="Default: 12 random hex digits."
    )
    navigator: str | None = Field(
        default=None, max_length=64, description="A backend name from `GET /readyz`."
    )
    solver: str | None = Field(default=None, max_length=64)
    budgets: Budgets | None = None
    timeout_s: float | None = Field(
        default=None, gt=0, description="Stop after this many seconds (capped by the server)."
    )


class ResumeRequest(_Request):
    """`POST /v1/runs/{run_id}/resume`."""

    stream: bool = False
    timeout_s: float | None = Field(default=None, gt=0)


class RunList(BaseModel):
    runs: list[RunSummary]
    limit: int
    offset: int


class TemplateHit(BaseModel):
    score: float
    template: ThoughtTemplate


class TemplateSearch(BaseModel):
    query: str
    results: list[TemplateHit]


class TemplateCreated(BaseModel):
    template: ThoughtTemplate
    path: str = Field(description="Where the template was written, relative to the library.")


class Health(BaseModel):
    status: Literal["ok", "ready", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    type: str
    message: str
    fields: list[FieldError] | None = None
    run_id: str | None = None


class ErrorBody(BaseModel):
    """Every error response: `{"error": {...}}`, the shape OpenAI clients expect."""

    error: ErrorDetail


# OpenAI-compatible facade ------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`: the last user message is the problem.

    Sampling parameters an OpenAI client may send (temperature, top_p, ...) are
    accepted and ignored: the agent's own settings decide how each role samples.
    `max_tokens` (or `max_completion_tokens`) caps the generated tokens of the whole solve.
    """

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is supported.")
    max_tokens: int | None = Field(default=None, ge=256, le=200_000)
    max_completion_tokens: int | None = Field(default=None, ge=256, le=200_000)


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "flux-agent"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def chat_usage(result: SolveResult) -> ChatUsage:
    prompt = sum(u.prompt_tokens for u in result.usage.values())
    completion = sum(u.completion_tokens for u in result.usage.values())
    return ChatUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def chat_completion(result: SolveResult, created: int) -> dict[str, Any]:
    """A `chat.completion` whose content is the answer and whose `flux` field is the run."""
    return {
        "id": f"chatcmpl-{result.run_id}",
        "object": "chat.completion",
        "created": created,
        "model": CHAT_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer or ""},
                "finish_reason": "stop",
            }
        ],
        "usage": chat_usage(result).model_dump(),
        "flux": result.model_dump(mode="json"),
    }


def chat_chunk(run_id: str, created: int, delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One `chat.completion.chunk`; `extra` adds top-level fields (`flux_event`, `flux`)."""
    finish = extra.pop("finish_reason", None)
    return {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": CHAT_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
