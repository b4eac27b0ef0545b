"""The in-process vLLM backend against a fake `vllm` module (vLLM needs a GPU).

It checks what the backend asks of `LLM.chat` and `SamplingParams` (batching,
prefill continuation flags, logprobs) and how it reads vLLM's outputs; whether
vLLM does what its documentation says is not tested here.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from flux_agent.backends import GenerationRequest, LLMBackend, VLLMBackend


@dataclass
class Logprob:
    logprob: float


@dataclass
class Params:
    kwargs: dict[str, Any]


@dataclass
class FakeLLM:
    """Replies "<last message> done" and logprobs the way vLLM's V1 engine reports them."""

    model: str
    engine_args: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)
    cumulative: bool = True

    def chat(self, conversations: list[list[dict[str, str]]], **kwargs: Any) -> list[Any]:
        self.calls.append({"conversations": conversations, **kwargs})
        outputs = []
        for conversation, params in zip(conversations, kwargs["sampling_params"], strict=True):
            token_ids = [7, 8, 9, 10]
            asked = params.kwargs["logprobs"] is not None
            per_token = [{t: Logprob(-0.5 * (i + 1))} for i, t in enumerate(token_ids)]
            sample = types.SimpleNamespace(
                text=f"{conversation[-1]['content']} done",
                token_ids=token_ids,
                finish_reason="stop",
                cumulative_logprob=sum(-0.5 * (i + 1) for i in range(4))
                if asked and self.cumulative
                else None,
                logprobs=per_token if asked else None,
            )
            outputs.append(types.SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[sample]))
        return outputs


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> VLLMBackend:
    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda model, **engine_args: FakeLLM(model, engine_args)  # type: ignore[attr-defined]
    vllm.SamplingParams = lambda **kwargs: Params(kwargs)  # type: ignore[attr-defined]
    sampling_params = types.ModuleType("vllm.sampling_params")
    sampling_params.StructuredOutputsParams = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_params)
    return VLLMBackend("fake/model")


def fake_llm(backend: VLLMBackend) -> FakeLLM:
    llm = backend._llm
    assert isinstance(llm, FakeLLM)
    return llm


def ask(text: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


def test_is_an_llm_backend_that_takes_a_prefill(backend: VLLMBackend) -> None:
    assert isinstance(backend, LLMBackend)
    assert backend.supports_prefill


async def test_a_plain_batch_is_one_chat_call_with_a_new_assistant_turn(
    backend: VLLMBackend,
) -> None:
    completions = await backend.generate([ask("a"), ask("b")])
    assert [c.text for c in completions] == ["a done", "b done"]
    [call] = fake_llm(backend).calls
    assert call["add_generation_prompt"] is True
    assert call["continue_final_message"] is False
    assert [c.usage.prompt_tokens for c in completions] == [3, 3]
    assert [c.usage.completion_tokens for c in completions] == [4, 4]


async def test_prefilled_requests_continue_the_final_assistant_message(
    backend: VLLMBackend,
) -> None:
    requests = [ask("a", prefill="Let me think. Wait"), ask("b"), ask("c", prefill="Answer:")]
    completions = await backend.generate(requests)
    # Back in request order, although the flags split the batch into two calls.
    assert [c.text for c in completions] == ["Let me think. Wait done", "b done", "Answer: done"]
    plain, continued = fake_llm(backend).calls
    assert plain["conversations"] == [[{"role": "user", "content": "b"}]]
    assert (plain["add_generation_prompt"], plain["continue_final_message"]) == (True, False)
    assert continued["conversations"] == [
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "Let me think. Wait"}],
        [{"role": "user", "content": "c"}, {"role": "assistant", "content": "Answer:"}],
    ]
    assert (continued["add_generation_prompt"], continued["continue_final_message"]) == (
        False,
        True,
    )


async def test_logprobs_ask_for_the_chosen_token_and_average_it(backend: VLLMBackend) -> None:
    asked, plain = await backend.generate([ask("a", logprobs=True), ask("b")])
    [call] = fake_llm(backend).calls
    assert [p.kwargs["logprobs"] for p in call["sampling_params"]] == [0, None]
    assert asked.mean_logprob == pytest.approx(-1.25)  # (-0.5 - 1 - 1.5 - 2) / 4
    assert plain.mean_logprob is None


async def test_per_token_logprobs_serve_when_there_is_no_cumulative_one(
    backend: VLLMBackend,
) -> None:
    fake_llm(backend).cumulative = False
    [completion] = await backend.generate([ask("a", logprobs=True)])
    assert completion.mean_logprob == pytest.approx(-1.25)
