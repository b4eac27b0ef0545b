"""The agent graph end to end with scripted backends: real prompts, parsing, checks, routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flux_agent.agent import AgentContext, FluxAgent, load_run
from flux_agent.agent.runner import RunNotFound
from flux_agent.backends.base import BackendError, GenerationRequest
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.config import AgentSettings

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"
VIETA = "algebra.quadratics.vieta_sum_product"
DISCRIMINANT = "algebra.quadratics.discriminant_root_count"


def plan_json(*steps: tuple[str, str]) -> str:
    return json.dumps(
        {"analysis": "quadratic roots", "steps": [{"template_id": t, "goal": g} for t, g in steps]}
    )


def work_then(result: str, expression: str = "", reasoning: str = "a=1, b=-5") -> list[str]:
    """A step's two replies: the free-text work, then its JSON result."""
    return [reasoning, json.dumps({"result": result, "expression": expression})]


def answer_json(answer: str) -> str:
    return json.dumps({"answer": answer})


def make_agent(tmp_path: Path, store, sandbox, navigator, solver, **settings) -> FluxAgent:
    context = AgentContext(
        navigator=navigator,
        solver=solver,
        store=store,
        settings=AgentSettings(**settings),
        sandbox=sandbox,
    )
    return FluxAgent(context, tmp_path / "runs.sqlite")


async def test_happy_path_plans_checks_and_verifies(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum of the roots."))])
    solver = ScriptedBackend([*work_then("5", "-(-5)/1"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)
    events: list[dict] = []

    result = await agent.solve(PROBLEM, expected="5", on_event=events.append)

    assert result.status == "answered"
    assert result.answer == "5"
    assert result.verified and result.correct is True
    assert [s.template_id for s in result.plan.steps] == [VIETA]
    (step,) = result.steps
    assert step.check == "verified" and step.value == "5"
    assert result.usage["navigator"].calls == 1 and result.usage["solver"].calls == 3
    assert result.usage["solver"].completion_tokens > 0
    assert result.llm_calls == 4
    assert {"plan", "retrieve", "instantiate", "check", "answer", "total"} <= set(result.timings)
    kinds = [e["type"] for e in events]
    started = [e["node"] for e in events if e["type"] == "node_started"]
    finished = [e["node"] for e in events if e["type"] == "node_finished"]
    assert started == finished == ["plan", "retrieve", "instantiate", "check", "answer"]
    assert kinds.index("plan") < kinds.index("step_started") < kinds.index("check")
    assert kinds.index("check") < kinds.index("answer") < kinds.index("result")
    streamed = "".join(e["delta"] for e in events if e["type"] == "step_text")
    assert streamed == "a=1, b=-5"  # the free-text work is what streams
    # The navigator saw the retrieved templates and the schema pinned ids to them.
    plan_request = navigator.calls[0]
    assert VIETA in plan_request.messages[-1]["content"]
    enum = plan_request.json_schema["$defs"]["PlanStep"]["properties"]["template_id"]["enum"]
    assert VIETA in enum
    # The solver's step prompt carried the template's steps.
    assert "Compute the sum of the roots as -b/a" in solver.calls[0].messages[-1]["content"]
    assert solver.calls[0].json_schema is None  # the work is free text
    # The JSON result is asked for after the work, which the model sees as its own turn.
    assert solver.calls[1].messages[-2] == {"role": "assistant", "content": "a=1, b=-5"}
    assert solver.calls[1].json_schema["required"] == ["result"]


async def test_invalid_plan_json_is_retried_with_the_error_fed_back(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend(
        ['{"analysis": "x", "steps": [', plan_json((VIETA, "Find the sum of the roots."))]
    )
    solver = ScriptedBackend([*work_then("5", "5"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert result.answer == "5" and not result.failures
    assert len(navigator.calls) == 2
    retry = navigator.calls[1].messages
    assert retry[-2]["role"] == "assistant" and retry[-1]["role"] == "user"
    assert "not valid" in retry[-1]["content"]


async def test_unknown_template_id_is_rejected_then_retried(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend(
        [
            plan_json(("algebra.made.up", "Guess.")),
            plan_json((VIETA, "Find the sum of the roots.")),
        ]
    )
    solver = ScriptedBackend([*work_then("5", "5"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert "algebra.made.up" in navigator.calls[1].messages[-1]["content"]
    assert result.plan.steps[0].template_id == VIETA


async def test_navigator_that_never_complies_gets_a_recorded_fallback(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend(["not json"] * 3)
    solver = ScriptedBackend([*work_then("5", "5"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver, max_json_retries=2)

    result = await agent.solve(PROBLEM)

    assert len(navigator.calls) == 3
    assert result.status == "answered"
    assert any("navigator gave no valid plan" in f for f in result.failures)
    assert result.plan.analysis.startswith("(fallback")
    assert result.plan.steps[0].template_id == keyword_store.search(PROBLEM, 1)[0].template.id


async def test_too_many_steps_break_the_budget_and_are_retried(tmp_path, keyword_store, sandbox):
    long_plan = plan_json(*[(VIETA, f"Step {i}.") for i in range(3)])
    navigator = ScriptedBackend([long_plan, plan_json((VIETA, "Find the sum of the roots."))])
    solver = ScriptedBackend([*work_then("5", "5"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver, max_steps=2)

    result = await agent.solve(PROBLEM)

    assert navigator.calls[0].json_schema["properties"]["steps"]["maxItems"] == 2
    assert "at most 2" in navigator.calls[1].messages[-1]["content"]
    assert len(result.plan.steps) == 1


async def test_mismatched_step_is_retried_with_feedback(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum of the roots."))])
    solver = ScriptedBackend([*work_then("6", "-(-5)"), *work_then("5", "-(-5)"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    (step,) = result.steps
    assert step.check == "verified" and step.attempts == 2
    retry_prompt = solver.calls[2].messages[-1]["content"]
    assert "rejected" in retry_prompt and "evaluates to 5" in retry_prompt
    assert result.answer == "5" and result.verified


async def test_failing_step_triggers_a_revision(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend(
        [
            plan_json((DISCRIMINANT, "Count the real roots.")),
            plan_json((VIETA, "Use Vieta to add the roots.")),
        ]
    )
    solver = ScriptedBackend(
        [
            *work_then("2", "nonsense("),  # does not parse
            *work_then("2", "nonsense("),  # retry fails too
            *work_then("5", "5"),  # the revised step
            answer_json("5"),
        ]
    )
    agent = make_agent(
        tmp_path, keyword_store, sandbox, navigator, solver, max_step_retries=1, max_revisions=1
    )
    events: list[dict] = []

    result = await agent.solve(PROBLEM, on_event=events.append)

    (revision,) = result.revisions
    assert revision.after_step == 0
    assert revision.old_steps[0].template_id == DISCRIMINANT
    assert revision.new_steps[0].template_id == VIETA
    assert "did not evaluate" in revision.reason
    assert [s.template_id for s in result.plan.steps] == [VIETA]
    assert [s.check for s in result.steps] == ["verified"]
    assert "This step failed" in navigator.calls[1].messages[-1]["content"]
    assert any(e["type"] == "revision" and not e["failed"] for e in events)
    assert result.answer == "5" and result.verified


async def test_exhausted_revisions_keep_going_and_record_the_failure(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend([*work_then("2", "1/0 +"), answer_json("5")])
    agent = make_agent(
        tmp_path, keyword_store, sandbox, navigator, solver, max_step_retries=0, max_revisions=0
    )

    result = await agent.solve(PROBLEM)

    assert result.steps[0].check == "error"
    assert any("kept failing" in f for f in result.failures)
    assert result.answer == "5"
    assert not result.verified  # nothing was computed to check it against


async def test_token_budget_ends_the_trajectory_early(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend(
        [plan_json((VIETA, "Find the sum."), (DISCRIMINANT, "Double-check."))]
    )
    solver = ScriptedBackend([*work_then("5", "5", reasoning="word " * 300), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver, max_total_tokens=256)

    result = await agent.solve(PROBLEM)

    assert len(result.steps) == 1 and len(result.plan.steps) == 2
    assert any("token budget" in f for f in result.failures)
    assert result.answer == "5"


@pytest.mark.parametrize(
    "attack", ["__import__('os').system('touch {marker}')", "__import__('os')"]
)
async def test_hostile_expression_is_never_run(tmp_path, keyword_store, sandbox, attack):
    marker = tmp_path / "pwned"
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend([*work_then("5", attack.format(marker=marker)), answer_json("5")])
    agent = make_agent(
        tmp_path, keyword_store, sandbox, navigator, solver, max_step_retries=0, max_revisions=0
    )

    result = await agent.solve(PROBLEM)

    step = result.steps[0]
    assert step.check in ("error", "unchecked") and step.value is None
    if step.check == "error":
        assert "not allowed" in step.check_detail
    assert not marker.exists()


async def test_invalid_final_answer_falls_back_to_the_last_computed_value(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend([*work_then("5", "2 + 3"), "??", "??", "??"])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert result.answer == "5" and result.verified
    assert any("no valid final answer" in f for f in result.failures)


async def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend(
        [plan_json((VIETA, "Find the sum."), (DISCRIMINANT, "Check the roots are real."))]
    )
    replies = iter(work_then("5", "5"))

    def flaky(request: GenerationRequest) -> str:
        try:
            return next(replies)
        except StopIteration:
            raise BackendError("server went away") from None

    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, ScriptedBackend(flaky))
    with pytest.raises(BackendError):
        await agent.solve(PROBLEM, run_id="run-1")

    partial = await load_run(tmp_path / "runs.sqlite", "run-1")
    assert partial.status == "interrupted" and len(partial.steps) == 1

    solver = ScriptedBackend([*work_then("1", "(-5)**2 - 4*6"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, ScriptedBackend([]), solver)
    result = await agent.resume_result("run-1")

    assert result.status == "answered" and result.answer == "5"
    assert len(result.steps) == 2 and result.steps[0].result == "5"
    assert len(solver.calls) == 3  # step 2 (work + result) and the answer; step 1 not redone
    assert (await agent.get_result("run-1")).answer == "5"


async def test_unknown_run_and_empty_problem_are_clear_errors(tmp_path, keyword_store, sandbox):
    agent = make_agent(tmp_path, keyword_store, sandbox, ScriptedBackend([]), ScriptedBackend([]))
    with pytest.raises(ValueError, match="empty"):
        await agent.solve("   ")
    with pytest.raises(RunNotFound):
        await agent.resume_result("nope")


async def test_prose_in_the_expression_field_is_not_checked_or_retried(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend([*work_then("5", "the sum of the roots is five"), answer_json("5")])
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert result.steps[0].check == "unchecked" and result.steps[0].attempts == 1
    assert "prose" in result.steps[0].check_detail
    assert not result.verified


async def test_raw_newlines_inside_json_strings_are_accepted(tmp_path, keyword_store, sandbox):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend(
        ["work", '{"result": "5\nexactly", "expression": "5"}', answer_json("5")]
    )
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert result.steps[0].result == "5\nexactly"
    assert len(solver.calls) == 3


async def test_retries_and_revisions_sample_instead_of_repeating_greedily(
    tmp_path, keyword_store, sandbox
):
    navigator = ScriptedBackend(
        [plan_json((VIETA, "Find the sum.")), plan_json((VIETA, "Add the roots."))]
    )
    solver = ScriptedBackend(
        [*work_then("6", "5"), *work_then("6", "5"), *work_then("5", "5"), answer_json("5")]
    )
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver, retry_temperature=0.8)

    await agent.solve(PROBLEM)

    assert [c.temperature for c in solver.calls] == [0.0, 0.0, 0.8, 0.8, 0.0, 0.0, 0.0]
    assert [c.temperature for c in navigator.calls] == [0.0, 0.8]


@pytest.mark.parametrize("claim", ["40 * (1 - 0.25) = 35", "15 * 15 == 225"])
async def test_a_comparison_is_not_a_computed_value(tmp_path, keyword_store, sandbox, claim):
    navigator = ScriptedBackend([plan_json((VIETA, "Find the sum."))])
    solver = ScriptedBackend(
        [*work_then("35", claim), *work_then("30", "40 * 3/4"), answer_json("30")]
    )
    agent = make_agent(tmp_path, keyword_store, sandbox, navigator, solver)

    result = await agent.solve(PROBLEM)

    assert result.steps[0].check == "verified" and result.steps[0].attempts == 2
    assert "comparison" in solver.calls[2].messages[-1]["content"]
