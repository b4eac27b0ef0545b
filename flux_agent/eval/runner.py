"""Run strategies over dataset items, score the answers, and append every result to disk.

    records = await run_eval(items, strategies, run_dir, sandbox=sandbox)

Each (strategy, item) pair becomes one `EvalRecord` line in `run_dir/results.jsonl`,
written and flushed as soon as it finishes, so an interrupted run loses at most
the pairs in flight; a rerun reads the file and skips the pairs already there.
Pairs run with bounded concurrency; in-process backends serialise generation
anyway, while HTTP backends (vLLM, llama.cpp's server) batch concurrent requests.
Work is ordered item by item, every strategy on an item before the next item, so
a partial run still compares strategies on the same problems.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from flux_agent.eval.outcome import Outcome, Strategy
from flux_agent.eval.records import (
    RESULTS_FILE,
    RUN_INFO_FILE,
    EvalItem,
    EvalRecord,
    EvalRunInfo,
    TokenCount,
)
from flux_agent.verify import Sandbox, SandboxError


class RunDirectoryError(ValueError):
    """The output directory holds a different run, or cannot be written."""


def done_pairs(run_dir: Path, *, retry_errors: bool = False) -> set[tuple[str, str]]:
    """(strategy, item id) pairs already recorded in `run_dir` (a torn last line is ignored)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            pair = (record["strategy"], record["item_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short when a run was killed: that pair runs again
        if retry_errors and record.get("error"):
            done.discard(pair)
        else:
            done.add(pair)
    return done


def prepare_run_dir(run_dir: Path, info: EvalRunInfo) -> EvalRunInfo:
    """Create `run_dir` with `info`, or check that an existing run there is the same run.

    A rerun may add strategies; it may not change the dataset, the backends or
    the sample count, which would mix incomparable results in one file.

    Raises:
        RunDirectoryError: the directory holds another run or is not writable.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_INFO_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if path.exists():
            previous = EvalRunInfo.model_validate_json(path.read_text(encoding="utf-8"))
            for name in ("dataset", "navigator", "solver", "samples"):
                if getattr(previous, name) != getattr(info, name):
                    raise RunDirectoryError(
                        f"{run_dir} holds a run with {name}={getattr(previous, name)!r}, "
                        f"not {getattr(info, name)!r}; choose another --output to start afresh"
                    )
            strategies = previous.strategies + [
                s for s in info.strategies if s not in previous.strategies
            ]
            info = previous.model_copy(
                update={"strategies": strategies, "items": max(previous.items, info.items)}
            )
        path.write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise RunDirectoryError(f"cannot write the run directory {run_dir}: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, RunDirectoryError):
            raise
        raise RunDirectoryError(f"{path} is not a run description: {exc}") from None
    return info


async def run_eval(
    items: Sequence[EvalItem],
    strategies: Mapping[str, Strategy],
    run_dir: Path,
    *,
    sandbox: Sandbox,
    concurrency: int = 1,
    seed: int = 0,
    retry_errors: bool = False,
    on_record: Callable[[EvalRecord], None] | None = None,
) -> list[EvalRecord]:
    """Run every strategy on every item not yet recorded in `run_dir`.

    Args:
        strategies: name -> strategy; the name is what records and reports show.
        concurrency: (strategy, item) pairs in flight at once.
        seed: base seed for sampled strategies (each item gets its own from it).
        retry_errors: run again the pairs whose recorded result is an error.
        on_record: called with each record as it is written (progress display).

    Returns:
        The records written by this call (not those already on disk).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    done = done_pairs(run_dir, retry_errors=retry_errors)
    pending = [
        (index, item, name)
        for index, item in enumerate(items)
        for name in strategies
        if (name, item.id) not in done
    ]
    results_path = run_dir / RESULTS_FILE
    written: list[EvalRecord] = []
    slots = asyncio.Semaphore(concurrency)

    if results_path.exists() and _ends_torn(results_path):
        with results_path.open("a", encoding="utf-8") as results:
            results.write("\n")  # close a line torn by a killed run, so ours start clean
    # One os.write per record on an O_APPEND file: lines land whole even when two
    # processes run different strategies into the same directory.
    results_fd = os.open(results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def run_one(index: int, item: EvalItem, name: str) -> None:
        async with slots:
            record = await evaluate_item(
                strategies[name], name, item, sandbox=sandbox, seed=seed + index
            )
        os.write(results_fd, (record.model_dump_json() + "\n").encode("utf-8"))
        written.append(record)
        if on_record is not None:
            on_record(record)

    tasks = [asyncio.ensure_future(run_one(*pair)) for pair in pending]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        os.close(results_fd)
    return written


def _ends_torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a run was killed while writing it)."""
    with path.open("rb") as file:
        if file.seek(0, 2) == 0:
            return False
        file.seek(-1, 2)
        return file.read(1) != b"\n"


async def evaluate_item(
    strategy: Strategy, name: str, item: EvalItem, *, sandbox: Sandbox, seed: int = 0
) -> EvalRecord:
    """Run one strategy on one item and score its answer; failures become records, not raises.

    A strategy that raises (backend unreachable, a bug) is recorded with the error
    and no answer, so one bad item does not end a long run.
    """
    began = time.perf_counter()
    try:
        outcome = await strategy(item.problem, seed=seed)
    except Exception as exc:
        outcome = Outcome(None, error=f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - began
    correct, error = False, outcome.error
    if outcome.answer is not None:
        try:
            correct = await asyncio.to_thread(sandbox.equivalent, outcome.answer, item.answer)
        except (SandboxError, TimeoutError) as exc:
            error = f"scoring failed: {exc}"
    total = outcome.total()
    return EvalRecord(
        strategy=name,
        item_id=item.id,
        subject=item.subject,
        level=item.level,
        expected=item.answer,
        answer=outcome.answer,
        correct=correct,
        usage={
            role: TokenCount(
                prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, calls=u.calls
            )
            for role, u in outcome.usage.items()
        },
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        llm_calls=total.calls,
        wall_s=round(wall, 3),
        error=error,
        details=outcome.details,
    )
