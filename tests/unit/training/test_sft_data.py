"""The structure SFT dataset: what each example teaches, and that it is reproducible."""

from __future__ import annotations

import collections
import json

import pytest

from flux_agent.agent.models import Plan, plan_schema
from flux_agent.agent.prompts import plan_messages
from flux_agent.training.sft_data import structure_examples


@pytest.fixture(scope="module")
def examples(library):
    return structure_examples(library, candidates=4, max_steps=3, seed=0)


def test_every_template_gets_a_card_a_recall_and_a_plan(library, examples):
    counts = collections.Counter((e.template_id, e.kind) for e in examples)
    assert len(examples) == 3 * len(library)
    assert set(counts.values()) == {1}
    assert {kind for _, kind in counts} == {"card", "recall", "plan"}


def test_plan_examples_use_the_planner_prompt_and_a_valid_plan(library, examples):
    by_id = {t.id: t for t in library}
    for example in (e for e in examples if e.kind == "plan"):
        template = by_id[example.template_id]
        user = example.prompt[1]["content"]
        offered = [line[2:].split(" (")[0] for line in user.splitlines() if line.startswith("- ")]
        assert template.id in offered and len(set(offered)) == 4
        assert template.example.problem in user
        # The exact prompt the agent sends, for these candidates.
        assert example.prompt == plan_messages(
            template.example.problem, [by_id[i] for i in offered], 3
        )
        plan = Plan.model_validate_json(example.completion)
        assert [s.template_id for s in plan.steps] == [template.id]
        schema = plan_schema(offered, 3)  # the reply also fits the constrained schema
        assert (
            plan.steps[0].template_id
            in schema["$defs"]["PlanStep"]["properties"]["template_id"]["enum"]
        )


def test_distractors_come_from_the_same_domain_first(library, examples):
    by_id = {t.id: t for t in library}
    plan = next(e for e in examples if e.kind == "plan")
    domain = by_id[plan.template_id].domain
    user = plan.prompt[1]["content"]
    offered = [line[2:].split(" (")[0] for line in user.splitlines() if line.startswith("- ")]
    assert all(by_id[i].domain == domain for i in offered)


def test_card_and_recall_carry_the_template_text(library, examples):
    by_id = {t.id: t for t in library}
    for example in examples:
        template = by_id[example.template_id]
        if example.kind == "card":
            assert template.name in example.prompt[1]["content"]
            assert all(step in example.completion for step in template.steps)
        elif example.kind == "recall":
            assert example.completion.startswith(f"{template.id}: {template.name}")
            assert template.description in example.prompt[1]["content"]


def test_seeded_and_json_ready(library, examples):
    again = structure_examples(library, candidates=4, max_steps=3, seed=0)
    other = structure_examples(library, candidates=4, max_steps=3, seed=1)
    assert again == examples and other != examples
    record = examples[0].record()
    assert json.loads(json.dumps(record))["completion"][0]["role"] == "assistant"
    with pytest.raises(ValueError, match="at least two templates"):
        structure_examples(library[:1])
