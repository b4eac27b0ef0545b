"""Logprobs and prefills on the real backends that have them.

In process, the embedded SmolLM2 model (`LlamaCppBackend`): logprobs must not
change the reply, and a prefill must be continued as raw text after the chat
prompt that `create_chat_completion` itself renders. Over HTTP, llama-cpp-python's
server (`python -m llama_cpp.server`, from conftest.py) must return logprobs
for what `OpenAIHTTPBackend` sends. What both backends do alike is in
test_backend_conformance.py.

Replies are greedy and at most 16 tokens, to keep the suite short on a CPU.
"""

from __future__ import annotations

import math
import types
from dataclasses import replace
from typing import Any

import pytest

from flux_agent.backends import (
    BackendError,
    GenerationRequest,
    LlamaCppBackend,
    OpenAIHTTPBackend,
    embedded_model_path,
)
from flux_agent.backends import llama_cpp as llama_cpp_backend

pytestmark = pytest.mark.integration

CAPITAL = GenerationRequest(
    messages=[
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    max_tokens=16,
)
PREFILL = "The capital of France is"


def is_log_probability(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value <= 0


def ignore(index: int, delta: str) -> None:
    return None


# --- llama.cpp in process: logprobs -------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_llama_cpp_logprobs_leave_the_greedy_reply_unchanged(stream: bool) -> None:
    backend = LlamaCppBackend()
    on_text = ignore if stream else None
    [plain] = await backend.generate([CAPITAL], on_text=on_text)
    [scored] = await backend.generate([replace(CAPITAL, logprobs=True)], on_text=on_text)
    assert scored.text == plain.text
    assert scored.usage == plain.usage
    assert is_log_probability(scored.mean_logprob), scored.mean_logprob
    assert plain.mean_logprob is None


async def test_llama_cpp_streamed_and_whole_logprobs_agree() -> None:
    backend = LlamaCppBackend()
    request = replace(CAPITAL, logprobs=True)
    [whole] = await backend.generate([request])
    [streamed] = await backend.generate([request], on_text=ignore)
    assert streamed.text == whole.text
    assert streamed.mean_logprob == pytest.approx(whole.mean_logprob, abs=1e-6)


async def test_llama_cpp_logprobs_run_on_a_second_model_that_keeps_all_logits() -> None:
    backend = LlamaCppBackend()
    await backend.generate([replace(CAPITAL, max_tokens=1, logprobs=True)])
    await backend.generate([replace(CAPITAL, max_tokens=1)])
    path = str(embedded_model_path().resolve())
    models = {key: llm for key, (llm, _) in llama_cpp_backend._models.items() if key[0] == path}
    assert {(path, 4096, False), (path, 4096, True)} <= set(models)
    assert models[(path, 4096, True)]._logits_all
    assert not models[(path, 4096, False)]._logits_all


# --- llama.cpp in process: prefill --------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_llama_cpp_continues_a_prefill_as_raw_text(stream: bool) -> None:
    backend = LlamaCppBackend()
    assert backend.supports_prefill
    deltas: list[str] = []
    on_text = (lambda index, delta: deltas.append(delta)) if stream else None
    [completion] = await backend.generate([replace(CAPITAL, prefill=PREFILL)], on_text=on_text)
    text = completion.text
    assert text.strip()
    # A continuation of the sentence, not a new turn or a restart of it.
    assert "<|im_start|>" not in text and not text.lstrip().startswith("assistant")
    assert not text.lstrip().startswith(PREFILL)
    assert "Paris" in text  # greedy SmolLM2 completes the sentence
    assert completion.usage.prompt_tokens > 0
    if stream:
        assert "".join(deltas) == text


async def test_llama_cpp_rendered_chat_prompt_is_the_one_chat_completion_uses() -> None:
    # With nothing prefilled, the completion we set up must reproduce the chat
    # completion exactly: same prompt tokens, stop token and sampling.
    backend = LlamaCppBackend()
    [chat] = await backend.generate([CAPITAL])
    llm, lock = llama_cpp_backend._load(backend.model_path, backend.context_length, None)
    kwargs = llama_cpp_backend.continuation_kwargs(llm, CAPITAL)
    with lock:
        response = llm.create_completion(**kwargs)
    assert response["choices"][0]["text"] == chat.text
    assert len(kwargs["prompt"]) == chat.usage.prompt_tokens
    assert kwargs["prompt"][:2] != [llm.token_bos()] * 2


async def test_llama_cpp_prefill_with_the_start_of_the_reply_continues_the_reply() -> None:
    backend = LlamaCppBackend()
    [chat] = await backend.generate([CAPITAL])
    words = chat.text.split(" ")
    assert len(words) > 3, chat.text
    start = " ".join(words[:3])
    [rest] = await backend.generate([replace(CAPITAL, prefill=start)])
    assert (start + rest.text).startswith(chat.text)


async def test_llama_cpp_prefill_with_a_schema_is_refused() -> None:
    request = replace(CAPITAL, prefill="{", json_schema={"type": "object"})
    with pytest.raises(BackendError, match="prefill with a JSON schema"):
        await LlamaCppBackend().generate([request])


def test_llama_cpp_prefill_needs_a_chat_template() -> None:
    no_template: Any = types.SimpleNamespace(metadata={}, model_path="/models/base.gguf")
    with pytest.raises(BackendError, match=r"base\.gguf has no chat template"):
        llama_cpp_backend.continuation_kwargs(no_template, replace(CAPITAL, prefill=PREFILL))


# --- llama-cpp-python's server over HTTP ---------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_llama_server_returns_logprobs_for_what_the_backend_sends(
    llama_server: str, stream: bool
) -> None:
    # The server loads its model with logits_all=True by default, but answers
    # `logprobs: true` with none unless `top_logprobs` is set too.
    backend = OpenAIHTTPBackend(llama_server, structured_output="llama_cpp", timeout_s=120)
    try:
        on_text = ignore if stream else None
        [plain] = await backend.generate([CAPITAL], on_text=on_text)
        [scored] = await backend.generate([replace(CAPITAL, logprobs=True)], on_text=on_text)
    finally:
        await backend.aclose()
    assert scored.text == plain.text
    assert is_log_probability(scored.mean_logprob), scored.mean_logprob
    assert plain.mean_logprob is None
    # The same model in process gives the same greedy reply and about the same mean.
    [local] = await LlamaCppBackend().generate([replace(CAPITAL, logprobs=True)])
    assert local.text == scored.text
    assert scored.mean_logprob == pytest.approx(local.mean_logprob, abs=1e-4)
