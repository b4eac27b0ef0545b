"""The OpenAI-compatible facade, driven by the official `openai` client over ASGI."""

from __future__ import annotations

import httpx
import openai
import pytest

from flux_agent.api import create_app
from tests.unit.api.conftest import PROBLEM, client_for, make_service


def openai_client(service, api_key: str = "unused") -> openai.AsyncOpenAI:
    transport = httpx.ASGITransport(app=create_app(service))
    return openai.AsyncOpenAI(
        base_url="http://test/v1",
        api_key=api_key,
        http_client=httpx.AsyncClient(transport=transport, base_url="http://test"),
        max_retries=0,
    )


async def test_models_lists_flux(service):
    models = await openai_client(service).models.list()
    assert [m.id for m in models.data] == ["flux"]


async def test_chat_completion_has_the_answer_and_the_trajectory(service):
    client = openai_client(service)
    completion = await client.chat.completions.create(
        model="flux",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": PROBLEM},
        ],
        temperature=0.2,  # accepted and ignored
    )
    assert completion.choices[0].message.content == "5"
    assert completion.choices[0].finish_reason == "stop"
    flux = completion.model_extra["flux"]
    assert flux["problem"] == PROBLEM and flux["verified"] is True
    assert flux["steps"][0]["check"] == "verified"
    assert completion.id == f"chatcmpl-{flux['run_id']}"
    assert completion.usage.completion_tokens == sum(
        u["completion_tokens"] for u in flux["usage"].values()
    )
    # The run is stored like any other.
    async with client_for(service) as http:
        assert (await http.get(f"/v1/runs/{flux['run_id']}")).json()["answer"] == "5"


async def test_streamed_chat_sends_reasoning_then_the_answer(service):
    client = openai_client(service)
    stream = await client.chat.completions.create(
        model="flux",
        messages=[{"role": "user", "content": [{"type": "text", "text": PROBLEM}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    assert reasoning == "By Vieta the sum of the roots is -b/a = 5."
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "5"
    events = [c.model_extra["flux_event"]["type"] for c in chunks if "flux_event" in c.model_extra]
    assert "plan" in events and "check" in events and "answer" in events
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.model_extra["flux"]["answer"] == "5"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


async def test_chat_errors_are_openai_errors(tmp_path, keyword_store, sandbox):
    service = make_service(tmp_path, keyword_store, sandbox, api_key="k")
    client = openai_client(service, api_key="k")
    with pytest.raises(openai.NotFoundError, match="model 'gpt-4o' does not exist"):
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": PROBLEM}]
        )
    with pytest.raises(openai.UnprocessableEntityError, match="last user message is empty"):
        await client.chat.completions.create(
            model="flux", messages=[{"role": "system", "content": "hi"}]
        )
    with pytest.raises(openai.UnprocessableEntityError, match="n"):
        await client.chat.completions.create(
            model="flux", messages=[{"role": "user", "content": PROBLEM}], n=2
        )
    with pytest.raises(openai.AuthenticationError, match="wrong"):
        await openai_client(service, api_key="bad").models.list()


async def test_a_deadline_in_a_chat_stream_raises_in_the_client(tmp_path, keyword_store, sandbox):
    from tests.unit.api.conftest import SlowBackend, answer_anything

    solver = SlowBackend(answer_anything, delay=0.3)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver, solve_timeout_s=0.2)
    stream = await openai_client(service).chat.completions.create(
        model="flux", messages=[{"role": "user", "content": PROBLEM}], stream=True
    )
    with pytest.raises(openai.APIError, match=r"longer than 0\.2 s"):
        async for _ in stream:
            pass
