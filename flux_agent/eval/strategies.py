"""Ways of answering a problem, behind one signature, so the eval runner treats them alike.

A strategy is an async callable `(problem, *, seed) -> Outcome`: a final answer
(or None) plus the tokens and calls it spent per role. The baselines:

- `ChainOfThought`: one step-by-step sample ending in `\\boxed{}`.
- `SelfConsistency(base, n)`: n samples of `base`, majority vote over answers
  grouped by mathematical equivalence (Wang et al.).
- `BestOfN(base, n)`: n samples of `base`, the best by mean token log-probability
  when the backend gives it, otherwise by the model's own grade of each sample.
- `BudgetForcing` (in `budget_forcing.py`): s1-style control of thinking length.
- `TemplateGuided` (in `guided.py`): one chain of thought guided by one template.
- `FluxStrategy`: the template-guided agent.

Wrappers take another strategy, so `SelfConsistency(ChainOfThought(...))` and
`BestOfN(ChainOfThought(..., logprobs=True))` compose.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from flux_agent.agent.runner import FluxAgent
from flux_agent.agent.structured import generate_structured
from flux_agent.backends.base import GenerationRequest, LLMBackend, Usage
from flux_agent.eval import prompts
from flux_agent.eval.budget_forcing import BudgetForcing
from flux_agent.eval.guided import TemplateGuided
from flux_agent.eval.outcome import SOLVER, TEXT_KEPT, Outcome, Strategy
from flux_agent.verify import Sandbox, extract_answer

GRADER = "grader"


def _merge(*usages: dict[str, Usage]) -> dict[str, Usage]:
    merged: dict[str, Usage] = {}
    for usage in usages:
        for role, spent in usage.items():
            merged[role] = merged.get(role, Usage()) + spent
    return merged


@dataclass
class ChainOfThought:
    """One chain-of-thought sample (greedy unless a temperature is given)."""

    backend: LLMBackend
    max_tokens: int = 1024
    temperature: float = 0.0
    logprobs: bool = False
    name: str = "cot"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        request = GenerationRequest(
            messages=prompts.cot_messages(problem),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=seed,
            logprobs=self.logprobs,
        )
        (completion,) = await self.backend.generate([request])
        details: dict[str, Any] = {
            "text": completion.text[-TEXT_KEPT:],
            "finish_reason": completion.finish_reason,
        }
        if completion.mean_logprob is not None:
            details["mean_logprob"] = completion.mean_logprob
        return Outcome(extract_answer(completion.text), {SOLVER: completion.usage}, details)


async def _samples(base: Strategy, problem: str, n: int, seed: int) -> list[Outcome]:
    """n outcomes of `base` with distinct seeds, run concurrently (backends bound the load)."""
    return list(await asyncio.gather(*(base(problem, seed=seed * 1000 + i) for i in range(n))))


async def _group_equivalent(
    answers: list[str | None], sandbox: Sandbox
) -> tuple[list[int | None], list[str]]:
    """Which group each answer falls in (None for no answer), and each group's first answer.

    Answers are compared by mathematical equivalence (Math-Verify in the sandbox),
    so "0.5" and "\\frac{1}{2}" vote together.
    """
    representatives: list[str] = []
    groups: list[int | None] = []
    for answer in answers:
        if answer is None:
            groups.append(None)
            continue
        for index, representative in enumerate(representatives):
            if answer == representative or await asyncio.to_thread(
                sandbox.equivalent, answer, representative
            ):
                groups.append(index)
                break
        else:
            representatives.append(answer)
            groups.append(len(representatives) - 1)
    return groups, representatives


@dataclass
class SharedSamples:
    """A strategy whose outcomes are remembered by (problem, seed) for `consumers` readers.

    Self-consistency and best-of-n are two ways of choosing among the same kind of
    samples; sharing them means the two are compared on identical samples and the
    samples are generated once. Each reader still reports the samples' full token
    cost, which is what it would spend alone; only its wall time is shorter.
    """

    base: Strategy
    consumers: int = 2
    name: str = "shared-samples"
    _pending: dict[tuple[str, int], tuple[asyncio.Future[Outcome], int]] = field(
        default_factory=dict, repr=False
    )

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        key = (problem, seed)
        if key not in self._pending:
            self._pending[key] = (asyncio.ensure_future(self.base(problem, seed=seed)), 0)
        future, reads = self._pending[key]
        if reads + 1 >= self.consumers:
            del self._pending[key]  # the last reader: forget it, so memory stays bounded
        else:
            self._pending[key] = (future, reads + 1)
        return await asyncio.shield(future)


@dataclass
class SelfConsistency:
    """Majority vote over `n` samples of `base`; ties go to the answer seen first."""

    base: Strategy
    n: int
    sandbox: Sandbox
    name: str = "self-consistency"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        samples = await _samples(self.base, problem, self.n, seed)
        usage = _merge(*(sample.usage for sample in samples))
        answers = [sample.answer for sample in samples]
        groups, representatives = await _group_equivalent(answers, self.sandbox)
        votes = Counter(group for group in groups if group is not None)
        details: dict[str, Any] = {"answers": answers}
        if not votes:
            return Outcome(None, usage, details, error="no sample stated an answer")
        # Counter.most_common keeps insertion order among equal counts: first seen wins.
        (winner, count), *rest = votes.most_common()
        details["votes"] = {representatives[g]: c for g, c in votes.most_common()}
        details["tie"] = bool(rest) and rest[0][1] == count
        return Outcome(representatives[winner], usage, details)


@dataclass
class BestOfN:
    """The best of `n` samples of `base` by a score, not by vote.

    The score is the sample's mean token log-probability when every sample has
    one (ask `base` for log-probabilities); otherwise the model grades each
    sample itself (one extra call per sample, counted under the grader role).
    """

    base: Strategy
    n: int
    grader: LLMBackend
    name: str = "best-of-n"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        samples = await _samples(self.base, problem, self.n, seed)
        usage = _merge(*(sample.usage for sample in samples))
        logprobs = [sample.details.get("mean_logprob") for sample in samples]
        if all(isinstance(value, float) for value in logprobs):
            scorer, scores = "mean_logprob", [float(value or 0.0) for value in logprobs]
        else:
            scorer = "self_evaluation"
            scores, grading = await self._grade(problem, samples)
            usage = _merge(usage, {GRADER: grading})
        # Samples without an answer can only win if no sample has one.
        ranked = sorted(
            range(len(samples)),
            key=lambda i: (samples[i].answer is not None, scores[i], -i),
            reverse=True,
        )
        best = samples[ranked[0]]
        details = {
            "scorer": scorer,
            "answers": [sample.answer for sample in samples],
            "scores": scores,
            "chosen": ranked[0],
        }
        error = None if best.answer is not None else "no sample stated an answer"
        return Outcome(best.answer, usage, details, error=error)

    async def _grade(self, problem: str, samples: list[Outcome]) -> tuple[list[float], Usage]:
        """Each sample's grade; an unreadable grade ranks last (-1)."""
        replies = await asyncio.gather(
            *(
                generate_structured(
                    self.grader,
                    prompts.self_evaluation_messages(
                        problem, str(sample.details.get("text", sample.answer or ""))
                    ),
                    Grade,
                    max_tokens=24,
                    retries=0,
                )
                for sample in samples
            )
        )
        scores = [-1.0 if reply.value is None else float(reply.value.score) for reply in replies]
        return scores, sum((reply.usage for reply in replies), Usage())


class Grade(BaseModel):
    """The model's grade of a candidate solution (best-of-n without log-probabilities)."""

    score: int = Field(ge=0, le=10)


@dataclass
class FluxStrategy:
    """The template-guided agent, one checkpointed run per problem."""

    agent: FluxAgent
    name: str = "flux"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        result = await self.agent.solve(problem)
        usage = {
            role: Usage(spent.prompt_tokens, spent.completion_tokens, spent.calls)
            for role, spent in result.usage.items()
        }
        details = {
            "run_id": result.run_id,
            "status": result.status,
            "verified": result.verified,
            "steps": len(result.steps),
            "checks": dict(Counter(step.check for step in result.steps)),
            "revisions": len(result.revisions),
            "templates": [step.template_id for step in result.steps],
        }
        error = None
        if result.answer is None:
            error = "; ".join(result.failures[:3]) or f"the agent ended {result.status}"
        return Outcome(result.answer, usage, details, error=error)


STRATEGY_NAMES = (
    "cot",
    "self-consistency",
    "best-of-n",
    "budget-forcing",
    "flux-guided",
    "flux",
)


@dataclass(frozen=True)
class StrategyOptions:
    """The knobs of the baselines; the agent's own budgets live in `AgentSettings`."""

    samples: int = 4
    temperature: float = 0.7
    max_tokens: int = 1024
    min_thinking: int = 256
    max_thinking: int = 768

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError("samples must be at least 1")
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")


def build_strategies(
    names: list[str],
    *,
    solver: LLMBackend,
    sandbox: Sandbox,
    agent: FluxAgent | None = None,
    options: StrategyOptions | None = None,
) -> dict[str, Strategy]:
    """The named strategies over one solver backend (and the agent for "flux").

    Raises:
        ValueError: an unknown name, "flux" without an agent, or budget forcing on a
            backend that cannot continue a partial reply.
    """
    options = options or StrategyOptions()
    unknown = [name for name in names if name not in STRATEGY_NAMES]
    if unknown:
        raise ValueError(
            f"unknown strategies {', '.join(unknown)}; choose from {', '.join(STRATEGY_NAMES)}"
        )

    def sampler(logprobs: bool = False) -> ChainOfThought:
        return ChainOfThought(
            solver, options.max_tokens, options.temperature, logprobs=logprobs, name="sample"
        )

    # Both selection rules read one set of samples when both are asked for.
    shared = (
        SharedSamples(sampler(logprobs=True))
        if {"self-consistency", "best-of-n"} <= set(names)
        else None
    )
    strategies: dict[str, Strategy] = {}
    for name in names:
        if name == "cot":
            strategies[name] = ChainOfThought(solver, options.max_tokens)
        elif name == "self-consistency":
            strategies[name] = SelfConsistency(shared or sampler(), options.samples, sandbox)
        elif name == "best-of-n":
            strategies[name] = BestOfN(shared or sampler(logprobs=True), options.samples, solver)
        elif name == "budget-forcing":
            if not solver.supports_prefill:
                raise ValueError(
                    f"budget-forcing needs a backend that continues a partial reply, and "
                    f"{solver.name} cannot (the in-process llama.cpp and vLLM backends can)"
                )
            strategies[name] = BudgetForcing(
                solver, min_thinking=options.min_thinking, max_thinking=options.max_thinking
            )
        elif name in ("flux", "flux-guided"):
            if agent is None:
                raise ValueError(f"the {name} strategy needs an agent")
            strategies[name] = (
                FluxStrategy(agent)
                if name == "flux"
                else TemplateGuided(
                    agent.context.navigator,
                    agent.context.solver,
                    agent.context.store,
                    max_tokens=options.max_tokens,
                )
            )
    return strategies
