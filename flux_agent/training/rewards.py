"""Rewards for a sampled plan, and preference pairs built from them. Pure functions.

A plan is judged by what happens when the solver follows it on its problem and the
problem's nearest neighbours in the training pool (ReasonFlux's generalisation
signal): the mean verified accuracy over those problems, plus two small terms, one
for a reply that is a valid plan and one for the share of steps that name real
templates. The rollouts that produce the accuracies live elsewhere; everything
here takes plain values, so it is table-tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from flux_agent.agent.models import Plan
from flux_agent.backends.base import Message


@dataclass(frozen=True)
class RewardWeights:
    accuracy: float = 1.0
    structure: float = 0.1
    real_templates: float = 0.1


@dataclass(frozen=True)
class Reward:
    """The total and its parts (each part in [0, 1] before weighting)."""

    total: float
    accuracy: float
    structure: float
    real_templates: float


def parse_plan(text: str, max_steps: int) -> Plan | None:
    """The plan in a navigator's reply, or None if it is not a valid plan within `max_steps`."""
    try:
        plan = Plan.model_validate_json(text.strip())
    except ValidationError:
        return None
    return plan if len(plan.steps) <= max_steps else None


def real_template_share(plan: Plan | None, known_ids: set[str]) -> float:
    """The share of the plan's steps that name a template in the library (0 without a plan)."""
    if plan is None:
        return 0.0
    return sum(step.template_id in known_ids for step in plan.steps) / len(plan.steps)


def accuracy(correct: Sequence[bool]) -> float:
    """Mean verified accuracy over the problem and its neighbours (0 when none was tried)."""
    return sum(correct) / len(correct) if correct else 0.0


def plan_reward(
    text: str,
    correct: Sequence[bool],
    known_ids: set[str],
    max_steps: int,
    weights: RewardWeights = RewardWeights(),
) -> Reward:
    """Reward of one sampled plan whose rollouts were scored `correct` (one per problem)."""
    plan = parse_plan(text, max_steps)
    parts = {
        "accuracy": accuracy(correct) if plan is not None else 0.0,
        "structure": 1.0 if plan is not None else 0.0,
        "real_templates": real_template_share(plan, known_ids),
    }
    total = (
        weights.accuracy * parts["accuracy"]
        + weights.structure * parts["structure"]
        + weights.real_templates * parts["real_templates"]
    )
    return Reward(total=round(total, 6), **parts)


@dataclass(frozen=True)
class PreferencePair:
    """DPO's unit: for one prompt, a better and a worse reply, and how far apart they scored."""

    prompt: list[Message]
    chosen: str
    rejected: str
    margin: float

    def record(self) -> dict[str, object]:
        """TRL's conversational preference form."""
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            "margin": self.margin,
        }


def preference_pairs(
    prompt: list[Message],
    samples: Sequence[tuple[str, float]],
    *,
    min_margin: float,
    max_pairs: int | None = None,
) -> list[PreferencePair]:
    """Pairs from one prompt's scored samples `(text, reward)`: best with worst, then the
    next best with the next worst, while their rewards differ by at least `min_margin`.

    Each sample is used once; identical texts count once (their best reward); a group
    whose rewards are all equal gives no pairs: there is nothing to prefer.
    """
    if min_margin <= 0:
        raise ValueError("min_margin must be positive: equal rewards must never make a pair")
    best: dict[str, float] = {}
    for text, reward in samples:
        best[text] = max(reward, best.get(text, reward))
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    pairs: list[PreferencePair] = []
    high, low = 0, len(ranked) - 1
    while high < low and (max_pairs is None or len(pairs) < max_pairs):
        (chosen, top), (rejected, bottom) = ranked[high], ranked[low]
        if top - bottom < min_margin:
            break  # the gaps only shrink from here inward
        pairs.append(PreferencePair(prompt, chosen, rejected, round(top - bottom, 6)))
        high, low = high + 1, low - 1
    return pairs
