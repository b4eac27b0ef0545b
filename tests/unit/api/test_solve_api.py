"""Solving over HTTP: plain results, event streams, runs, resume, limits and deadlines."""

from __future__ import annotations

import asyncio

from flux_agent.backends.scripted import ScriptedBackend
from tests.unit.api.conftest import (
    PROBLEM,
    SlowBackend,
    answer_anything,
    client_for,
    make_service,
    parse_sse,
)


async def test_solve_returns_the_solve_result(client):
    response = await client.post("/v1/solve", json={"problem": PROBLEM, "expected": "5"})

    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "answered" and result["answer"] == "5"
    assert result["verified"] is True and result["correct"] is True
    assert result["steps"][0]["check"] == "verified" and result["steps"][0]["value"] == "5"
    assert result["plan"]["steps"][0]["template_id"]
    assert result["usage"]["solver"]["calls"] == 3


async def test_streamed_solve_sends_the_graph_events_in_order(client):
    response = await client.post("/v1/solve", json={"problem": PROBLEM, "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert names[0] == "run" and names[-1] == "result"
    order = ["plan", "template", "step_started", "step_text", "step_result", "check", "answer"]
    positions = [names.index(name) for name in order]
    assert positions == sorted(positions)
    text = "".join(d["delta"] for n, d in events if n == "step_text")
    assert text == "By Vieta the sum of the roots is -b/a = 5."
    result = events[-1][1]["result"]
    assert result["answer"] == "5" and result["run_id"] == events[0][1]["run_id"]


async def test_finished_runs_are_listed_newest_first_and_read_back(client):
    first = (await client.post("/v1/solve", json={"problem": PROBLEM, "run_id": "first"})).json()
    await client.post("/v1/solve", json={"problem": "What is 2 + 3?", "run_id": "second"})

    listing = (await client.get("/v1/runs")).json()
    assert [run["run_id"] for run in listing["runs"]] == ["second", "first"]
    assert listing["runs"][1]["problem"] == PROBLEM and listing["runs"][1]["answer"] == "5"
    assert listing["runs"][1]["updated_at"]
    page = (await client.get("/v1/runs?limit=1&offset=1")).json()
    assert [run["run_id"] for run in page["runs"]] == ["first"]
    stored = (await client.get("/v1/runs/first")).json()
    assert stored == {**first, "timings": stored["timings"]}


async def test_a_used_run_id_is_a_conflict(client):
    await client.post("/v1/solve", json={"problem": PROBLEM, "run_id": "same"})

    response = await client.post("/v1/solve", json={"problem": PROBLEM, "run_id": "same"})

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == [{"field": "run_id", "message": "already used"}]


async def test_deadline_stops_the_solve_and_resume_finishes_it(tmp_path, keyword_store, sandbox):
    # The plan comes at once; each solver call takes 0.3 s, so a 0.2 s deadline
    # stops the run inside its first step, after the plan was checkpointed.
    solver = SlowBackend(answer_anything, delay=0.3)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver)
    async with client_for(service) as client:
        response = await client.post(
            "/v1/solve", json={"problem": PROBLEM, "run_id": "slow", "timeout_s": 0.2}
        )
        assert response.status_code == 504
        error = response.json()["error"]
        assert error["type"] == "timeout" and error["run_id"] == "slow"
        assert "/v1/runs/slow/resume" in error["message"]
        assert solver.cancelled == 1  # the pending generation was cancelled, not left running
        assert service.active_solves == 0

        stored = (await client.get("/v1/runs/slow")).json()
        assert stored["status"] == "interrupted" and stored["plan"] is not None

        resumed = await client.post("/v1/runs/slow/resume", json={"stream": True})
        events = parse_sse(resumed.text)
        assert events[0][1] == {"type": "run", "run_id": "slow", "resumed": True}
        assert "plan" not in [name for name, _ in events]  # the plan was not made again
        assert events[-1][1]["result"]["answer"] == "5"


async def test_streamed_deadline_ends_with_an_error_event(tmp_path, keyword_store, sandbox):
    solver = SlowBackend(answer_anything, delay=0.3)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver, solve_timeout_s=0.2)
    async with client_for(service) as client:
        response = await client.post(
            "/v1/solve", json={"problem": PROBLEM, "stream": True, "timeout_s": 100}
        )
    events = parse_sse(response.text)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "timeout"  # the server's cap wins over 100 s
    assert "result" not in [name for name, _ in events]


async def test_past_the_concurrency_limit_requests_get_429(tmp_path, keyword_store, sandbox):
    solver = SlowBackend(answer_anything, delay=0.2)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver, max_concurrent_solves=1)
    async with client_for(service) as client:
        first = asyncio.create_task(client.post("/v1/solve", json={"problem": PROBLEM}))
        while service.active_solves == 0:
            await asyncio.sleep(0.01)
        refused = await client.post("/v1/solve", json={"problem": PROBLEM})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert "limit" in refused.json()["error"]["message"]
        assert (await first).status_code == 200
        assert service.active_solves == 0
        assert (await client.post("/v1/solve", json={"problem": PROBLEM})).status_code == 200


async def test_budgets_and_named_backends_reach_the_agent(tmp_path, keyword_store, sandbox):
    service = make_service(tmp_path, keyword_store, sandbox)
    other = ScriptedBackend(answer_anything)
    service._configured["other"] = other
    async with client_for(service) as client:
        response = await client.post(
            "/v1/solve",
            json={"problem": PROBLEM, "solver": "other", "budgets": {"max_steps": 1}},
        )
        unknown = await client.post("/v1/solve", json={"problem": PROBLEM, "navigator": "nope"})
    assert response.status_code == 200 and len(other.calls) == 3
    plan_request = service._live["navigator"].calls[0]
    assert plan_request.json_schema["properties"]["steps"]["maxItems"] == 1
    assert unknown.status_code == 422
    assert "no backend named 'nope'" in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["fields"][0]["field"] == "navigator"


async def test_a_backend_failure_is_a_clear_503_without_a_traceback(
    tmp_path, keyword_store, sandbox
):
    broken = ScriptedBackend([])  # runs out of replies at once: BackendError
    service = make_service(tmp_path, keyword_store, sandbox, navigator=broken, solver=broken)
    async with client_for(service) as client:
        response = await client.post("/v1/solve", json={"problem": PROBLEM})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "unavailable" and error["run_id"]
    assert "script exhausted" in error["message"] and "Traceback" not in response.text
    assert service.active_solves == 0


async def test_a_silent_stream_sends_keepalive_comments(
    tmp_path, keyword_store, sandbox, monkeypatch
):
    from flux_agent.api import SolveJob

    monkeypatch.setattr(SolveJob, "keepalive_s", 0.05)
    solver = SlowBackend(answer_anything, delay=0.3)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver)
    async with client_for(service) as client:
        response = await client.post("/v1/solve", json={"problem": PROBLEM, "stream": True})
    assert ": keep-alive\n\n" in response.text
    assert parse_sse(response.text)[-1][0] == "result"  # comments do not disturb the events


async def test_a_baseline_strategy_answers_with_the_same_result_shape(
    tmp_path, keyword_store, sandbox
):
    solver = ScriptedBackend(lambda request: "The roots are 2 and 3, so the sum is \\boxed{5}.")
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver)
    body = {"problem": PROBLEM, "strategy": "cot", "expected": "5", "stream": True}
    async with client_for(service) as client:
        events = parse_sse((await client.post("/v1/solve", json=body)).text)
        result = events[-1][1]["result"]
        stored = await client.get(f"/v1/runs/{result['run_id']}")
        unknown = await client.post("/v1/solve", json={"problem": PROBLEM, "strategy": "magic"})

    assert [name for name, _ in events] == ["run", "answer", "result"]
    assert events[0][1]["strategy"] == "cot"
    assert result["answer"] == "5" and result["correct"] is True
    assert result["verified"] is False and "checks no steps" in result["verification"]
    assert result["plan"] is None and result["usage"]["solver"]["calls"] == 1
    assert stored.status_code == 404  # baselines are not runs of the agent: nothing is stored
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "strategy"
