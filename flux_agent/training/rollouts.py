"""Rollouts: sample plans from the navigator, follow each with the solver, score the answers.

For one training problem, the navigator (the policy being trained) gets the agent's own
planning prompt and samples K plans. Each valid plan is followed by the solver on the
problem and on its M nearest neighbours from the training pool (one guided chain of
thought per problem, `training.prompts.follow_plan_messages`), and every answer is checked
against the reference with Math-Verify in the sandbox. Both models are `LLMBackend`s, so
rollouts run on llama.cpp or transformers here and on vLLM on GPUs.

Everything is written to the round's folder as it is produced, one JSON line at a time:

- `samples.jsonl`: per problem, the prompt and the K sampled replies;
- `outcomes.jsonl`: per (solver prompt, problem), the answer and whether it was right.

An interrupted round resumes from these files: sampled problems are not re-sampled and
solves already made are not redone (a solve is keyed by its exact prompt, and the solver
decodes greedily, so the same prompt would give the same answer). Rewards and pairs are
derived from them (`score_round`), so they are always consistent with what was sampled.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flux_agent.agent.prompts import plan_messages
from flux_agent.backends.base import GenerationRequest, LLMBackend, Message
from flux_agent.eval.records import EvalItem
from flux_agent.storage import JsonlLog
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import TemplateStore
from flux_agent.training import prompts
from flux_agent.training.recipe import RLSpec
from flux_agent.training.rewards import (
    PreferencePair,
    Reward,
    RewardWeights,
    parse_plan,
    plan_reward,
    preference_pairs,
)
from flux_agent.verify import extract_answer
from flux_agent.verify.sandbox import Sandbox, SandboxError, SandboxTimeout

SAMPLES_FILE = "samples.jsonl"
OUTCOMES_FILE = "outcomes.jsonl"


@dataclass(frozen=True)
class ProblemSplit:
    """Disjoint held-out problems; training problems per round; the neighbour pool.

    The pool holds every training problem and more; held-out problems are never in it."""

    heldout: list[EvalItem]
    rounds: list[list[EvalItem]]
    pool: list[EvalItem]


def split_problems(items: Sequence[EvalItem], spec: RLSpec, seed: int) -> ProblemSplit:
    """Shuffle once with `seed`, then deal out held-out, per-round training and pool problems.

    Raises:
        ValueError: there are too few problems for the recipe's counts.
    """
    needed = spec.heldout + spec.problems * spec.rounds
    if len(items) < needed + 1:
        raise ValueError(
            f"the dataset has {len(items)} problems after filtering; the recipe needs at least "
            f"{needed + 1} ({spec.heldout} held out + {spec.rounds} rounds x {spec.problems} "
            "+ 1 for the pool)"
        )
    order = list(items)
    random.Random(seed).shuffle(order)
    heldout, rest = order[: spec.heldout], order[spec.heldout :]
    per_round = [
        rest[index * spec.problems : (index + 1) * spec.problems] for index in range(spec.rounds)
    ]
    pool = rest[: max(spec.pool, spec.problems * spec.rounds)]
    return ProblemSplit(heldout=heldout, rounds=per_round, pool=pool)


def nearest_neighbours(
    queries: Sequence[EvalItem], pool: Sequence[EvalItem], embedder: TextEmbedder, m: int
) -> dict[str, list[str]]:
    """For each query, the ids of its `m` most similar pool problems (cosine), itself excluded."""
    if m == 0 or not queries:
        return {item.id: [] for item in queries}
    query_vectors = np.asarray(embedder.embed([item.problem for item in queries]), dtype=float)
    pool_vectors = np.asarray(embedder.embed([item.problem for item in pool]), dtype=float)
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True) + 1e-12
    pool_vectors /= np.linalg.norm(pool_vectors, axis=1, keepdims=True) + 1e-12
    similarity = query_vectors @ pool_vectors.T
    found: dict[str, list[str]] = {}
    for row, item in enumerate(queries):
        ranked = np.argsort(-similarity[row], kind="stable")
        found[item.id] = [pool[i].id for i in ranked if pool[i].id != item.id][:m]
    return found


@dataclass(frozen=True)
class ProblemRollouts:
    """One problem's progress line: how its plans did."""

    problem_id: str
    valid_plans: int
    solves: int
    new_solves: int
    correct: int


@dataclass
class RolloutWorker:
    """Samples plans from `navigator` and follows them with `solver`; keeps nothing in memory
    that is not also on disk."""

    navigator: LLMBackend | None
    """None when the trainer samples plans itself (GRPO)."""
    solver: LLMBackend
    store: TemplateStore
    sandbox: Sandbox
    spec: RLSpec
    seed: int = 0
    greedy: bool = False
    """One greedy plan per problem instead of K samples (for comparing navigators)."""

    def plan_prompt(self, item: EvalItem) -> list[Message]:
        """The agent's own planning prompt, over the templates retrieved for the problem."""
        hits = self.store.search(item.problem, self.spec.candidates)
        return plan_messages(item.problem, [hit.template for hit in hits], self.spec.max_steps)

    async def sample_plans(self, prompt: list[Message], key: str, round_number: int) -> list[str]:
        """K replies to `prompt`, sampled without a schema: the policy's own distribution,
        which is what DPO trains (a constrained sample is not what the model would write)."""
        if self.navigator is None:
            raise RuntimeError("this rollout worker has no navigator to sample plans from")
        if self.greedy:
            request = GenerationRequest(messages=tuple(prompt), max_tokens=self.spec.plan_tokens)
            return [completion.text for completion in await self.navigator.generate([request])]
        base = zlib.crc32(f"{self.seed}:{round_number}:{key}".encode())
        requests = [
            GenerationRequest(
                messages=tuple(prompt),
                max_tokens=self.spec.plan_tokens,
                temperature=self.spec.temperature,
                top_p=self.spec.top_p,
                seed=(base + index) % 2**31,
            )
            for index in range(self.spec.samples)
        ]
        return [completion.text for completion in await self.navigator.generate(requests)]

    def follow_messages(self, text: str, item: EvalItem, *, source: bool) -> list[Message] | None:
        """The solver prompt for following plan `text` on `item` (None for an invalid plan).

        On the plan's own problem (`source`) the steps keep their goals; on a neighbour
        only the techniques carry over."""
        plan = parse_plan(text, self.spec.max_steps)
        if plan is None:
            return None
        steps: list[tuple[ThoughtTemplate | None, str | None]] = [
            (self.store.get(step.template_id), step.goal if source else None) for step in plan.steps
        ]
        return prompts.follow_plan_messages(item.problem, steps)

    def solve_key(self, messages: list[Message], item: EvalItem) -> str:
        material = json.dumps(
            [messages, item.id, self.spec.solver, self.spec.solver_tokens, prompts.PROMPT_VERSION]
        )
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    async def solve(self, messages: list[Message], item: EvalItem) -> dict[str, Any]:
        """One greedy guided solve, checked against the reference answer."""
        request = GenerationRequest(messages=tuple(messages), max_tokens=self.spec.solver_tokens)
        (completion,) = await self.solver.generate([request])
        answer = extract_answer(completion.text)
        correct = False
        if answer is not None:
            try:
                correct = await asyncio.to_thread(self.sandbox.equivalent, answer, item.answer)
            except (SandboxError, SandboxTimeout):
                correct = False
        return {
            "problem_id": item.id,
            "answer": answer,
            "correct": correct,
            "completion_tokens": completion.usage.completion_tokens,
            "finish_reason": completion.finish_reason,
        }


def reward_weights(spec: RLSpec) -> RewardWeights:
    return RewardWeights(spec.rewards.accuracy, spec.rewards.structure, spec.rewards.real_templates)


class SolveCache:
    """Solves already made, by key, backed by `outcomes.jsonl`: each prompt is solved once,
    however many plans, tasks or restarts ask for it."""

    def __init__(self, worker: RolloutWorker, folder: Path) -> None:
        self.worker = worker
        self.log = JsonlLog(folder / OUTCOMES_FILE)
        self.solved = {record["key"]: record for record in self.log.read()}
        self.limit = asyncio.Semaphore(worker.spec.concurrency)

    async def correct(self, messages: list[Message], item: EvalItem) -> bool:
        key = self.worker.solve_key(messages, item)
        if key not in self.solved:
            async with self.limit:
                if key not in self.solved:  # another task may have solved it meanwhile
                    outcome = {"key": key, **await self.worker.solve(messages, item)}
                    self.solved[key] = outcome
                    self.log.append(outcome)
        return bool(self.solved[key]["correct"])

    async def plan_outcomes(
        self, text: str, item: EvalItem, neighbours: Sequence[EvalItem]
    ) -> list[bool]:
        """Whether the solver, following plan `text`, gets `item` and each neighbour right
        ([] for an invalid plan, which is never solved)."""
        jobs = []
        for position, target in enumerate([item, *neighbours]):
            messages = self.worker.follow_messages(text, target, source=position == 0)
            if messages is None:
                return []
            jobs.append(self.correct(messages, target))
        return list(await asyncio.gather(*jobs))


async def run_rollouts(
    worker: RolloutWorker,
    problems: Sequence[EvalItem],
    neighbours: dict[str, list[EvalItem]],
    folder: Path,
    round_number: int,
    on_problem: Callable[[ProblemRollouts], None] | None = None,
) -> None:
    """Sample and follow plans for every problem, resuming from what `folder` already holds."""
    samples_log = JsonlLog(folder / SAMPLES_FILE)
    sampled = {record["problem_id"]: record for record in samples_log.read()}
    cache = SolveCache(worker, folder)
    for item in problems:
        record = sampled.get(item.id)
        if record is None:
            prompt = worker.plan_prompt(item)
            texts = await worker.sample_plans(prompt, item.id, round_number)
            record = {"problem_id": item.id, "prompt": prompt, "texts": texts}
            samples_log.append(record)
            sampled[item.id] = record
        before = len(cache.solved)
        distinct = list(dict.fromkeys(record["texts"]))  # identical samples are solved once
        outcomes = await asyncio.gather(
            *(cache.plan_outcomes(text, item, neighbours.get(item.id, [])) for text in distinct)
        )
        if on_problem is not None:
            on_problem(
                ProblemRollouts(
                    item.id,
                    valid_plans=sum(
                        parse_plan(t, worker.spec.max_steps) is not None for t in distinct
                    ),
                    solves=sum(len(o) for o in outcomes),
                    new_solves=len(cache.solved) - before,
                    correct=sum(sum(o) for o in outcomes),
                )
            )


@dataclass(frozen=True)
class ScoredSample:
    problem_id: str
    text: str
    correct: list[bool]
    reward: Reward


@dataclass(frozen=True)
class RoundScores:
    samples: list[ScoredSample]
    pairs: list[PreferencePair]


def score_round(
    worker: RolloutWorker,
    problems: Sequence[EvalItem],
    neighbours: dict[str, list[EvalItem]],
    folder: Path,
    known_ids: set[str],
) -> RoundScores:
    """Rewards of every sampled plan and the round's preference pairs, from the files alone.

    Raises:
        LookupError: a needed rollout is missing (the round did not finish).
    """
    sampled = {record["problem_id"]: record for record in JsonlLog(folder / SAMPLES_FILE).read()}
    solved = {record["key"]: record for record in JsonlLog(folder / OUTCOMES_FILE).read()}
    spec = worker.spec
    weights = reward_weights(spec)
    scored: list[ScoredSample] = []
    pairs: list[PreferencePair] = []
    for item in problems:
        if item.id not in sampled:
            raise LookupError(f"problem {item.id} has no sampled plans in {folder}")
        record = sampled[item.id]
        group = []
        for text in record["texts"]:
            correct = []
            for position, target in enumerate([item, *neighbours.get(item.id, [])]):
                messages = worker.follow_messages(text, target, source=position == 0)
                if messages is None:
                    break  # an invalid plan is never solved; its reward ignores accuracy
                key = worker.solve_key(messages, target)
                if key not in solved:
                    raise LookupError(f"a rollout of problem {target.id} is missing in {folder}")
                correct.append(bool(solved[key]["correct"]))
            reward = plan_reward(text, correct, known_ids, spec.max_steps, weights)
            scored.append(ScoredSample(item.id, text, correct, reward))
            group.append((text, reward.total))
        pairs += preference_pairs(
            record["prompt"], group, min_margin=spec.min_margin, max_pairs=spec.pairs_per_problem
        )
    return RoundScores(scored, pairs)
