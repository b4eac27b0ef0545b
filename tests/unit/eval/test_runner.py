"""The eval runner: scoring, error records, resuming an interrupted run, run-directory checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from flux_agent.backends.base import BackendError, Usage
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.eval.outcome import Outcome
from flux_agent.eval.records import RESULTS_FILE, EvalItem, EvalRecord, EvalRunInfo
from flux_agent.eval.runner import (
    RunDirectoryError,
    done_pairs,
    prepare_run_dir,
    run_eval,
)
from flux_agent.eval.strategies import ChainOfThought

ITEMS = [
    EvalItem(
        id=f"p{i}", problem=f"What is {i} + {i}?", answer=str(2 * i), subject="Algebra", level=1
    )
    for i in range(1, 6)
]


class Doubler:
    """Answers 2i for item i, except where told to be wrong; records what it was asked."""

    def __init__(self, wrong: tuple[str, ...] = (), interrupt_on: str | None = None) -> None:
        self.name = "doubler"
        self.wrong = wrong
        self.interrupt_on = interrupt_on
        self.seen: list[str] = []

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        number = int(problem.split()[2])
        if self.interrupt_on and problem.startswith(self.interrupt_on):
            raise asyncio.CancelledError  # what Ctrl-C does to the tasks of asyncio.run
        self.seen.append(problem)
        answer = str(2 * number + (1 if problem in self.wrong else 0))
        return Outcome(answer, {"solver": Usage(10, 5, 1)}, {"seed": seed})


class Broken:
    name = "broken"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        raise BackendError("server unreachable")


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / RESULTS_FILE).read_text().splitlines()]


async def test_records_are_scored_and_written_as_they_finish(tmp_path, sandbox):
    seen: list[EvalRecord] = []
    strategy = Doubler(wrong=("What is 2 + 2?",))

    written = await run_eval(
        ITEMS[:3], {"double": strategy}, tmp_path, sandbox=sandbox, on_record=seen.append
    )

    assert [r.correct for r in written] == [True, False, True]
    assert seen == written
    on_disk = lines(tmp_path)
    assert [(r["strategy"], r["item_id"]) for r in on_disk] == [
        ("double", "p1"),
        ("double", "p2"),
        ("double", "p3"),
    ]
    first = on_disk[0]
    assert first["expected"] == "2" and first["answer"] == "2"
    assert first["completion_tokens"] == 5 and first["llm_calls"] == 1
    assert first["usage"]["solver"]["prompt_tokens"] == 10
    assert first["subject"] == "Algebra" and first["level"] == 1
    assert first["wall_s"] >= 0


async def test_equivalent_forms_score_as_correct(tmp_path, sandbox):
    item = EvalItem(id="half", problem="What is one half?", answer="\\frac{1}{2}")
    backend = ScriptedBackend(["It is 0.5, so \\boxed{0.5}"])

    (record,) = await run_eval([item], {"cot": ChainOfThought(backend)}, tmp_path, sandbox=sandbox)

    assert record.answer == "0.5" and record.correct is True


async def test_a_failing_strategy_becomes_an_error_record_and_the_run_goes_on(tmp_path, sandbox):
    written = await run_eval(
        ITEMS[:2], {"broken": Broken(), "double": Doubler()}, tmp_path, sandbox=sandbox
    )
    by_pair = {(r.strategy, r.item_id): r for r in written}
    assert len(by_pair) == 4
    broken = by_pair[("broken", "p1")]
    assert broken.answer is None and broken.correct is False
    assert broken.error == "BackendError: server unreachable"
    assert by_pair[("double", "p2")].correct is True


async def test_an_interrupted_run_resumes_without_redoing_finished_pairs(tmp_path, sandbox):
    first = Doubler(interrupt_on="What is 4")
    with pytest.raises(asyncio.CancelledError):
        await run_eval(ITEMS, {"double": first}, tmp_path, sandbox=sandbox)
    assert [r["item_id"] for r in lines(tmp_path)] == ["p1", "p2", "p3"]
    # A run killed mid-write leaves a torn last line; it must not count as done.
    with (tmp_path / RESULTS_FILE).open("a") as results:
        results.write('{"strategy": "double", "item_id": "p4", "cor')

    second = Doubler()
    written = await run_eval(ITEMS, {"double": second}, tmp_path, sandbox=sandbox)

    assert second.seen == ["What is 4 + 4?", "What is 5 + 5?"]
    assert [r.item_id for r in written] == ["p4", "p5"]
    assert done_pairs(tmp_path) == {("double", f"p{i}") for i in range(1, 6)}


async def test_strategies_alternate_per_item_so_partial_runs_compare(tmp_path, sandbox):
    await run_eval(ITEMS[:2], {"a": Doubler(), "b": Doubler()}, tmp_path, sandbox=sandbox)
    assert [(r["item_id"], r["strategy"]) for r in lines(tmp_path)] == [
        ("p1", "a"),
        ("p1", "b"),
        ("p2", "a"),
        ("p2", "b"),
    ]


async def test_retry_errors_reruns_only_failed_pairs(tmp_path, sandbox):
    await run_eval(ITEMS[:2], {"s": Broken()}, tmp_path, sandbox=sandbox)
    assert done_pairs(tmp_path, retry_errors=True) == set()
    fixed = Doubler()
    written = await run_eval(ITEMS[:2], {"s": fixed}, tmp_path, sandbox=sandbox, retry_errors=True)
    assert [r.correct for r in written] == [True, True]
    # Without the flag, the error records count as done.
    assert await run_eval(ITEMS[:2], {"s": Doubler()}, tmp_path, sandbox=sandbox) == []


async def test_each_item_gets_its_own_seed(tmp_path, sandbox):
    written = await run_eval(ITEMS[:3], {"d": Doubler()}, tmp_path, sandbox=sandbox, seed=100)
    assert [r.details["seed"] for r in written] == [100, 101, 102]


def run_info(**changes) -> EvalRunInfo:
    values = dict(
        dataset="math.jsonl",
        items=5,
        strategies=["cot"],
        navigator="embedded",
        solver="embedded",
        samples=4,
        started="2026-11-25T00:00:00+00:00",
        flux_version="0.1.0",
    )
    return EvalRunInfo(**{**values, **changes})


def test_a_run_directory_accepts_new_strategies_but_not_another_dataset(tmp_path):
    prepare_run_dir(tmp_path, run_info())
    merged = prepare_run_dir(tmp_path, run_info(strategies=["flux", "cot"], started="later"))
    assert merged.strategies == ["cot", "flux"]
    assert merged.started == "2026-11-25T00:00:00+00:00"  # the first start is kept
    with pytest.raises(RunDirectoryError, match="dataset"):
        prepare_run_dir(tmp_path, run_info(dataset="gsm8k.jsonl"))
    with pytest.raises(RunDirectoryError, match="samples"):
        prepare_run_dir(tmp_path, run_info(samples=8))


def test_a_corrupt_run_description_is_reported(tmp_path):
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(RunDirectoryError, match="not a run description"):
        prepare_run_dir(tmp_path, run_info())
