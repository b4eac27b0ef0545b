"""flux-guided on scripted backends and the keyword store: choice pinned, template in the prompt."""

from __future__ import annotations

import json

from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.eval.guided import NAVIGATOR, TemplateGuided
from flux_agent.eval.outcome import SOLVER

PROBLEM = "What is the sum of the roots of the quadratic x^2 - 5x + 6 = 0?"
VIETA = "algebra.quadratics.vieta_sum_product"


async def test_the_navigator_choice_guides_one_chain_of_thought(keyword_store):
    navigator = ScriptedBackend([json.dumps({"template_id": VIETA})])
    solver = ScriptedBackend(["By Vieta the sum is -b/a = 5. \\boxed{5}"])

    outcome = await TemplateGuided(navigator, solver, keyword_store, candidates=3)(PROBLEM)

    assert outcome.answer == "5"
    assert outcome.details["template"] == VIETA
    (choice,) = navigator.calls
    retrieved = outcome.details["retrieved"]
    assert len(retrieved) == 3 and VIETA in retrieved
    assert choice.json_schema["properties"]["template_id"]["enum"] == retrieved
    (solve,) = solver.calls
    prompt = solve.messages[-1]["content"]
    assert "Compute the sum of the roots as -b/a" in prompt  # the template's steps
    assert "Worked example" not in prompt  # small models copy its numbers
    assert PROBLEM in prompt and "\\boxed" in solve.messages[0]["content"]
    assert outcome.usage[NAVIGATOR].calls == 1 and outcome.usage[SOLVER].calls == 1


async def test_an_unusable_choice_falls_back_to_the_closest_template(keyword_store):
    navigator = ScriptedBackend(["no idea", "still no idea"])
    solver = ScriptedBackend(["\\boxed{5}"])

    outcome = await TemplateGuided(navigator, solver, keyword_store, candidates=3)(PROBLEM)

    assert outcome.details["template"] == outcome.details["retrieved"][0]
    assert outcome.usage[NAVIGATOR].calls == 2  # one retry with the error fed back
    assert outcome.answer == "5"


async def test_an_empty_store_is_an_error_not_a_guess():
    class EmptyStore:
        def search(self, query, k=5, domain=None):
            return []

    solver = ScriptedBackend([])
    outcome = await TemplateGuided(ScriptedBackend([]), solver, EmptyStore())(PROBLEM)
    assert outcome.answer is None and "no templates" in outcome.error
    assert solver.calls == []
