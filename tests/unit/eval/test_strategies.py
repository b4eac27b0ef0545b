"""Every strategy on the scripted backend: prompts, answer extraction, votes, scores, budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flux_agent.agent import AgentContext, FluxAgent
from flux_agent.backends.base import BackendError, Completion, GenerationRequest, Usage
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.config import AgentSettings
from flux_agent.eval import prompts
from flux_agent.eval.budget_forcing import BudgetForcing
from flux_agent.eval.outcome import SOLVER
from flux_agent.eval.strategies import (
    GRADER,
    BestOfN,
    ChainOfThought,
    FluxStrategy,
    SelfConsistency,
    StrategyOptions,
    build_strategies,
)

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"


def sampler(backend: ScriptedBackend, logprobs: bool = False) -> ChainOfThought:
    return ChainOfThought(backend, max_tokens=200, temperature=0.7, logprobs=logprobs)


async def test_cot_prompts_step_by_step_and_reads_the_boxed_answer():
    backend = ScriptedBackend(["The roots are 2 and 3, so the sum is 5. \\boxed{5}"])

    outcome = await ChainOfThought(backend, max_tokens=300)(PROBLEM)

    assert outcome.answer == "5"
    (request,) = backend.calls
    assert request.messages[-1]["content"] == PROBLEM
    assert "step by step" in request.messages[0]["content"]
    assert "\\boxed" in request.messages[0]["content"]
    assert request.temperature == 0.0 and request.max_tokens == 300
    assert outcome.usage[SOLVER].calls == 1
    assert outcome.usage[SOLVER].completion_tokens == 12
    assert outcome.details["text"].endswith("\\boxed{5}")


async def test_cot_without_an_answer_gives_none():
    outcome = await ChainOfThought(ScriptedBackend(["I am not sure how to do this."]))(PROBLEM)
    assert outcome.answer is None


async def test_self_consistency_votes_by_equivalence_with_distinct_seeds(sandbox):
    backend = ScriptedBackend(
        ["so \\boxed{6}", "so \\boxed{5}", "so \\boxed{\\frac{10}{2}}", "no idea at all"]
    )

    outcome = await SelfConsistency(sampler(backend), 4, sandbox)(PROBLEM, seed=3)

    assert outcome.answer == "5"  # 5 and 10/2 are one answer with two votes
    assert outcome.details["votes"] == {"5": 2, "6": 1}
    assert outcome.details["tie"] is False
    assert outcome.details["answers"] == ["6", "5", "\\frac{10}{2}", None]
    assert outcome.usage[SOLVER].calls == 4
    assert len({request.seed for request in backend.calls}) == 4
    assert all(request.temperature == 0.7 for request in backend.calls)


async def test_self_consistency_tie_goes_to_the_first_answer_seen(sandbox):
    backend = ScriptedBackend(["\\boxed{6}", "\\boxed{5}", "\\boxed{5}", "\\boxed{6}"])
    outcome = await SelfConsistency(sampler(backend), 4, sandbox)(PROBLEM)
    assert outcome.answer == "6"
    assert outcome.details["tie"] is True


async def test_self_consistency_with_no_answers_reports_an_error(sandbox):
    backend = ScriptedBackend(["hmm", "unsure"])
    outcome = await SelfConsistency(sampler(backend), 2, sandbox)(PROBLEM)
    assert outcome.answer is None
    assert outcome.error == "no sample stated an answer"


async def test_best_of_n_picks_the_highest_mean_logprob():
    replies = iter(
        [
            Completion("\\boxed{6}", mean_logprob=-0.9),
            Completion("\\boxed{5}", mean_logprob=-0.2),
            Completion("\\boxed{5}", mean_logprob=-0.5),
        ]
    )
    backend = ScriptedBackend(lambda request: next(replies))

    outcome = await BestOfN(sampler(backend, logprobs=True), 3, backend)(PROBLEM)

    assert outcome.answer == "5"
    assert outcome.details["scorer"] == "mean_logprob"
    assert outcome.details["chosen"] == 1
    assert all(request.logprobs for request in backend.calls)
    assert GRADER not in outcome.usage  # no grading calls were needed


async def test_best_of_n_is_not_a_vote():
    # Two samples agree on 6, but the single 5 has the best score and wins.
    replies = iter(
        [
            Completion("\\boxed{6}", mean_logprob=-0.8),
            Completion("\\boxed{6}", mean_logprob=-0.7),
            Completion("\\boxed{5}", mean_logprob=-0.1),
        ]
    )
    backend = ScriptedBackend(lambda request: next(replies))
    outcome = await BestOfN(sampler(backend, logprobs=True), 3, backend)(PROBLEM)
    assert outcome.answer == "5"


async def test_best_of_n_grades_samples_itself_without_logprobs():
    def reply(request: GenerationRequest) -> str:
        if request.json_schema is None:  # a sample
            samples.append(request)
            return ["so \\boxed{6}", "so \\boxed{5}", "I give up"][len(samples) - 1]
        solution = request.messages[-1]["content"]
        # The grader likes the unanswered sample best: it must still lose.
        return json.dumps({"score": 9 if "give up" in solution else 7 if "{5}" in solution else 2})

    samples: list[GenerationRequest] = []
    backend = ScriptedBackend(reply)

    outcome = await BestOfN(sampler(backend), 3, backend)(PROBLEM)

    assert outcome.answer == "5"
    assert outcome.details["scorer"] == "self_evaluation"
    assert outcome.details["scores"] == [2.0, 7.0, 9.0]
    assert outcome.usage[GRADER].calls == 3 and outcome.usage[SOLVER].calls == 3
    grading = [request for request in backend.calls if request.json_schema is not None]
    assert PROBLEM in grading[0].messages[-1]["content"]


async def test_best_of_n_unreadable_grade_ranks_last():
    replies = iter(["\\boxed{6}", "\\boxed{5}", "not json", '{"score": 3}'])
    backend = ScriptedBackend(lambda request: next(replies))
    outcome = await BestOfN(sampler(backend), 2, backend)(PROBLEM)
    assert outcome.details["scores"] == [-1.0, 3.0]
    assert outcome.answer == "5"


def forcing_script(thinking: list[Completion], answer: str):
    """Replies for budget forcing: thinking pieces in order, then the answer completion."""
    pieces = iter(thinking)

    def reply(request: GenerationRequest) -> Completion:
        if request.prefill.endswith("\\boxed{"):
            return Completion(answer)
        return next(pieces)

    return reply


async def test_budget_forcing_appends_wait_until_the_minimum_and_sums_tokens():
    thinking = [
        Completion("x = 2 or 3.", Usage(50, 4, 1)),
        Completion(" let me check the roots again.", Usage(60, 6, 1)),
        Completion(" 2 + 3 = 5 indeed, and that is the sum.", Usage(70, 10, 1)),
    ]
    backend = ScriptedBackend(forcing_script(thinking, "5}"))
    strategy = BudgetForcing(backend, min_thinking=15, max_thinking=100, max_waits=3)

    outcome = await strategy(PROBLEM)

    assert outcome.answer == "5"
    assert outcome.details["waits"] == 2
    assert outcome.details["thinking_tokens"] == 4 + 6 + 10
    # Every thinking call continues the text so far, with "Wait," where the model stopped.
    prefills = [request.prefill for request in backend.calls]
    assert prefills[0] == ""
    assert prefills[1] == "x = 2 or 3.\nWait,"
    assert prefills[2].endswith("again.\nWait,")
    assert prefills[3].endswith(
        f"indeed, and that is the sum.\n\n{prompts.END_OF_THINKING} \\boxed{{"
    )
    # The token budget shrinks as thinking accumulates; the end marker is a stop string.
    assert [request.max_tokens for request in backend.calls[:3]] == [100, 96, 90]
    assert prompts.END_OF_THINKING in backend.calls[0].stop
    usage = outcome.usage[SOLVER]
    answer_tokens = outcome.details["answer_tokens"]
    assert usage.completion_tokens == 20 + answer_tokens
    assert usage.calls == 4
    assert usage.prompt_tokens == 50 + 60 + 70 + backend_prompt_tokens(backend.calls[-1])


def backend_prompt_tokens(request: GenerationRequest) -> int:
    """What the scripted backend counts as the prompt of a request it built usage for."""
    return sum(len(message["content"].split()) for message in request.messages)


async def test_budget_forcing_stops_waiting_after_max_waits():
    thinking = [Completion("5.", Usage(10, 1, 1)) for _ in range(3)]
    backend = ScriptedBackend(forcing_script(thinking, "5}"))
    outcome = await BudgetForcing(backend, min_thinking=50, max_thinking=100, max_waits=2)(PROBLEM)
    assert outcome.details["waits"] == 2
    assert len(backend.calls) == 4  # three thinking calls and the answer


async def test_budget_forcing_cuts_thinking_at_the_maximum():
    thinking = [Completion("a long ramble " * 10, Usage(10, 30, 1), finish_reason="length")]
    backend = ScriptedBackend(forcing_script(thinking, "\\frac{1}{2}}$ and more"))

    outcome = await BudgetForcing(backend, min_thinking=10, max_thinking=30)(PROBLEM)

    assert outcome.details["waits"] == 0
    assert outcome.answer == "\\frac{1}{2}"
    assert len(backend.calls) == 2


async def test_budget_forcing_refuses_a_backend_without_prefill():
    chat_only = ScriptedBackend(["x"])
    chat_only.supports_prefill = False
    with pytest.raises(BackendError, match="continue"):
        await BudgetForcing(chat_only)(PROBLEM)


def test_budget_forcing_checks_its_limits():
    with pytest.raises(ValueError):
        BudgetForcing(ScriptedBackend([]), min_thinking=100, max_thinking=50)


async def test_flux_strategy_reports_the_agent_run(tmp_path: Path, keyword_store, sandbox):
    vieta = "algebra.quadratics.vieta_sum_product"
    plan = {"analysis": "roots", "steps": [{"template_id": vieta, "goal": "Sum the roots."}]}
    navigator = ScriptedBackend([json.dumps(plan)])
    solver = ScriptedBackend(
        ["a=1, b=-5", json.dumps({"result": "5", "expression": "5"}), json.dumps({"answer": "5"})]
    )
    context = AgentContext(
        navigator=navigator,
        solver=solver,
        store=keyword_store,
        settings=AgentSettings(),
        sandbox=sandbox,
    )
    outcome = await FluxStrategy(FluxAgent(context, tmp_path / "runs.sqlite"))(PROBLEM)

    assert outcome.answer == "5"
    assert outcome.error is None
    assert outcome.usage["navigator"].calls == 1 and outcome.usage["solver"].calls == 3
    assert outcome.details["templates"] == [vieta]
    assert outcome.details["verified"] is True
    assert outcome.details["checks"] == {"verified": 1}


def test_build_strategies_by_name(sandbox):
    backend = ScriptedBackend([])
    built = build_strategies(
        ["cot", "self-consistency", "best-of-n", "budget-forcing"],
        solver=backend,
        sandbox=sandbox,
        options=StrategyOptions(samples=3, temperature=0.5),
    )
    assert list(built) == ["cot", "self-consistency", "best-of-n", "budget-forcing"]
    assert built["self-consistency"].n == 3
    shared = built["self-consistency"].base
    assert shared is built["best-of-n"].base
    assert shared.base.logprobs is True and shared.base.temperature == 0.5
    alone = build_strategies(["best-of-n"], solver=backend, sandbox=sandbox)
    assert alone["best-of-n"].base.logprobs is True
    with pytest.raises(ValueError, match="unknown strategies"):
        build_strategies(["cot", "tree-search"], solver=backend, sandbox=sandbox)
    with pytest.raises(ValueError, match="needs an agent"):
        build_strategies(["flux"], solver=backend, sandbox=sandbox)


def test_build_refuses_budget_forcing_on_a_chat_only_backend(sandbox):
    chat_only = ScriptedBackend([])
    chat_only.supports_prefill = False
    with pytest.raises(ValueError, match="budget-forcing"):
        build_strategies(["budget-forcing"], solver=chat_only, sandbox=sandbox)


async def test_self_consistency_and_best_of_n_share_one_set_of_samples(sandbox):
    replies = iter(
        [
            Completion("\\boxed{6}", mean_logprob=-0.1),
            Completion("\\boxed{5}", mean_logprob=-0.5),
            Completion("\\boxed{5}", mean_logprob=-0.6),
        ]
    )
    backend = ScriptedBackend(lambda request: next(replies))
    built = build_strategies(
        ["self-consistency", "best-of-n"],
        solver=backend,
        sandbox=sandbox,
        options=StrategyOptions(samples=3),
    )

    voted = await built["self-consistency"](PROBLEM, seed=7)
    scored = await built["best-of-n"](PROBLEM, seed=7)

    assert len(backend.calls) == 3  # generated once, read twice
    assert voted.answer == "5" and scored.answer == "6"  # same samples, different rules
    assert voted.usage[SOLVER].calls == scored.usage[SOLVER].calls == 3
    assert built["self-consistency"].base._pending == {}  # forgotten after both reads
