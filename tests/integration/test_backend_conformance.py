"""One behaviour suite for every `LLMBackend` that can run here.

Parametrised over the scripted backend, the embedded SmolLM2 model in process
(`LlamaCppBackend`), and the same model behind llama-cpp-python's
OpenAI-compatible server (`python -m llama_cpp.server`, started on 127.0.0.1
once per test session and stopped at its end) through `OpenAIHTTPBackend`. The vLLM
backend needs a GPU and is not run here.

Replies are kept short (at most 64 tokens) so the suite runs in a minute or two
on two CPU cores.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flux_agent.backends import (
    BackendError,
    GenerationRequest,
    LlamaCppBackend,
    LLMBackend,
    OpenAIHTTPBackend,
    ScriptedBackend,
    embedded_model_path,
)
from flux_agent.backends import llama_cpp as llama_cpp_backend

pytestmark = pytest.mark.integration


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def ask(text: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


def word_choice(word: str) -> dict[str, Any]:
    """A schema whose only valid instance is {"word": word}: it shows which reply is which."""
    return {
        "type": "object",
        "properties": {"word": {"type": "string", "enum": [word]}},
        "required": ["word"],
    }


def scripted_reply(request: GenerationRequest) -> str:
    """Plays a model that obeys the schema and max_tokens (one word = one token)."""
    schema = request.json_schema
    if schema is not None and "word" in schema["properties"]:
        return json.dumps({"word": schema["properties"]["word"]["enum"][0]})
    if schema is not None:
        return json.dumps({"name": "Ada", "age": 36})
    words = ["Hello!", "I", "am", "a", "scripted", "model."]
    return " ".join(words[: request.max_tokens])


@pytest.fixture(params=["scripted", "llama_cpp", "openai_http"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[LLMBackend]:
    built: LLMBackend
    if request.param == "scripted":
        built = ScriptedBackend(scripted_reply)
    elif request.param == "llama_cpp":
        built = LlamaCppBackend()
    else:
        base_url = request.getfixturevalue("llama_server")
        built = OpenAIHTTPBackend(base_url, structured_output="llama_cpp", timeout_s=120)
    yield built
    await built.aclose()


def is_person(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"name", "age"}
        and isinstance(value["name"], str)
        and len(value["name"]) <= 20
        and isinstance(value["age"], int)
        and not isinstance(value["age"], bool)
        and 0 <= value["age"] <= 150
    )


async def test_plain_generation_returns_text_and_usage(backend: LLMBackend) -> None:
    [completion] = await backend.generate([ask("Say hello in one short sentence.", max_tokens=32)])
    assert completion.text.strip()
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 32
    assert completion.usage.calls == 1
    assert completion.finish_reason in ("stop", "length")


async def test_batch_results_come_back_in_request_order(backend: LLMBackend) -> None:
    words = ["apple", "river"]
    requests = [
        ask(f"Reply with the JSON object for the word {word}.", max_tokens=24, json_schema=schema)
        for word, schema in ((w, word_choice(w)) for w in words)
    ]
    completions = await backend.generate(requests)
    assert len(completions) == 2
    assert [json.loads(c.text) for c in completions] == [{"word": w} for w in words]


async def test_empty_batch_returns_nothing(backend: LLMBackend) -> None:
    assert await backend.generate([]) == []


async def test_json_schema_reply_parses_and_validates(backend: LLMBackend) -> None:
    request = ask(
        "Describe a person as a JSON object with a name and an age.",
        max_tokens=64,
        json_schema=PERSON,
    )
    [completion] = await backend.generate([request])
    value = json.loads(completion.text)
    assert is_person(value), completion.text


async def test_streamed_deltas_join_to_each_text_on_the_loop_thread(backend: LLMBackend) -> None:
    loop_thread = threading.get_ident()
    deltas: list[tuple[int, str]] = []
    threads: set[int] = set()

    def on_text(index: int, delta: str) -> None:
        threads.add(threading.get_ident())
        deltas.append((index, delta))

    requests = [
        ask("Say hello in one short sentence.", max_tokens=24),
        ask("Name a color.", max_tokens=24),
    ]
    completions = await backend.generate(requests, on_text=on_text)
    assert threads == {loop_thread}
    for index, completion in enumerate(completions):
        pieces = [delta for i, delta in deltas if i == index]
        assert completion.text.strip()
        assert len(pieces) > 1
        assert "".join(pieces) == completion.text
        assert 0 < completion.usage.completion_tokens <= 24


async def test_streamed_json_reply_is_valid_too(backend: LLMBackend) -> None:
    request = ask("Describe a person as JSON.", max_tokens=64, json_schema=PERSON)
    pieces: list[str] = []
    [completion] = await backend.generate([request], on_text=lambda i, d: pieces.append(d))
    assert "".join(pieces) == completion.text
    assert is_person(json.loads(completion.text)), completion.text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_max_tokens_is_respected(backend: LLMBackend, stream: bool) -> None:
    request = ask("Write a long story about a dragon who learns to count.", max_tokens=8)
    on_text = (lambda i, d: None) if stream else None
    [completion] = await backend.generate([request], on_text=on_text)
    assert completion.text.strip()
    assert completion.usage.completion_tokens <= 8
    assert completion.finish_reason == "length" or completion.usage.completion_tokens < 8


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_mean_logprob_is_a_log_probability_and_only_when_asked(
    backend: LLMBackend, stream: bool
) -> None:
    on_text = (lambda i, d: None) if stream else None
    asked, plain = await backend.generate(
        [ask("Name a color.", max_tokens=8, logprobs=True), ask("Name a color.", max_tokens=8)],
        on_text=on_text,
    )
    assert plain.mean_logprob is None
    # None is allowed (a backend that cannot tell); a made-up value is not.
    if asked.mean_logprob is not None:
        assert math.isfinite(asked.mean_logprob)
        assert asked.mean_logprob <= 0


async def test_a_prefill_is_continued_or_refused(backend: LLMBackend) -> None:
    assert isinstance(backend.supports_prefill, bool)
    request = ask(
        "What is the capital of France?", max_tokens=8, prefill="The capital of France is"
    )
    if not backend.supports_prefill:
        with pytest.raises(BackendError, match="prefill"):
            await backend.generate([request])
        return
    [completion] = await backend.generate([request])
    assert completion.text.strip()
    assert 0 < completion.usage.completion_tokens <= 8


# --- llama.cpp in process: sharing one model safely --------------------------------------------


async def test_llama_cpp_backends_on_one_file_share_the_model_and_take_turns() -> None:
    first, second = LlamaCppBackend(), LlamaCppBackend()
    request = ask(
        "Reply with the JSON object for the word apple.", json_schema=word_choice("apple")
    )
    other = ask("Reply with the JSON object for the word river.", json_schema=word_choice("river"))
    # Concurrent calls on one Llama would corrupt its KV cache without the lock.
    a, b = await asyncio.gather(first.generate([request, other]), second.generate([other]))
    assert [json.loads(c.text) for c in a] == [{"word": "apple"}, {"word": "river"}]
    assert json.loads(b[0].text) == {"word": "river"}
    path = str(embedded_model_path().resolve())
    # One model for plain requests (a second keeps all logits, for logprobs only).
    plain = [key for key in llama_cpp_backend._models if key[0] == path and not key[2]]
    assert plain == [(path, 4096, False)]


async def test_llama_cpp_streamed_usage_matches_the_unstreamed_count() -> None:
    backend = LlamaCppBackend()
    request = GenerationRequest(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name three colors."},
        ],
        max_tokens=16,
    )
    [whole] = await backend.generate([request])
    [streamed] = await backend.generate([request], on_text=lambda i, d: None)
    assert streamed.text == whole.text
    assert streamed.usage == whole.usage


async def test_llama_cpp_reports_an_impossible_request_as_a_backend_error() -> None:
    backend = LlamaCppBackend()
    too_long = ask("word " * 5000, max_tokens=8)  # more tokens than the 4096 context
    with pytest.raises(BackendError, match=r"llama\.cpp failed"):
        await backend.generate([too_long])


def test_llama_cpp_model_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=str(tmp_path / "absent.gguf")):
        LlamaCppBackend(tmp_path / "absent.gguf")


async def test_llama_cpp_cancelled_stream_stops_generating_at_once() -> None:
    backend = LlamaCppBackend()
    request = ask("Count from one to one hundred in words, separated by commas.", max_tokens=200)
    [full] = await backend.generate([request], on_text=lambda i, d: None)
    assert full.usage.completion_tokens > 120  # left alone, this reply is long

    deltas: list[str] = []
    started = asyncio.Event()

    def on_text(index: int, delta: str) -> None:
        deltas.append(delta)
        started.set()

    task = asyncio.create_task(backend.generate([request], on_text=on_text))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The next call waits for the model's lock, so the cancelled generation has ended.
    await backend.generate([ask("Say hi.", max_tokens=2)])
    await asyncio.sleep(0)  # deliver any delta still queued on the loop
    assert len(deltas) < 40, f"kept generating after the cancel: {len(deltas)} deltas"
