"""`flux train compare`: the navigator before and after training, on held-out problems.

Each navigator plans every held-out problem once, greedily, with the agent's planning
prompt; the same solver follows the plan on the problem (accuracy) and on its
neighbours from the training pool, which gives the plan the same reward training used.
Rollouts are stored under `OUTPUT_DIR/rl/compare/<label>/` like a round's, so an
interrupted comparison resumes, and the table is written to `compare.json` and
`compare.md`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flux_agent.backends import LLMBackend, build_backend
from flux_agent.config import BackendSettings
from flux_agent.templates import load_library
from flux_agent.templates.embeddings import load_embedder
from flux_agent.training.recipe import Recipe
from flux_agent.training.rl import (
    SUMMARY_FILE,
    NavigatorFactory,
    navigator_backend,
    open_training_store,
    prepare_data,
    rl_dir,
    start_policy,
)
from flux_agent.training.rollouts import ProblemRollouts, RolloutWorker, run_rollouts, score_round
from flux_agent.verify import default_sandbox


@dataclass(frozen=True)
class NavigatorScore:
    label: str
    path: str
    problems: int
    valid_share: float
    accuracy: float
    """Share of held-out problems answered right when the solver follows the plan."""
    neighbour_accuracy: float
    reward_mean: float


def trained_navigators(recipe: Recipe, every_round: bool) -> dict[str, Path]:
    """`start` and the last trained round's model (or every round's), by label.

    Raises:
        FileNotFoundError: no round has finished training yet.
    """
    found = {"start": start_policy(recipe)}
    rounds = {}
    for number in range(1, recipe.rl.rounds + 1):
        folder = rl_dir(recipe) / f"round-{number}"
        if (folder / SUMMARY_FILE).exists() and (folder / "merged" / "config.json").is_file():
            rounds[f"round-{number}"] = folder / "merged"
    if not rounds:
        raise FileNotFoundError(
            f"no trained round in {rl_dir(recipe)}: run `flux train rl` with this recipe first"
        )
    if not every_round:
        last = list(rounds)[-1]
        rounds = {last: rounds[last]}
    return {**found, **rounds}


def compare_navigators(
    recipe: Recipe,
    navigators: dict[str, Path],
    on_problem: Callable[[str, ProblemRollouts], None] | None = None,
    *,
    solver: LLMBackend | None = None,
    navigator_for: NavigatorFactory | None = None,
) -> list[NavigatorScore]:
    """Score each navigator on the run's held-out problems; write compare.json and .md.

    `solver` and `navigator_for` replace the recipe's backends, as in `run_rl`."""
    return asyncio.run(
        _compare(recipe, navigators, on_problem, solver, navigator_for or navigator_backend)
    )


async def _compare(
    recipe: Recipe,
    navigators: dict[str, Path],
    on_problem: Callable[[str, ProblemRollouts], None] | None,
    solver: LLMBackend | None,
    navigator_for: NavigatorFactory,
) -> list[NavigatorScore]:
    embedder = await asyncio.to_thread(load_embedder)
    data = await asyncio.to_thread(prepare_data, recipe, embedder)
    problems = data.heldout()
    if not problems:
        raise ValueError("the recipe keeps no held-out problems (rl.heldout is 0)")
    neighbours = data.neighbours_of(problems)
    store = await asyncio.to_thread(open_training_store, recipe, embedder)
    known_ids = {template.id for template in load_library(recipe.library)}
    owned = solver is None
    solver = solver or build_backend(BackendSettings.from_spec(recipe.rl.solver))
    scores = []
    try:
        for label, path in navigators.items():
            navigator = navigator_for(recipe, path)
            worker = RolloutWorker(
                navigator, solver, store, default_sandbox(), recipe.rl, recipe.seed, greedy=True
            )
            folder = rl_dir(recipe) / "compare" / label

            def progress(done: ProblemRollouts, label: str = label) -> None:
                if on_problem is not None:
                    on_problem(label, done)

            try:
                await run_rollouts(worker, problems, neighbours, folder, 0, progress)
            finally:
                await navigator.aclose()
            scored = score_round(worker, problems, neighbours, folder, known_ids).samples
            scores.append(_score(label, path, scored))
    finally:
        if owned:
            await solver.aclose()
    _write(rl_dir(recipe), scores)
    return scores


def _score(label: str, path: Path, scored: list[Any]) -> NavigatorScore:
    own = [s.correct[0] if s.correct else False for s in scored]
    others = [c for s in scored for c in s.correct[1:]]
    return NavigatorScore(
        label=label,
        path=str(path),
        problems=len(scored),
        valid_share=round(statistics.fmean(s.reward.structure for s in scored), 4),
        accuracy=round(statistics.fmean(own), 4),
        neighbour_accuracy=round(statistics.fmean(others), 4) if others else 0.0,
        reward_mean=round(statistics.fmean(s.reward.total for s in scored), 4),
    )


def _write(folder: Path, scores: list[NavigatorScore]) -> None:
    (folder / "compare.json").write_text(
        json.dumps([asdict(score) for score in scores], indent=1), encoding="utf-8"
    )
    (folder / "compare.md").write_text(markdown_table(scores), encoding="utf-8")


def markdown_table(scores: list[NavigatorScore]) -> str:
    lines = [
        "| navigator | problems | valid plans | accuracy | neighbour accuracy | mean reward |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.label} | {s.problems} | {s.valid_share:.0%} | {s.accuracy:.1%} | "
            f"{s.neighbour_accuracy:.1%} | {s.reward_mean:.3f} |"
        )
    return "\n".join(lines) + "\n"
