"""The OpenAI-compatible HTTP backend, against httpx's MockTransport and a closed port.

What goes over the wire per structured-output dialect and for logprobs and
prefills, how replies, logprobs and server-sent event streams are read, and how
every failure becomes a `BackendError` with a usable message. The real server
is exercised in tests/integration/test_backend_conformance.py and
test_backend_capabilities.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flux_agent.backends import BackendError, GenerationRequest, OpenAIHTTPBackend
from flux_agent.backends.llama_cpp import grammar_schema

BASE = "http://llm.test/v1"
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}

Handler = Callable[[httpx.Request], Any]


def ask(text: str = "hi", **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


def reply(text: str, prompt_tokens: int = 5, completion_tokens: int = 3, finish: str = "stop"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def with_logprobs(payload: dict[str, Any], *values: float) -> dict[str, Any]:
    """`payload` whose first choice carries these token logprobs, in OpenAI's chat form."""
    entries = [{"token": "t", "logprob": v, "bytes": None, "top_logprobs": []} for v in values]
    payload["choices"][0]["logprobs"] = {"content": entries, "refusal": None}
    return payload


def sse(*events: Any, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class FakeServer:
    """Records requests and answers each with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, httpx.Response):
            return result
        return httpx.Response(200, json=result)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


def backend_for(server: FakeServer, **kwargs: Any) -> OpenAIHTTPBackend:
    kwargs.setdefault("model", "m")
    return OpenAIHTTPBackend(BASE, transport=httpx.MockTransport(server), **kwargs)


# --- request bodies ---------------------------------------------------------------------------


async def test_plain_request_body_carries_the_sampling_settings() -> None:
    server = FakeServer(lambda request: reply("ok"))
    backend = backend_for(server, model="smol")
    request = GenerationRequest(
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        max_tokens=17,
        temperature=0.5,
        top_p=0.9,
        stop=["\n\n"],
        seed=3,
    )
    await backend.generate([request])
    [sent] = server.requests
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/chat/completions"
    assert json.loads(sent.content) == {
        "model": "smol",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "max_tokens": 17,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "seed": 3,
    }


async def test_json_schema_dialect_uses_openai_response_format() -> None:
    server = FakeServer(lambda request: reply("{}"))
    await backend_for(server, structured_output="json_schema").generate([ask(json_schema=SCHEMA)])
    [body] = server.bodies()
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    assert "structured_outputs" not in body


async def test_llama_cpp_dialect_puts_the_schema_in_a_json_object_format() -> None:
    server = FakeServer(lambda request: reply("{}"))
    await backend_for(server, structured_output="llama_cpp").generate([ask(json_schema=SCHEMA)])
    [body] = server.bodies()
    assert body["response_format"] == {"type": "json_object", "schema": grammar_schema(SCHEMA)}
    assert "structured_outputs" not in body


async def test_vllm_dialect_uses_structured_outputs() -> None:
    server = FakeServer(lambda request: reply("{}"))
    await backend_for(server, structured_output="vllm").generate([ask(json_schema=SCHEMA)])
    [body] = server.bodies()
    assert body["structured_outputs"] == {"json": SCHEMA}
    assert "response_format" not in body


async def test_no_schema_means_no_format_fields_in_any_dialect() -> None:
    for dialect in ("json_schema", "llama_cpp", "vllm"):
        server = FakeServer(lambda request: reply("ok"))
        await backend_for(server, structured_output=dialect).generate([ask()])
        [body] = server.bodies()
        assert "response_format" not in body and "structured_outputs" not in body, dialect


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="dialect"):
        OpenAIHTTPBackend(BASE, structured_output="xml")  # type: ignore[arg-type]


async def test_api_key_is_sent_as_a_bearer_token() -> None:
    server = FakeServer(lambda request: reply("ok"))
    await backend_for(server, api_key="sk-test").generate([ask()])
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test"
    server = FakeServer(lambda request: reply("ok"))
    await backend_for(server).generate([ask()])
    assert "Authorization" not in server.requests[0].headers


async def test_without_a_model_the_first_served_model_is_asked_for_once() -> None:
    def handler(request: httpx.Request) -> Any:
        if request.url.path == "/v1/models":
            return {"object": "list", "data": [{"id": "served-a"}, {"id": "served-b"}]}
        return reply("ok")

    server = FakeServer(handler)
    backend = backend_for(server, model=None)
    await backend.generate([ask(), ask()])
    await backend.generate([ask()])
    gets = [r for r in server.requests if r.method == "GET"]
    assert [str(r.url) for r in gets] == [f"{BASE}/models"]
    assert [body["model"] for body in server.bodies()] == ["served-a"] * 3


async def test_a_server_listing_no_model_is_an_error() -> None:
    server = FakeServer(lambda request: {"object": "list", "data": []})
    with pytest.raises(BackendError, match="no model"):
        await backend_for(server, model=None).generate([ask()])


async def test_logprobs_are_asked_for_with_zero_alternatives() -> None:
    server = FakeServer(lambda request: reply("ok"))
    await backend_for(server).generate([ask(logprobs=True), ask()])
    asked, plain = server.bodies()
    # llama-cpp-python's server returns no logprobs unless top_logprobs is set.
    assert (asked["logprobs"], asked["top_logprobs"]) == (True, 0)
    assert "logprobs" not in plain and "top_logprobs" not in plain


async def test_vllm_dialect_continues_a_prefill_as_the_final_assistant_message() -> None:
    server = FakeServer(lambda request: reply(" Paris."))
    backend = backend_for(server, structured_output="vllm")
    assert backend.supports_prefill
    request = ask("Capital of France?", prefill="The capital of France is")
    [completion] = await backend.generate([request])
    [body] = server.bodies()
    assert body["messages"] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "The capital of France is"},
    ]
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False
    assert completion.text == " Paris."  # the server sends only the continuation


async def test_vllm_dialect_without_prefill_sends_no_continuation_fields() -> None:
    server = FakeServer(lambda request: reply("ok"))
    await backend_for(server, structured_output="vllm").generate([ask()])
    [body] = server.bodies()
    assert "continue_final_message" not in body and "add_generation_prompt" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("dialect", ["json_schema", "llama_cpp"])
async def test_other_dialects_refuse_a_prefill_naming_the_dialect(dialect: str) -> None:
    server = FakeServer(lambda request: reply("ok"))
    backend = backend_for(server, structured_output=dialect)
    assert not backend.supports_prefill
    for on_text in (None, lambda i, d: None):
        with pytest.raises(BackendError, match=f"'{dialect}' server dialect cannot continue"):
            await backend.generate([ask(), ask(prefill="Wait")], on_text=on_text)
    assert server.requests == []  # refused before anything was sent


# --- replies ----------------------------------------------------------------------------------


async def test_reply_text_usage_and_finish_reason_are_read() -> None:
    server = FakeServer(lambda request: reply("42", prompt_tokens=11, completion_tokens=2))
    [completion] = await backend_for(server).generate([ask()])
    assert completion.text == "42"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)
    assert completion.usage.calls == 1
    assert completion.finish_reason == "stop"


async def test_mean_logprob_is_the_mean_of_the_token_logprobs() -> None:
    server = FakeServer(lambda request: with_logprobs(reply("a b c"), -0.5, -1.0, -1.5))
    [completion] = await backend_for(server).generate([ask(logprobs=True)])
    assert completion.mean_logprob == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "fields",
    [{}, {"logprobs": None}, {"logprobs": {"content": None}}, {"logprobs": {"content": []}}],
    ids=["absent", "null", "null-content", "empty"],
)
async def test_without_logprobs_in_the_reply_there_is_no_mean(fields: dict[str, Any]) -> None:
    payload = reply("ok")
    payload["choices"][0].update(fields)
    server = FakeServer(lambda request: payload)
    [completion] = await backend_for(server).generate([ask(logprobs=True)])
    assert completion.mean_logprob is None


async def test_a_batch_runs_concurrently_within_the_limit_and_keeps_order() -> None:
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        text = json.loads(request.content)["messages"][0]["content"]
        await asyncio.sleep(0.05 if text == "0" else 0.01)  # the first finishes last
        in_flight -= 1
        return reply(f"echo {text}")

    backend = backend_for(FakeServer(handler), max_concurrency=2)
    completions = await backend.generate([ask(str(i)) for i in range(5)])
    assert [c.text for c in completions] == [f"echo {i}" for i in range(5)]
    assert most == 2


async def test_a_reply_without_a_message_is_an_error() -> None:
    server = FakeServer(lambda request: {"choices": []})
    with pytest.raises(BackendError, match="without a message"):
        await backend_for(server).generate([ask()])


async def test_a_reply_that_is_not_json_is_an_error() -> None:
    server = FakeServer(lambda request: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(BackendError, match="not JSON"):
        await backend_for(server).generate([ask()])


# --- streaming --------------------------------------------------------------------------------


async def test_streamed_deltas_reach_on_text_and_usage_comes_from_the_last_event() -> None:
    body = sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
        chunk("Hel"),
        chunk("lo"),
        chunk(None, finish="stop"),
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    )
    # Comments and blank lines are part of SSE and must be skipped.
    body = b": keep-alive\n\n" + body
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    deltas: list[tuple[int, str]] = []
    [completion] = await backend_for(server).generate(
        [ask()], on_text=lambda index, delta: deltas.append((index, delta))
    )
    assert deltas == [(0, "Hel"), (0, "lo")]
    assert completion.text == "Hello"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 2)
    assert completion.finish_reason == "stop"
    [sent] = server.bodies()
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_without_usage_in_the_stream_content_chunks_are_counted() -> None:
    body = sse(chunk("a"), chunk("b"), chunk("c"), chunk(None, finish="length"))
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    [completion] = await backend_for(server).generate([ask()], on_text=lambda i, d: None)
    assert completion.text == "abc"
    assert completion.usage.completion_tokens == 3
    assert completion.usage.calls == 1
    assert completion.finish_reason == "length"


async def test_streamed_batch_tags_deltas_with_the_request_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["messages"][0]["content"]
        return httpx.Response(200, content=sse(chunk(text), chunk("!"), chunk(None, "stop")))

    deltas: list[tuple[int, str]] = []
    completions = await backend_for(FakeServer(handler)).generate(
        [ask("x"), ask("y")], on_text=lambda index, delta: deltas.append((index, delta))
    )
    assert [c.text for c in completions] == ["x!", "y!"]
    assert sorted(deltas) == [(0, "!"), (0, "x"), (1, "!"), (1, "y")]


async def test_streamed_logprobs_are_averaged_over_all_chunks() -> None:
    def logprob_chunk(content: str, *values: float) -> dict[str, Any]:
        event = chunk(content)
        entries = [{"token": "t", "logprob": v, "top_logprobs": []} for v in values]
        event["choices"][0]["logprobs"] = {"content": entries}
        return event

    body = sse(
        logprob_chunk("Hel", -0.2),
        logprob_chunk("lo", -0.4, -0.6),  # a server may put several tokens in one chunk
        chunk(None, finish="stop"),  # chunks without logprobs add nothing
    )
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    [completion] = await backend_for(server).generate(
        [ask(logprobs=True)], on_text=lambda i, d: None
    )
    assert completion.text == "Hello"
    assert completion.mean_logprob == pytest.approx(-0.4)


async def test_a_stream_without_logprobs_has_no_mean() -> None:
    body = sse(chunk("a"), chunk(None, finish="stop"))
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    [completion] = await backend_for(server).generate(
        [ask(logprobs=True)], on_text=lambda i, d: None
    )
    assert completion.mean_logprob is None


async def test_a_stream_cut_short_is_an_error_not_a_short_answer() -> None:
    # llama-cpp-python's server sends [DONE] early when another request arrives.
    body = sse(chunk("The answer"))
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    with pytest.raises(BackendError, match="interrupt_requests"):
        await backend_for(server).generate([ask()], on_text=lambda i, d: None)


async def test_an_error_event_in_the_stream_is_an_error() -> None:
    body = sse(chunk("x"), {"error": {"message": "KV cache full"}})
    server = FakeServer(lambda request: httpx.Response(200, content=body))
    with pytest.raises(BackendError, match="KV cache full"):
        await backend_for(server).generate([ask()], on_text=lambda i, d: None)


# --- failures ---------------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_says_the_server_cannot_be_reached() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    backend = OpenAIHTTPBackend(url, model="m", timeout_s=5)
    try:
        for on_text in (None, lambda i, d: None):
            with pytest.raises(BackendError) as error:
                await backend.generate([ask()], on_text=on_text)
            assert str(error.value).startswith(f"cannot reach the LLM server at {url}")
    finally:
        await backend.aclose()


async def test_model_discovery_on_a_closed_port_says_the_server_cannot_be_reached() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    backend = OpenAIHTTPBackend(url, timeout_s=5)
    with pytest.raises(BackendError, match="cannot reach the LLM server at"):
        await backend.generate([ask()])
    await backend.aclose()


async def test_a_timeout_says_how_long_it_waited() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    backend = backend_for(FakeServer(handler), timeout_s=7)
    with pytest.raises(BackendError, match=r"cannot reach .* no answer within 7 s"):
        await backend.generate([ask()])


async def test_http_500_reports_the_status_and_the_servers_message() -> None:
    error_body = {"error": {"message": "model crashed", "type": "server_error"}}
    server = FakeServer(lambda request: httpx.Response(500, json=error_body))
    for on_text in (None, lambda i, d: None):
        with pytest.raises(BackendError, match="HTTP 500: model crashed") as error:
            await backend_for(server).generate([ask()], on_text=on_text)
        assert f"{BASE}/chat/completions" in str(error.value)


async def test_http_error_messages_lose_tracebacks_and_are_truncated() -> None:
    message = (
        "1 validation error: Input should be 'text' or 'json_object'\n\n"
        '  File "/srv/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions'
    )
    server = FakeServer(lambda request: httpx.Response(500, json={"message": message}))
    with pytest.raises(BackendError) as error:
        await backend_for(server).generate([ask()])
    assert "Input should be 'text' or 'json_object'" in str(error.value)
    assert "File" not in str(error.value)

    server = FakeServer(lambda request: httpx.Response(400, text="x" * 5000))
    with pytest.raises(BackendError, match="HTTP 400") as error:
        await backend_for(server).generate([ask()])
    assert len(str(error.value)) < 700


async def test_one_failing_request_fails_the_batch() -> None:
    def handler(request: httpx.Request) -> Any:
        text = json.loads(request.content)["messages"][0]["content"]
        if text == "bad":
            return httpx.Response(422, json={"detail": "bad request"})
        return reply("ok")

    with pytest.raises(BackendError, match="HTTP 422: bad request"):
        await backend_for(FakeServer(handler)).generate([ask("good"), ask("bad"), ask("good")])
