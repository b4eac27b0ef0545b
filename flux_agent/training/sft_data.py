"""Structure SFT data: teach the navigator the library before it learns to plan well.

Three examples per template, all in the navigator's own chat format:
- `card`: the template's name and cues -> its description and steps;
- `recall`: its description and steps -> its id, name and cues;
- `plan`: its worked example's problem, offered with distractor templates in
  exactly the prompt the agent's planner sends (`prompts.plan_messages`) -> a
  one-step plan, as JSON, that names this template.
Distractors come from the same domain first (the hard case: telling close
techniques apart), chosen by a seeded generator, so a dataset is reproducible.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flux_agent.agent.models import Plan, PlanStep
from flux_agent.agent.prompts import NAVIGATOR_SYSTEM, plan_messages
from flux_agent.backends.base import Message
from flux_agent.templates import ThoughtTemplate
from flux_agent.training.recipe import ExampleKind as Kind


@dataclass(frozen=True)
class SFTExample:
    """One prompt and the reply the navigator should learn to give."""

    kind: Kind
    template_id: str
    prompt: list[Message]
    completion: str

    def record(self) -> dict[str, Any]:
        """TRL's conversational prompt-completion form (the loss covers the completion only)."""
        return {
            "prompt": self.prompt,
            "completion": [{"role": "assistant", "content": self.completion}],
            "kind": self.kind,
            "template_id": self.template_id,
        }


def structure_examples(
    templates: Sequence[ThoughtTemplate],
    *,
    candidates: int = 4,
    max_steps: int = 3,
    seed: int = 0,
) -> list[SFTExample]:
    """The card, recall and plan examples of every template, in a seeded shuffled order."""
    if len({t.id for t in templates}) < 2:
        raise ValueError("structure SFT needs at least two templates (plans offer distractors)")
    rng = random.Random(seed)
    examples = []
    for template in templates:
        examples += [card_example(template), recall_example(template)]
        offered = [template, *distractors(template, templates, candidates - 1, rng)]
        rng.shuffle(offered)
        examples.append(plan_example(template, offered, max_steps))
    rng.shuffle(examples)
    return examples


def card_example(template: ThoughtTemplate) -> SFTExample:
    cues = "\n".join(f"- {cue}" for cue in template.applies_when)
    user = (
        f"Template: {template.name}\nIt applies when:\n{cues}\n\n"
        "Describe the technique and list its steps."
    )
    return SFTExample("card", template.id, _navigator(user), _description_and_steps(template))


def recall_example(template: ThoughtTemplate) -> SFTExample:
    user = (
        f"Which template is this?\n{_description_and_steps(template)}\n\n"
        "Give its id and name, and when it applies."
    )
    cues = "\n".join(f"- {cue}" for cue in template.applies_when)
    reply = f"{template.id}: {template.name}\nIt applies when:\n{cues}"
    return SFTExample("recall", template.id, _navigator(user), reply)


def plan_example(
    template: ThoughtTemplate, offered: Sequence[ThoughtTemplate], max_steps: int
) -> SFTExample:
    """The planner's real prompt for the template's example problem -> a plan that uses it."""
    goal = f"Apply {_lower_first(template.name)} to this problem and find what it asks for."
    plan = Plan(
        analysis=_clip(f"A {template.domain.replace('_', ' ')} problem: {template.description}"),
        steps=[PlanStep(template_id=template.id, goal=_clip(goal, 300))],
    )
    prompt = plan_messages(template.example.problem, offered, max_steps)
    return SFTExample("plan", template.id, prompt, json.dumps(plan.model_dump()))


def distractors(
    template: ThoughtTemplate,
    templates: Sequence[ThoughtTemplate],
    count: int,
    rng: random.Random,
) -> list[ThoughtTemplate]:
    """`count` other templates, from the same domain first, then from the rest."""
    same = [t for t in templates if t.domain == template.domain and t.id != template.id]
    other = [t for t in templates if t.domain != template.domain]
    rng.shuffle(same)
    rng.shuffle(other)
    return (same + other)[:count]


def _navigator(user: str) -> list[Message]:
    return [{"role": "system", "content": NAVIGATOR_SYSTEM}, {"role": "user", "content": user}]


def _description_and_steps(template: ThoughtTemplate) -> str:
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(template.steps, 1))
    return f"{template.description}\nSteps:\n{steps}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _clip(text: str, limit: int = 400) -> str:
    """Within the `Plan` model's length limit, cut at a word."""
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
