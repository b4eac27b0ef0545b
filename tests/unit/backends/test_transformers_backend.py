"""The transformers backend on a tiny random model folder: sampling, batching, prefill, stop
strings, streaming, logprobs, cancellation, errors, and the agent driven by it.

The folder is written once per module with `save_pretrained`, as `flux train` writes a
navigator; the model is random, so the tests check mechanics, never what it says.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from flux_agent.agent import AgentContext, FluxAgent
from flux_agent.backends import (
    BackendError,
    GenerationRequest,
    LLMBackend,
    ScriptedBackend,
    TransformersBackend,
    build_backend,
)
from flux_agent.config import AgentSettings, BackendSettings

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flux_agent.training.models import load_base
    from flux_agent.training.recipe import ModelSpec

    model, tokenizer = load_base(ModelSpec(source="tiny-random"))
    folder = tmp_path_factory.mktemp("tiny-navigator")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def backend(model_folder: Path) -> TransformersBackend:
    return TransformersBackend(model_folder, threads=2)


def ask(text: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


async def test_is_an_llm_backend_that_takes_a_prefill(backend: TransformersBackend) -> None:
    assert isinstance(backend, LLMBackend)
    assert backend.supports_prefill
    assert backend.name.startswith("transformers:")


async def test_greedy_is_deterministic_and_stops_at_max_tokens(
    backend: TransformersBackend,
) -> None:
    first = await backend.generate([ask("hello", max_tokens=6)])
    again = await backend.generate([ask("hello", max_tokens=6, seed=99)])  # greedy ignores it
    assert first == again
    (completion,) = first
    assert completion.text
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 6 and completion.usage.calls == 1
    assert completion.usage.prompt_tokens > 0
    assert completion.mean_logprob is None


async def test_seeded_sampling_repeats_and_different_seeds_differ(
    backend: TransformersBackend,
) -> None:
    def sampled(seed: int) -> GenerationRequest:
        return ask("hello", max_tokens=8, temperature=1.5, seed=seed)

    (one,) = await backend.generate([sampled(1)])
    (same,) = await backend.generate([sampled(1)])
    (other,) = await backend.generate([sampled(2)])
    assert one.text == same.text
    assert one.text != other.text
    # K samples of one prompt run as a batch: reproducible as a group, distinct within it.
    group = [sampled(seed) for seed in range(10, 14)]
    texts = [c.text for c in await backend.generate(group)]
    assert texts == [c.text for c in await backend.generate(group)]
    assert len(set(texts)) == len(texts)


async def test_seeding_leaves_the_process_random_state_alone(
    backend: TransformersBackend,
) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    await backend.generate([ask("hello", max_tokens=4, temperature=1.0, seed=5)])
    assert torch.equal(torch.rand(3), expected)


async def test_a_mixed_batch_equals_the_requests_run_one_by_one(
    backend: TransformersBackend,
) -> None:
    requests = [
        ask("hello", max_tokens=6),
        ask("a much longer prompt, so the batch needs left padding", max_tokens=6),
        ask("hello", max_tokens=4, logprobs=True),
        ask("two", max_tokens=6),
        ask("stop here", max_tokens=6, stop=["\n"]),
    ]
    batched = await backend.generate(requests)
    alone = [(await backend.generate([request]))[0] for request in requests]
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.usage for c in batched] == [c.usage for c in alone]
    assert batched[2].mean_logprob == pytest.approx(alone[2].mean_logprob, abs=1e-4)


async def test_prefill_returns_only_the_continuation(backend: TransformersBackend) -> None:
    pieces: list[str] = []
    (whole,) = await backend.generate(
        [ask("hello", max_tokens=8)], on_text=lambda _, delta: pieces.append(delta)
    )
    prefill = pieces[0]  # the first generated token's text
    (continued,) = await backend.generate([ask("hello", max_tokens=7, prefill=prefill)])
    assert continued.text == whole.text[len(prefill) :]
    assert continued.usage.prompt_tokens == whole.usage.prompt_tokens + 1


async def test_stop_strings_cut_the_text(backend: TransformersBackend) -> None:
    (whole,) = await backend.generate([ask("hello", max_tokens=12)])
    stop = whole.text[len(whole.text) // 2 : len(whole.text) // 2 + 3]
    (cut,) = await backend.generate([ask("hello", max_tokens=12, stop=[stop, "never seen"])])
    assert cut.text == whole.text[: whole.text.find(stop)]
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < 12


async def test_streaming_deltas_add_up_to_the_text(backend: TransformersBackend) -> None:
    pieces: list[tuple[int, str]] = []
    (whole,) = await backend.generate(
        [ask("hello", max_tokens=12)], on_text=lambda i, d: pieces.append((i, d))
    )
    assert len(pieces) > 1 and {i for i, _ in pieces} == {0}
    assert "".join(d for _, d in pieces) == whole.text
    # With a stop string, nothing past it is streamed.
    stop = whole.text[len(whole.text) // 2 : len(whole.text) // 2 + 3]
    pieces.clear()
    (cut,) = await backend.generate(
        [ask("hello", max_tokens=12, stop=[stop])], on_text=lambda i, d: pieces.append((i, d))
    )
    assert "".join(d for _, d in pieces) == cut.text == whole.text[: whole.text.find(stop)]


async def test_a_batch_reports_each_text_whole_by_index(backend: TransformersBackend) -> None:
    seen: dict[int, str] = {}
    completions = await backend.generate(
        [ask("one", max_tokens=4), ask("two", max_tokens=4)],
        on_text=lambda i, d: seen.__setitem__(i, seen.get(i, "") + d),
    )
    assert seen == {0: completions[0].text, 1: completions[1].text}


async def test_logprobs_give_a_finite_negative_mean(backend: TransformersBackend) -> None:
    (completion,) = await backend.generate([ask("hello", max_tokens=5, logprobs=True)])
    assert completion.mean_logprob is not None
    assert math.isfinite(completion.mean_logprob) and completion.mean_logprob < 0


async def test_json_schema_is_ignored_not_refused(backend: TransformersBackend) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    plain, constrained = await backend.generate(
        [ask("hello", max_tokens=4), ask("hello", max_tokens=4, json_schema=schema)]
    )
    assert plain == constrained


async def test_cancelling_stops_generation_and_frees_the_model(
    backend: TransformersBackend,
) -> None:
    await backend.generate([ask("warm up", max_tokens=1)])  # loads the weights
    long = asyncio.create_task(backend.generate([ask("hello", max_tokens=1500)]))
    await asyncio.sleep(0.3)
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    started = time.monotonic()
    (after,) = await asyncio.wait_for(backend.generate([ask("next", max_tokens=2)]), 10)
    assert after.usage.completion_tokens == 2
    assert time.monotonic() - started < 3


def test_missing_or_wrong_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not found"):
        TransformersBackend(tmp_path / "nowhere")
    adapter = tmp_path / "round-2" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(BackendError, match="merged/"):
        TransformersBackend(adapter)
    with pytest.raises(BackendError, match=r"no config\.json"):
        TransformersBackend(tmp_path)


def test_missing_packages_name_the_extra(
    model_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes the package unfindable
    with pytest.raises(BackendError, match=r"pip install -e '\.\[train\]'"):
        TransformersBackend(model_folder)


def test_hf_spec_builds_the_transformers_backend(model_folder: Path) -> None:
    backend = build_backend(BackendSettings.from_spec(f"hf:{model_folder}?threads=1"))
    assert isinstance(backend, TransformersBackend)
    assert backend.model_path == model_folder.resolve() and backend.threads == 1


async def test_agent_with_a_random_navigator_falls_back_and_finishes(
    model_folder: Path, keyword_store: Any, sandbox: Any, tmp_path: Path
) -> None:
    solver = ScriptedBackend(
        [
            "a=1, b=-5",
            json.dumps({"result": "5", "expression": "-(-5)/1"}),
            json.dumps({"answer": "5"}),
        ]
    )
    context = AgentContext(
        navigator=TransformersBackend(model_folder, threads=2),
        solver=solver,
        store=keyword_store,
        settings=AgentSettings(plan_tokens=64, max_json_retries=0),
        sandbox=sandbox,
    )
    agent = FluxAgent(context, tmp_path / "runs.sqlite")

    result = await agent.solve(PROBLEM)

    assert result.status == "answered" and result.answer == "5"
    assert any("navigator gave no valid plan" in failure for failure in result.failures)
    assert result.plan is not None and result.plan.analysis.startswith("(fallback")
    assert result.usage["navigator"].calls == 1
    assert result.usage["navigator"].completion_tokens > 0


async def test_the_last_backend_closed_on_a_folder_drops_its_model(
    model_folder: Path, tmp_path: Path
) -> None:
    import shutil

    from flux_agent.backends import transformers_backend

    folder = shutil.copytree(model_folder, tmp_path / "own")  # no other test's backends on it

    def loaded() -> bool:
        return any(key[0] == str(folder.resolve()) for key in transformers_backend._models)

    first, second = TransformersBackend(folder), TransformersBackend(folder)
    await first.generate([ask("load", max_tokens=1)])
    assert loaded()
    await first.aclose()
    await first.aclose()  # closing twice counts once
    assert loaded()  # `second` still shares it
    await second.aclose()
    assert not loaded()
