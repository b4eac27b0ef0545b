"""Where solved problems come from: a dataset file, or the agent's own past runs.

A dataset (MATH or GSM8K style JSONL, see `flux_agent.eval.datasets`) gives the
problem, the reference answer and, when present, the worked solution. The run
store gives the agent's solves whose answer was checked correct against an
expected answer, plus any runs the user vouches for by id (`good`): the plan's
steps and their results become the solution.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flux_agent.agent.models import SolveResult
from flux_agent.agent.runner import list_runs, load_run
from flux_agent.eval.datasets import load_items
from flux_agent.growth.extract import Worked

RUNS = "runs"


def from_dataset(
    source: str,
    *,
    limit: int | None = None,
    subjects: Sequence[str] = (),
    levels: Sequence[int] = (),
    seed: int = 0,
) -> list[Worked]:
    """Solved problems from a dataset (raises `DatasetError` with the file and line)."""
    items = load_items(source, limit=limit, subjects=subjects, levels=levels, seed=seed)
    label = Path(source).name if Path(source).exists() else source
    return [
        Worked(label, item.id, item.problem, answer=item.answer, solution=item.solution)
        for item in items
    ]


async def from_runs(
    runs_path: Path, *, good: Sequence[str] = (), limit: int | None = None
) -> list[Worked]:
    """Runs whose answer was checked correct, plus the runs named in `good`, newest first.

    Raises:
        ValueError: a run named in `good` does not exist or has no answer.
    """
    chosen: list[SolveResult] = []
    for run_id in good:
        try:
            result = await load_run(runs_path, run_id)
        except KeyError:
            raise ValueError(f"no run {run_id!r} in {runs_path}") from None
        if not result.answer:
            raise ValueError(f"run {run_id!r} has no answer to learn from ({result.status})")
        chosen.append(result)
    named = set(good)
    for summary in await list_runs(runs_path, limit=100_000):
        if summary.run_id in named or summary.status != "answered":
            continue
        result = await load_run(runs_path, summary.run_id)
        if result.correct:
            chosen.append(result)
    if limit is not None:
        chosen = chosen[:limit]
    return [
        Worked(
            RUNS,
            result.run_id,
            result.problem,
            answer=result.answer,
            solution=solution_text(result),
        )
        for result in chosen
    ]


def solution_text(result: SolveResult) -> str:
    """The run's steps as a worked solution: goal, reasoning and result of each."""
    parts = []
    for step in result.steps:
        lines = [f"Step {step.index + 1} ({step.template_id}): {step.goal}"]
        if step.reasoning.strip():
            lines.append(step.reasoning.strip())
        if step.result.strip():
            lines.append(f"Result: {step.result.strip()}")
        parts.append("\n".join(lines))
    parts.append(f"Answer: {result.answer}")
    return "\n\n".join(parts)
