"""`flux train rl`: rounds of rollouts, rewards, preference pairs and a DPO update, resumable.

Each round takes the current navigator (round 1: the SFT model or the base model), samples
K plans for each of the round's training problems, follows every plan with the solver on
the problem and its M nearest neighbours, scores the plans and trains on the preference
pairs; the trained model is the next round's navigator. Everything lands in
`OUTPUT_DIR/rl/`:

- `recipe.yaml`: the recipe as run; `split.json`: held-out, per-round and neighbour ids;
- `start/`: the base model in Hugging Face form, when a run starts from it;
- `round-N/`: `samples.jsonl`, `outcomes.jsonl` (the rollouts, appended as produced),
  `scored.jsonl`, `pairs.jsonl`, `summary.json`, `adapter/`, `merged/`;
- `metrics.jsonl`: one line per round (reward mean and spread, valid plans, accuracy,
  pairs, margin) and one per DPO step (loss, chosen-vs-rejected reward margin).

Run it again after an interruption and finished rounds are skipped, finished rollouts
reused: only what is missing is computed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from flux_agent.backends import LLMBackend, build_backend
from flux_agent.config import BackendSettings, Settings, StoreSettings
from flux_agent.eval.datasets import load_items
from flux_agent.eval.records import EvalItem
from flux_agent.storage import JsonlLog
from flux_agent.templates import TemplateStore, load_library
from flux_agent.templates.embeddings import TextEmbedder, load_embedder
from flux_agent.training.recipe import Recipe
from flux_agent.training.rewards import Reward, plan_reward
from flux_agent.training.rollouts import (
    ProblemRollouts,
    RolloutWorker,
    RoundScores,
    ScoredSample,
    SolveCache,
    nearest_neighbours,
    reward_weights,
    run_rollouts,
    score_round,
    split_problems,
)
from flux_agent.verify import default_sandbox

SUMMARY_FILE = "summary.json"
GRPO_SAMPLES_FILE = "grpo_samples.jsonl"


@dataclass(frozen=True)
class RoundSummary:
    round: int
    policy: str
    problems: int
    samples: int
    valid_share: float
    reward_mean: float
    reward_std: float
    accuracy_mean: float
    pairs: int
    margin_mean: float
    train_steps: int
    train_loss: float | None
    seconds: float


@dataclass(frozen=True)
class TrainingData:
    """The problems of a run and everything derived from them once (stored in `split.json`)."""

    split: dict[str, list[str]]
    items: dict[str, EvalItem]
    neighbours: dict[str, list[str]]

    def round_problems(self, number: int) -> list[EvalItem]:
        return [self.items[i] for i in self.split[f"round-{number}"]]

    def heldout(self) -> list[EvalItem]:
        return [self.items[i] for i in self.split["heldout"]]

    def neighbours_of(self, items: list[EvalItem]) -> dict[str, list[EvalItem]]:
        return {item.id: [self.items[i] for i in self.neighbours[item.id]] for item in items}


Events = Callable[[str, dict[str, Any]], None]
"""Progress: `(kind, fields)` with kinds round_started, problem, round_scored, round_done."""


def rl_dir(recipe: Recipe) -> Path:
    return recipe.output_dir / "rl"


def prepare_data(recipe: Recipe, embedder: TextEmbedder) -> TrainingData:
    """Load the problems, split them and find neighbours; or read back the stored split, so
    a resumed run trains on exactly the same problems."""
    spec = recipe.rl
    items = {
        item.id: item
        for item in load_items(
            spec.dataset,
            subjects=spec.subjects,
            levels=spec.levels,
            seed=recipe.seed,
            split=spec.split,
        )
    }
    path = rl_dir(recipe) / "split.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        wanted = {
            "heldout": spec.heldout,
            **{f"round-{n}": spec.problems for n in range(1, spec.rounds + 1)},
        }
        if {name: len(ids) for name, ids in stored["split"].items()} != wanted:
            raise ValueError(
                f"{path} was made for other rl.heldout/rounds/problems counts than this "
                "recipe's; use a new output_dir (or the recipe it was made with)"
            )
        missing = [i for ids in stored["split"].values() for i in ids if i not in items]
        if missing:
            raise ValueError(
                f"{path} names problems the dataset no longer has ({missing[:3]}); "
                "use a new output_dir or the dataset it was made from"
            )
        return TrainingData(stored["split"], items, stored["neighbours"])
    split = split_problems(list(items.values()), spec, recipe.seed)
    queries = [*split.heldout, *(item for chunk in split.rounds for item in chunk)]
    neighbours = nearest_neighbours(queries, split.pool, embedder, spec.neighbours)
    ids = {
        "heldout": [item.id for item in split.heldout],
        **{
            f"round-{n}": [item.id for item in chunk]
            for n, chunk in enumerate(split.rounds, start=1)
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"split": ids, "neighbours": neighbours}, indent=1), "utf-8")
    return TrainingData(ids, items, neighbours)


def start_policy(recipe: Recipe) -> Path:
    """Round 1's navigator as a Hugging Face folder.

    Raises:
        FileNotFoundError: `rl.start` is `sft` and there is no SFT model yet.
    """
    if recipe.rl.start == "sft":
        merged = recipe.output_dir / "sft" / "merged"
        if not (merged / "config.json").is_file():
            raise FileNotFoundError(
                f"rl.start is 'sft' but {merged} holds no model: run `flux train sft` with "
                "this recipe first, or set rl.start=base"
            )
        return merged
    folder = rl_dir(recipe) / "start"
    if not (folder / "config.json").is_file():
        from flux_agent.training.models import load_base

        model, tokenizer = load_base(recipe.model, seed=recipe.seed, bf16=recipe.bf16)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def open_training_store(recipe: Recipe, embedder: TextEmbedder) -> TemplateStore:
    """The library indexed in its own Chroma folder under the run (incremental on reruns)."""
    from flux_agent.factory import build_index
    from flux_agent.templates.chroma_store import open_store

    settings = Settings(
        data_dir=recipe.output_dir / "index",
        library_path=recipe.library,
        store=StoreSettings(kind="persistent"),
    )
    store = open_store(settings, embedder)
    build_index(settings, store)
    return store


def navigator_backend(recipe: Recipe, policy: Path) -> LLMBackend:
    if recipe.rl.navigator_backend == "vllm":
        return build_backend(BackendSettings(kind="vllm", model=str(policy)))
    return build_backend(BackendSettings(kind="transformers", model=str(policy)))


NavigatorFactory = Callable[[Recipe, Path], LLMBackend]


def run_rl(
    recipe: Recipe,
    on_event: Events | None = None,
    *,
    solver: LLMBackend | None = None,
    navigator_for: NavigatorFactory | None = None,
) -> list[RoundSummary]:
    """Run (or resume) every round of the recipe; the summaries of all rounds, in order.

    `solver` replaces the recipe's solver spec and `navigator_for(recipe, policy_folder)`
    builds the navigator sampled in rollouts (both for tests and embedding programs).

    Raises:
        FileNotFoundError, ValueError, BackendError, DatasetError: with a message for the user.
    """
    emit = on_event or (lambda kind, fields: None)
    return asyncio.run(_run_rl(recipe, emit, solver, navigator_for or navigator_backend))


async def _run_rl(
    recipe: Recipe, emit: Events, solver: LLMBackend | None, navigator_for: NavigatorFactory
) -> list[RoundSummary]:
    # One event loop for the whole run: HTTP backends keep connections bound to it.
    out = rl_dir(recipe)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(
        yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    # What the user may have got wrong fails first, before seconds of loading and indexing.
    solver_settings = BackendSettings.from_spec(recipe.rl.solver)
    policy = await asyncio.to_thread(start_policy, recipe)
    embedder = await asyncio.to_thread(load_embedder)
    data = await asyncio.to_thread(prepare_data, recipe, embedder)
    store = await asyncio.to_thread(open_training_store, recipe, embedder)
    known_ids = {template.id for template in load_library(recipe.library)}
    owned = solver is None
    solver = solver or build_backend(solver_settings)
    summaries = []
    try:
        for number in range(1, recipe.rl.rounds + 1):
            folder = out / f"round-{number}"
            done = folder / SUMMARY_FILE
            if done.exists():
                summary = RoundSummary(**json.loads(done.read_text(encoding="utf-8")))
                emit("round_skipped", asdict(summary))
            else:
                summary = await _Round(
                    recipe, number, policy, data, store, solver, known_ids, emit, navigator_for
                ).run()
            summaries.append(summary)
            if (folder / "merged" / "config.json").is_file():
                policy = folder / "merged"
    finally:
        if owned:
            await solver.aclose()
    return summaries


@dataclass
class _Round:
    recipe: Recipe
    number: int
    policy: Path
    data: TrainingData
    store: TemplateStore
    solver: LLMBackend
    known_ids: set[str]
    emit: Events
    navigator_for: NavigatorFactory

    async def run(self) -> RoundSummary:
        recipe, number, emit = self.recipe, self.number, self.emit
        started = time.perf_counter()
        problems = self.data.round_problems(number)
        emit(
            "round_started",
            {"round": number, "policy": str(self.policy), "problems": len(problems)},
        )
        if recipe.rl.algorithm == "grpo":
            fields, steps, loss = await self._grpo(problems)
        else:
            fields, steps, loss = await self._dpo(problems)
        summary = RoundSummary(
            **fields,
            train_steps=steps,
            train_loss=loss,
            seconds=round(time.perf_counter() - started, 1),
        )
        JsonlLog(self.metrics).append({"phase": "round", **asdict(summary)})
        (self.folder / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=1), "utf-8")
        emit("round_done", asdict(summary))
        return summary

    @property
    def folder(self) -> Path:
        return rl_dir(self.recipe) / f"round-{self.number}"

    @property
    def metrics(self) -> Path:
        return rl_dir(self.recipe) / "metrics.jsonl"

    def _worker(self, navigator: LLMBackend | None) -> RolloutWorker:
        return RolloutWorker(
            navigator,
            self.solver,
            self.store,
            default_sandbox(),
            self.recipe.rl,
            seed=self.recipe.seed,
        )

    def _train_options(self) -> dict[str, Any]:
        return {
            "metrics_path": self.metrics,
            "seed": self.recipe.seed + self.number,
            "report_to": self.recipe.report_to,
            "round_number": self.number,
            "bf16": self.recipe.bf16,
        }

    async def _dpo(self, problems: list[EvalItem]) -> tuple[dict[str, Any], int, float | None]:
        """Sample and follow plans (resumable), score them, pair them, train on the pairs."""
        recipe, folder = self.recipe, self.folder
        neighbours = self.data.neighbours_of(problems)
        navigator = self.navigator_for(recipe, self.policy)
        worker = self._worker(navigator)

        def on_problem(progress: ProblemRollouts) -> None:
            self.emit("problem", {"round": self.number, **asdict(progress)})

        try:
            await run_rollouts(worker, problems, neighbours, folder, self.number, on_problem)
        finally:
            await navigator.aclose()
        scores = score_round(worker, problems, neighbours, folder, self.known_ids)
        _write_scores(folder, scores)
        fields = {"round": self.number, "policy": str(self.policy), **_round_stats(scores)}
        self.emit("round_scored", fields)
        if not scores.pairs:
            return fields, 0, None
        from flux_agent.training.dpo import launch_dpo, train_dpo

        if recipe.rl.launcher:
            report = await launch_dpo(
                recipe.rl.launcher,
                self.policy,
                folder / "pairs.jsonl",
                folder,
                recipe.rl.dpo,
                **self._train_options(),
            )
        else:
            records = [pair.record() for pair in scores.pairs]
            report = await asyncio.to_thread(
                train_dpo, self.policy, records, folder, recipe.rl.dpo, **self._train_options()
            )
        return fields, report.steps, round(report.loss, 6)

    async def _grpo(self, problems: list[EvalItem]) -> tuple[dict[str, Any], int, float | None]:
        """GRPO samples the plans itself; each is rewarded online, through the same solve
        cache as DPO rounds (so a restarted round re-solves nothing), and logged."""
        from flux_agent.training.grpo import train_grpo

        spec, folder, loop = self.recipe.rl, self.folder, asyncio.get_running_loop()
        worker = self._worker(None)
        cache = SolveCache(worker, folder)
        items = {item.id: item for item in problems}
        neighbours = self.data.neighbours_of(problems)
        weights = reward_weights(spec)
        log = JsonlLog(folder / GRPO_SAMPLES_FILE)

        async def score(problem_id: str, text: str) -> float:
            correct = await cache.plan_outcomes(text, items[problem_id], neighbours[problem_id])
            reward = plan_reward(text, correct, self.known_ids, spec.max_steps, weights)
            log.append(
                {
                    "problem_id": problem_id,
                    "text": text,
                    "correct": correct,
                    "reward": asdict(reward),
                }
            )
            return reward.total

        def rewards(problem_ids: list[str], texts: list[str]) -> list[float]:
            # Called from the trainer's thread; the solves run on this round's event loop.
            async def group() -> list[float]:
                return list(await asyncio.gather(*map(score, problem_ids, texts)))

            return asyncio.run_coroutine_threadsafe(group(), loop).result()

        log.path.unlink(missing_ok=True)  # this attempt's samples only
        prompts = [(item.id, worker.plan_prompt(item)) for item in problems]
        report = await asyncio.to_thread(
            train_grpo,
            self.policy,
            prompts,
            rewards,
            folder,
            spec.grpo,
            samples=spec.samples,
            plan_tokens=spec.plan_tokens,
            temperature=spec.temperature,
            top_p=spec.top_p,
            **self._train_options(),
        )
        samples = [
            ScoredSample(r["problem_id"], r["text"], r["correct"], Reward(**r["reward"]))
            for r in log.read()
        ]
        fields = {
            "round": self.number,
            "policy": str(self.policy),
            **_round_stats(RoundScores(samples, [])),
        }
        return fields, report.steps, round(report.loss, 6)


def _round_stats(scores: RoundScores) -> dict[str, Any]:
    totals = [sample.reward.total for sample in scores.samples]
    valid = [sample for sample in scores.samples if sample.reward.structure > 0]
    return {
        "problems": len({sample.problem_id for sample in scores.samples}),
        "samples": len(scores.samples),
        "valid_share": round(len(valid) / len(totals), 4) if totals else 0.0,
        "reward_mean": round(statistics.fmean(totals), 4) if totals else 0.0,
        "reward_std": round(statistics.pstdev(totals), 4) if totals else 0.0,
        "accuracy_mean": round(statistics.fmean(s.reward.accuracy for s in valid), 4)
        if valid
        else 0.0,
        "pairs": len(scores.pairs),
        "margin_mean": round(statistics.fmean(p.margin for p in scores.pairs), 4)
        if scores.pairs
        else 0.0,
    }


def _write_scores(folder: Path, scores: RoundScores) -> None:
    with (folder / "scored.jsonl").open("w", encoding="utf-8") as out:
        for sample in scores.samples:
            record = {
                "problem_id": sample.problem_id,
                "text": sample.text,
                "correct": sample.correct,
                "reward": asdict(sample.reward),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (folder / "pairs.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(p.record(), ensure_ascii=False) + "\n" for p in scores.pairs)


__all__ = ["RoundSummary", "run_rl"]
