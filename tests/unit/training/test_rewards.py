"""Rewards and preference pairs, as tables."""

from __future__ import annotations

import json

import pytest

from flux_agent.training.rewards import (
    RewardWeights,
    parse_plan,
    plan_reward,
    preference_pairs,
)

KNOWN = {"algebra.quadratics.vieta_sum_product", "algebra.quadratics.completing_the_square"}


def plan(*ids: str) -> str:
    steps = [{"template_id": i, "goal": "Find it."} for i in ids]
    return json.dumps({"analysis": "a quadratic", "steps": steps})


VIETA = "algebra.quadratics.vieta_sum_product"
SQUARE = "algebra.quadratics.completing_the_square"


@pytest.mark.parametrize(
    ("text", "correct", "total", "parts"),
    [
        # (accuracy, structure, real_templates)
        (plan(VIETA), [True, True, False, True], 0.95, (0.75, 1.0, 1.0)),
        (plan(VIETA, SQUARE), [True], 1.2, (1.0, 1.0, 1.0)),
        (plan(VIETA, "algebra.made.up"), [False, False], 0.15, (0.0, 1.0, 0.5)),
        (plan("algebra.made.up"), [True], 1.1, (1.0, 1.0, 0.0)),
        (plan(VIETA), [], 0.2, (0.0, 1.0, 1.0)),  # nothing rolled out: no accuracy
        (plan(VIETA, VIETA, VIETA, VIETA), [True], 0.0, (0.0, 0.0, 0.0)),  # too many steps
        ('{"analysis": "x", "steps": [', [True], 0.0, (0.0, 0.0, 0.0)),  # not JSON
        ('{"analysis": "x", "steps": []}', [True], 0.0, (0.0, 0.0, 0.0)),  # no steps
        ("The answer is 5.", [True, True], 0.0, (0.0, 0.0, 0.0)),  # prose wins nothing
    ],
)
def test_plan_reward(text, correct, total, parts):
    reward = plan_reward(text, correct, KNOWN, max_steps=3)
    assert reward.total == pytest.approx(total)
    assert (reward.accuracy, reward.structure, reward.real_templates) == pytest.approx(parts)


def test_weights_scale_each_part():
    weights = RewardWeights(accuracy=2.0, structure=0.0, real_templates=1.0)
    reward = plan_reward(plan(VIETA, "x.y.z"), [True, False], KNOWN, 3, weights)
    assert reward.total == pytest.approx(2.0 * 0.5 + 0.0 + 1.0 * 0.5)


def test_parse_plan_tolerates_whitespace_only():
    assert parse_plan("  " + plan(VIETA) + "\n", 3) is not None
    assert parse_plan("```json\n" + plan(VIETA) + "\n```", 3) is None


PROMPT = [{"role": "user", "content": "plan this"}]


@pytest.mark.parametrize(
    ("samples", "min_margin", "expected"),
    [
        # best with worst, then inward while the gap is at least the margin
        ([("a", 1.0), ("b", 0.2), ("c", 0.6), ("d", 0.0)], 0.3, [("a", "d", 1.0), ("c", "b", 0.4)]),
        ([("a", 1.0), ("b", 0.2), ("c", 0.6), ("d", 0.0)], 0.5, [("a", "d", 1.0)]),
        ([("a", 0.5), ("b", 0.5), ("c", 0.5)], 0.01, []),  # all equal: nothing to prefer
        ([("a", 0.7), ("b", 0.65)], 0.1, []),  # below the margin
        ([("a", 1.0)], 0.1, []),  # one sample
        ([], 0.1, []),
        # the same text sampled twice counts once, at its best reward
        ([("a", 0.0), ("a", 1.0), ("b", 0.0)], 0.5, [("a", "b", 1.0)]),
        ([("a", 1.0), ("a", 1.0)], 0.5, []),
        # ties at the top: the first seen is chosen
        ([("a", 1.0), ("b", 1.0), ("c", 0.0)], 0.5, [("a", "c", 1.0)]),
    ],
)
def test_preference_pairs(samples, min_margin, expected):
    pairs = preference_pairs(PROMPT, samples, min_margin=min_margin)
    assert [(p.chosen, p.rejected, p.margin) for p in pairs] == [
        (c, r, pytest.approx(m)) for c, r, m in expected
    ]
    assert all(p.prompt == PROMPT for p in pairs)


def test_max_pairs_and_a_non_positive_margin():
    samples = [("a", 1.0), ("b", 0.9), ("c", 0.1), ("d", 0.0)]
    assert len(preference_pairs(PROMPT, samples, min_margin=0.1, max_pairs=1)) == 1
    with pytest.raises(ValueError, match="positive"):
        preference_pairs(PROMPT, samples, min_margin=0)
    record = preference_pairs(PROMPT, samples, min_margin=0.1)[0].record()
    assert record["chosen"] == [{"role": "assistant", "content": "a"}]
