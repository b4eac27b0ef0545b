"""Rollouts with scripted models: plans sampled, followed on neighbours, scored, paired, resumed."""

from __future__ import annotations

import asyncio
import json
import math
import re
import zlib

import pytest

from flux_agent.backends import BackendError, GenerationRequest, ScriptedBackend
from flux_agent.eval.records import EvalItem
from flux_agent.storage import JsonlLog
from flux_agent.training.recipe import RLSpec
from flux_agent.training.rollouts import (
    OUTCOMES_FILE,
    SAMPLES_FILE,
    RolloutWorker,
    nearest_neighbours,
    run_rollouts,
    score_round,
    split_problems,
)

VIETA = "algebra.quadratics.vieta_sum_product"
DISCRIMINANT = "algebra.quadratics.discriminant_root_count"


def _item(number: int, a: int, b: int) -> EvalItem:
    return EvalItem(
        id=f"p{number}", problem=f"Add the roots: compute {a} + {b}.", answer=str(a + b)
    )


ITEMS = [_item(1, 2, 3), _item(2, 4, 5), _item(3, 10, 7)]
NEIGHBOURS = {"p1": [ITEMS[1]], "p2": [ITEMS[2]]}


def _plan(template_id: str) -> str:
    return json.dumps(
        {"analysis": "add", "steps": [{"template_id": template_id, "goal": "Add the roots."}]}
    )


def navigator_reply(request: GenerationRequest) -> str:
    """Sample k of a problem (seed = base + k): a good plan, a bad plan, then not JSON."""
    return [_plan(VIETA), _plan(DISCRIMINANT), "I would add them"][(request.seed or 0) % 3]


def solver_reply(request: GenerationRequest) -> str:
    """Right only when it follows Vieta's template: the sum of the problem's two numbers."""
    prompt = request.messages[-1]["content"]
    a, b = map(int, re.search(r"compute (\d+) \+ (\d+)", prompt).groups())
    return f"So the answer is \\boxed{{{a + b if 'Vieta' in prompt else 0}}}."


def _spec(**changes) -> RLSpec:
    return RLSpec(samples=3, neighbours=1, problems=2, rounds=1, candidates=3, **changes)


class AlignedSeeds(RolloutWorker):
    """Seeds base 0 for every problem, so sample k is always reply k of `navigator_reply`."""

    async def sample_plans(self, prompt, key, round_number):
        requests = [
            GenerationRequest(messages=tuple(prompt), temperature=1.0, seed=k)
            for k in range(self.spec.samples)
        ]
        return [c.text for c in await self.navigator.generate(requests)]


def _worker(keyword_store, sandbox, solver, navigator=None, **spec) -> RolloutWorker:
    navigator = navigator or ScriptedBackend(navigator_reply)
    return AlignedSeeds(navigator, solver, keyword_store, sandbox, _spec(**spec))


def test_split_deals_disjoint_heldout_rounds_and_pool_the_same_way_each_time():
    items = [_item(n, n, 1) for n in range(30)]
    spec = RLSpec(heldout=5, problems=4, rounds=3, pool=20)
    split = split_problems(items, spec, seed=7)
    heldout = {i.id for i in split.heldout}
    trained = [i.id for chunk in split.rounds for i in chunk]
    pool = {i.id for i in split.pool}
    assert len(heldout) == 5 and len(trained) == len(set(trained)) == 12
    assert not heldout & (set(trained) | pool)  # held-out problems never leak into training
    assert set(trained) <= pool and len(pool) == 20
    again = split_problems(items, spec, seed=7)
    assert [i.id for i in again.heldout] == [i.id for i in split.heldout]
    assert [i.id for i in split_problems(items, spec, seed=8).heldout] != list(heldout)


def test_split_names_what_is_missing_when_the_dataset_is_too_small():
    with pytest.raises(ValueError, match="needs at least 13"):
        split_problems(ITEMS, RLSpec(heldout=4, problems=4, rounds=2), seed=0)


class WordEmbedder:
    name = "words"

    def embed(self, texts):
        vectors = []
        for text in texts:
            vector = [0.0] * 64
            for word in re.findall(r"[a-z]+", text.lower()):
                vector[zlib.crc32(word.encode()) % 64] += 1.0
            vectors.append(vector)
        return vectors


def test_neighbours_are_the_most_similar_other_problems():
    pool = [
        EvalItem(id="a", problem="triangle area with base and height", answer="1"),
        EvalItem(id="b", problem="area of a triangle from base and height", answer="1"),
        EvalItem(id="c", problem="count the divisors of an integer", answer="1"),
        EvalItem(id="d", problem="how many divisors does an integer have", answer="1"),
    ]
    found = nearest_neighbours(pool[:1] + pool[2:3], pool, WordEmbedder(), 1)
    assert found == {"a": ["b"], "c": ["d"]}
    assert nearest_neighbours(pool, pool, WordEmbedder(), 0) == {i.id: [] for i in pool}


def test_a_torn_last_line_is_dropped_and_cut_before_the_next_append(tmp_path):
    log = JsonlLog(tmp_path / "log.jsonl")
    log.append({"n": 1})
    log.append({"n": 2})
    with log.path.open("a") as out:
        out.write('{"n": 3, "tor')  # killed mid-write
    assert log.read() == [{"n": 1}, {"n": 2}]
    log.append({"n": 4})
    assert log.read() == [{"n": 1}, {"n": 2}, {"n": 4}]


def _run(worker, folder, problems=ITEMS[:2]):
    asyncio.run(run_rollouts(worker, problems, NEIGHBOURS, folder, 1))
    return score_round(worker, problems, NEIGHBOURS, folder, {VIETA, DISCRIMINANT})


def test_plans_are_rewarded_for_what_the_solver_gets_right_on_the_problem_and_neighbours(
    tmp_path, keyword_store, sandbox
):
    solver = ScriptedBackend(solver_reply)
    scores = _run(_worker(keyword_store, sandbox, solver), tmp_path)

    rewards = {(s.problem_id, s.text): s.reward for s in scores.samples}
    assert len(rewards) == 6
    good, bad, invalid = (scores.samples[k].reward for k in range(3))
    assert (good.accuracy, good.structure, good.real_templates) == (1.0, 1.0, 1.0)
    assert math.isclose(good.total, 1.2) and math.isclose(bad.total, 0.2)
    assert invalid.total == 0.0 and scores.samples[2].correct == []
    # 2 problems x 2 valid plans x (problem + 1 neighbour); the invalid plan is never solved.
    assert len(solver.calls) == 8
    on_source = [c for c in solver.calls if "compute 2 + 3" in c.messages[-1]["content"]]
    on_neighbour = [c for c in solver.calls if "compute 4 + 5" in c.messages[-1]["content"]]
    assert all("Goal of this step: Add the roots." in c.messages[-1]["content"] for c in on_source)
    # p2's own solves carry goals; p1's neighbour solve of the same problem does not.
    assert any("Goal of this step" not in c.messages[-1]["content"] for c in on_neighbour)
    # Best with worst, then inward: (good, invalid) and nothing else reaches the margin twice.
    assert [(p.chosen, p.rejected) for p in scores.pairs] == [
        (_plan(VIETA), "I would add them")
    ] * 2
    assert scores.pairs[0].prompt[1]["content"].startswith("Templates you may use:")


def test_an_interrupted_round_resumes_without_redoing_samples_or_solves(
    tmp_path, keyword_store, sandbox
):
    reference = _run(_worker(keyword_store, sandbox, ScriptedBackend(solver_reply)), tmp_path / "a")

    calls = []

    def dies_after_five(request):
        if len(calls) == 5:
            raise BackendError("the machine went away")
        calls.append(request)
        return solver_reply(request)

    folder = tmp_path / "b"
    first_navigator = ScriptedBackend(navigator_reply)
    with pytest.raises(BackendError):
        _run(
            _worker(keyword_store, sandbox, ScriptedBackend(dies_after_five), first_navigator),
            folder,
        )
    assert len(JsonlLog(folder / OUTCOMES_FILE).read()) == 5

    navigator, solver = ScriptedBackend(navigator_reply), ScriptedBackend(solver_reply)
    resumed = _run(_worker(keyword_store, sandbox, solver, navigator), folder)

    sampled_before = len(first_navigator.calls) // 3  # problems sampled before the crash
    assert len(navigator.calls) == 3 * (2 - sampled_before)
    assert len(solver.calls) == 8 - 5  # only the missing solves
    assert [s.reward for s in resumed.samples] == [s.reward for s in reference.samples]
    assert [p.record() for p in resumed.pairs] == [p.record() for p in reference.pairs]
    assert len(JsonlLog(folder / SAMPLES_FILE).read()) == 2


def test_identical_samples_are_solved_once_and_scoring_needs_every_rollout(
    tmp_path, keyword_store, sandbox
):
    solver = ScriptedBackend(solver_reply)
    same = ScriptedBackend(lambda request: _plan(VIETA))
    scores = _run(_worker(keyword_store, sandbox, solver, same), tmp_path, ITEMS[:1])
    assert len(solver.calls) == 2  # one plan text, on the problem and its neighbour
    assert scores.pairs == []  # all samples equal: nothing to prefer
    (tmp_path / OUTCOMES_FILE).write_text("")
    worker = _worker(keyword_store, sandbox, solver, same)
    with pytest.raises(LookupError, match="missing"):
        score_round(worker, ITEMS[:1], NEIGHBOURS, tmp_path, {VIETA})
