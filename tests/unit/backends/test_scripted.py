"""The scripted backend: list, dict and function scripts, call records, streaming."""

from __future__ import annotations

import pytest

from flux_agent.backends import BackendError, GenerationRequest, LLMBackend, ScriptedBackend


def ask(text: str, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)  # type: ignore[arg-type]


def test_is_an_llm_backend() -> None:
    assert isinstance(ScriptedBackend(["x"]), LLMBackend)


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
