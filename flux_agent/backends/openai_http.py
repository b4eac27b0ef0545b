"""OpenAI-compatible HTTP backend: `vllm serve`, llama.cpp's server, or any compatible endpoint.

`OpenAIHTTPBackend` POSTs each request to `{base_url}/chat/completions` with
httpx. A batch runs as concurrent requests, at most `max_concurrency` at once
(`n > 1` is not used: llama.cpp's server ignores it). With `on_text` the reply
is streamed as server-sent events.

Servers take a JSON schema in different ways (see ARCHITECTURE.md, "Structured
output"), so the dialect is a setting:
- `json_schema`: OpenAI's `response_format` with a `json_schema` object (vLLM, OpenAI);
- `llama_cpp`: `response_format={"type": "json_object", "schema": ...}` (llama-cpp-python);
- `vllm`: vLLM's own `structured_outputs={"json": ...}` request field.

Asked for logprobs, it sends `logprobs: true, top_logprobs: 0` (llama-cpp-python's
server returns none without `top_logprobs`) and averages
`choices[0].logprobs.content[*].logprob`; a server that sends none gives no mean.

A prefill needs the server to continue the last assistant message rather than
open a new turn. Only vLLM documents that (`continue_final_message`), so only
the `vllm` dialect supports it; the others raise `BackendError` (llama-cpp-python's
server accepts the field, ignores it and answers in a new turn).

Every failure (server down, timeout, HTTP error, unreadable reply) becomes a
`BackendError` with a message a user can act on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
)
from flux_agent.backends.llama_cpp import grammar_schema
from flux_agent.config import StructuredDialect

_ERROR_CHARS = 500  # how much of a server's error message to quote


class OpenAIHTTPBackend:
    """Completes requests through an OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        structured_output: StructuredDialect = "json_schema",
        timeout_s: float = 300.0,
        max_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Set up the client; nothing is sent until the first request.

        The client and the concurrency limit belong to the event loop that first uses them.

        Args:
            base_url: the API root, e.g. `http://127.0.0.1:8000/v1`.
            model: the served model name; None asks `{base_url}/models` and takes the first.
            api_key: sent as a bearer token when given.
            structured_output: how the server takes a JSON schema (see the module docstring).
            timeout_s: limit for one request, including generation.
            max_concurrency: requests in flight at once, over all calls.
            transport: an httpx transport to use instead of the network (tests).
        """
        if structured_output not in ("json_schema", "llama_cpp", "vllm"):
            raise ValueError(f"unknown structured output dialect: {structured_output!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.structured_output = structured_output
        self.supports_prefill = structured_output == "vllm"
        self.name = f"openai:{self.base_url}"
        self._timeout_s = timeout_s
        # Shared by every call, so concurrent solves together stay within the limit.
        self._slots = asyncio.Semaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, transport=transport
        )

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        """Send the requests concurrently; the first failure cancels the rest and is raised."""
        if not self.supports_prefill and any(request.prefill for request in requests):
            raise BackendError(
                f"the {self.structured_output!r} server dialect cannot continue a prefill: "
                "only vLLM's server can (continue_final_message); use structured_output='vllm'"
            )
        model = await self._model_name()

        async def complete(index: int, request: GenerationRequest) -> Completion:
            async with self._slots:
                body = self._body(request, model, stream=on_text is not None)
                if on_text is None:
                    return _from_response(await self._post(body))
                return await self._stream(body, index, on_text)

        tasks = [asyncio.ensure_future(complete(i, r)) for i, r in enumerate(requests)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, request: GenerationRequest, model: str, stream: bool) -> dict[str, Any]:
        messages = [dict(message) for message in request.messages]
        if request.prefill:
            messages.append({"role": "assistant", "content": request.prefill})
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.prefill:
            # vLLM's extra chat parameters: render the last assistant message without
            # closing it and without opening a new turn, then continue its text.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if request.logprobs:
            # top_logprobs counts alternatives per token; 0 keeps only the chosen one.
            body["logprobs"] = True
            body["top_logprobs"] = 0
        schema = request.json_schema
        if schema is not None:
            if self.structured_output == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": schema, "strict": True},
                }
            elif self.structured_output == "llama_cpp":
                # Same grammar converter as in-process llama.cpp, same length limit.
                body["response_format"] = {"type": "json_object", "schema": grammar_schema(schema)}
            else:
                body["structured_outputs"] = {"json": schema}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def _model_name(self) -> str:
        if self.model is None:
            reply = await self._send("GET", "/models")
            try:
                self.model = str(reply["data"][0]["id"])
            except (KeyError, IndexError, TypeError) as exc:
                raise BackendError(
                    f"the LLM server at {self.base_url} lists no model at /models; "
                    "name one with ?model=NAME"
                ) from exc
        return self.model

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", "/chat/completions", body)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._client.request(method, self.base_url + path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        _raise_for_status(response)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(
                f"the LLM server at {self.base_url} sent a reply that is not JSON: "
                f"{response.text[:_ERROR_CHARS]!r}"
            ) from exc

    async def _stream(self, body: dict[str, Any], index: int, on_text: TextCallback) -> Completion:
        pieces: list[str] = []
        logprobs: list[float] = []
        finish_reason: str | None = None
        usage: dict[str, Any] | None = None
        url = self.base_url + "/chat/completions"
        try:
            async with self._client.stream("POST", url, json=body) as response:
                if response.is_error:
                    await response.aread()
                    _raise_for_status(response)
                async for event in _sse_events(response.aiter_lines()):
                    if "error" in event:
                        raise BackendError(
                            f"the LLM server at {self.base_url} failed mid-stream: "
                            f"{_error_message(event)}"
                        )
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            pieces.append(delta)
                            on_text(index, delta)
                        logprobs.extend(_token_logprobs(choice))
                        finish_reason = choice.get("finish_reason") or finish_reason
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if finish_reason is None:
            raise BackendError(
                f"the LLM server at {self.base_url} ended a streamed reply before it finished "
                "(llama-cpp-python's server does this when another request arrives: start it "
                "with --interrupt_requests False, or set max_concurrency to 1)"
            )
        if usage is not None:
            counted = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 1)
        else:
            # The server sent no usage (llama-cpp-python's does not): count content
            # chunks, about one token each; the prompt size is unknown here.
            counted = Usage(0, len(pieces), 1)
        return Completion(
            text="".join(pieces),
            usage=counted,
            finish_reason=finish_reason,
            mean_logprob=_mean(logprobs),
        )

    def _unreachable(self, exc: httpx.HTTPError) -> BackendError:
        if isinstance(exc, httpx.TimeoutException):
            reason = f"no answer within {self._timeout_s:g} s ({type(exc).__name__})"
        else:
            reason = str(exc) or type(exc).__name__
        return BackendError(f"cannot reach the LLM server at {self.base_url}: {reason}")


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of the `data:` lines of a server-sent event stream, up to `[DONE]`."""
    async for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), event names
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            yield json.loads(data)
        except ValueError as exc:
            raise BackendError(
                f"the LLM server sent an unreadable stream event: {data[:200]!r}"
            ) from exc


def _raise_for_status(response: httpx.Response) -> None:
    if not response.is_error:
        return
    try:
        message = _error_message(response.json())
    except ValueError:
        message = response.text
    raise BackendError(
        f"the LLM server at {response.request.url} answered HTTP {response.status_code}: "
        f"{_without_traceback(message)[:_ERROR_CHARS]}"
    )


def _without_traceback(message: str) -> str:
    """The message up to any Python traceback a server pasted into it (llama-cpp-python does)."""
    kept = []
    for line in message.strip().splitlines():
        if line.lstrip().startswith(("Traceback (most recent call last)", 'File "')):
            break
        kept.append(line.strip())
    return " ".join(line for line in kept if line) or message.strip()


def _error_message(payload: Any) -> str:
    """The human part of an error body: OpenAI's `{"error": {"message"}}`, FastAPI's `detail`."""
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if error is not None:
            return error if isinstance(error, str) else json.dumps(error)
    return json.dumps(payload)


def _from_response(payload: dict[str, Any]) -> Completion:
    try:
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendError(
            f"the LLM server sent a reply without a message: {json.dumps(payload)[:200]}"
        ) from exc
    usage = payload.get("usage") or {}
    return Completion(
        text=text,
        usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 1),
        finish_reason=choice.get("finish_reason") or "stop",
        mean_logprob=_mean(_token_logprobs(choice)),
    )


def _token_logprobs(choice: dict[str, Any]) -> list[float]:
    """The generated tokens' logprobs in a choice or stream chunk (`logprobs.content`)."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    return [
        float(entry["logprob"])
        for entry in content
        if isinstance(entry, dict) and isinstance(entry.get("logprob"), int | float)
    ]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
