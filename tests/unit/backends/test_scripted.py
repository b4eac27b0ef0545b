"""The scripted backend: list, dict and function scripts, call records, streaming, and
`Completion` replies."""

from __future__ import annotations

import pytest

from flux_agent.backends import (
    BackendError,
    Completion,
    GenerationRequest,
    LLMBackend,
    ScriptedBackend,
    Usage,
)


def ask(text: str, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)  # type: ignore[arg-type]


def test_is_an_llm_backend_that_takes_a_prefill() -> None:
    backend = ScriptedBackend(["x"])
    assert isinstance(backend, LLMBackend)
    assert backend.supports_prefill


async def test_list_script_replies_in_order_across_calls() -> None:
    backend = ScriptedBackend(["first", "second", "third"])
    batch = await backend.generate([ask("a"), ask("b")])
    later = await backend.generate([ask("c")])
    assert [c.text for c in batch] == ["first", "second"]
    assert [c.text for c in later] == ["third"]


async def test_list_script_fails_loudly_when_exhausted() -> None:
    backend = ScriptedBackend(["only"])
    await backend.generate([ask("a")])
    with pytest.raises(BackendError, match="exhausted after 1"):
        await backend.generate([ask("b")])


async def test_dict_script_matches_a_substring_of_the_last_user_message() -> None:
    backend = ScriptedBackend({"plan": '{"steps": []}', "step": "x = 2"})
    request = GenerationRequest(
        messages=[
            {"role": "user", "content": "write a plan"},
            {"role": "assistant", "content": "..."},
            {"role": "user", "content": "now do step 1"},
        ]
    )
    [completion] = await backend.generate([request])
    assert completion.text == "x = 2"
    [completion] = await backend.generate([ask("make a plan please")])
    assert completion.text == '{"steps": []}'


async def test_dict_script_without_a_match_names_the_prompt() -> None:
    backend = ScriptedBackend({"plan": "{}"})
    with pytest.raises(BackendError, match="unscripted question"):
        await backend.generate([ask("an unscripted question")])


async def test_function_script_sees_the_request() -> None:
    backend = ScriptedBackend(lambda request: f"{request.max_tokens}:{request.json_schema}")
    [completion] = await backend.generate([ask("q", max_tokens=7, json_schema={"type": "object"})])
    assert completion.text == "7:{'type': 'object'}"


async def test_every_request_is_recorded() -> None:
    backend = ScriptedBackend(["1", "2", "3"])
    requests = [ask("a"), ask("b", temperature=0.7)]
    await backend.generate(requests)
    await backend.generate([ask("c")])
    assert backend.calls == [*requests, ask("c")]


async def test_usage_counts_words_and_calls() -> None:
    backend = ScriptedBackend(["three word reply"])
    [completion] = await backend.generate([ask("two words")])
    assert completion.usage.prompt_tokens == 2
    assert completion.usage.completion_tokens == 3
    assert completion.usage.calls == 1


async def test_on_text_deltas_join_to_each_text_with_the_request_index() -> None:
    backend = ScriptedBackend(["alpha beta gamma", "delta epsilon"])
    deltas: list[tuple[int, str]] = []
    completions = await backend.generate(
        [ask("a"), ask("b")], on_text=lambda index, delta: deltas.append((index, delta))
    )
    for index, completion in enumerate(completions):
        pieces = [delta for i, delta in deltas if i == index]
        assert len(pieces) > 1
        assert "".join(pieces) == completion.text


async def test_completion_replies_keep_finish_reason_and_mean_logprob() -> None:
    backend = ScriptedBackend(
        [Completion("cut short", finish_reason="length", mean_logprob=-0.25), "plain text"]
    )
    truncated, plain = await backend.generate([ask("two words"), ask("b")])
    assert truncated.text == "cut short"
    assert truncated.finish_reason == "length"
    assert truncated.mean_logprob == -0.25
    # Usage left at zero is counted as for a text reply.
    assert truncated.usage == Usage(2, 2, 1)
    assert (plain.finish_reason, plain.mean_logprob) == ("stop", None)


async def test_completion_replies_from_dict_and_function_scripts() -> None:
    by_prompt = ScriptedBackend({"sure": Completion("yes", mean_logprob=-0.1)})
    [completion] = await by_prompt.generate([ask("are you sure?")])
    assert (completion.text, completion.mean_logprob) == ("yes", -0.1)

    def script(request: GenerationRequest) -> Completion:
        return Completion(" 42", mean_logprob=-1.0 if request.logprobs else None)

    by_function = ScriptedBackend(script)
    [with_logprobs, without] = await by_function.generate([ask("q", logprobs=True), ask("q")])
    assert (with_logprobs.mean_logprob, without.mean_logprob) == (-1.0, None)


async def test_a_completion_with_usage_is_returned_as_scripted() -> None:
    scripted = Completion("x", usage=Usage(100, 7, 1), finish_reason="length")
    [completion] = await ScriptedBackend([scripted]).generate([ask("a b c")])
    assert completion == scripted


async def test_completion_text_is_streamed_too() -> None:
    backend = ScriptedBackend([Completion("alpha beta", mean_logprob=-0.5)])
    pieces: list[str] = []
    [completion] = await backend.generate([ask("a")], on_text=lambda i, d: pieces.append(d))
    assert pieces == ["alpha ", "beta"]
    assert completion.mean_logprob == -0.5


async def test_a_prefill_is_recorded_and_the_reply_is_the_continuation() -> None:
    backend = ScriptedBackend([" Paris."])
    request = ask("capital of France?", prefill="The capital of France is")
    [completion] = await backend.generate([request])
    assert completion.text == " Paris."
    assert backend.calls[0].prefill == "The capital of France is"
