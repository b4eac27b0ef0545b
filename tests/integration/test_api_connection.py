"""Connection behaviour on a real HTTP server (uvicorn on 127.0.0.1, scripted backends):
a client that goes away stops its solve, frees its slot and leaves a resumable run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from flux_agent.api import FluxService, create_app
from tests.integration.conftest import serve_in_thread
from tests.unit.api.conftest import PROBLEM, SlowBackend, answer_anything, make_service

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path, keyword_store, sandbox) -> Iterator[tuple[str, FluxService, SlowBackend]]:
    solver = SlowBackend(answer_anything, delay=1.0)
    service = make_service(tmp_path, keyword_store, sandbox, solver=solver)
    with serve_in_thread(create_app(service)) as base:
        yield base, service, solver


def test_a_closed_stream_stops_the_solve_and_the_run_can_be_resumed(served) -> None:
    base, service, solver = served
    body = {"problem": PROBLEM, "stream": True, "run_id": "gone"}
    with httpx.stream("POST", f"{base}/v1/solve", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "step_started":
                break  # the client leaves as the solver starts the first step
    deadline = time.monotonic() + 10
    while service.active_solves:
        assert time.monotonic() < deadline, "the solve kept running after the client left"
        time.sleep(0.05)

    # Stopped at once: the solver's first call (1 s) was cancelled, or never began. (Had
    # the server waited for a failed write to notice, that call would have finished.)
    assert solver.calls == []
    stored = httpx.get(f"{base}/v1/runs/gone").json()
    assert stored["status"] == "interrupted" and stored["plan"] is not None
    resumed = httpx.post(f"{base}/v1/runs/gone/resume", json={}, timeout=30).json()
    assert resumed["status"] == "answered" and resumed["answer"] == "5"
