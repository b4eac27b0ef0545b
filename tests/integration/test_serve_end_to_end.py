"""A real `flux serve` on 127.0.0.1 with the embedded model, used by the official `openai`
client (streaming and not) and by plain HTTP for the event stream and the run store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from flux_agent.templates import load_library
from tests.integration.conftest import _free_port, _stop, wait_for_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "integration-key"
PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"
START_TIMEOUT_S = 300.0  # the first start indexes the library


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve-data")
    log_path = data / "server.log"
    port = _free_port()
    command = [
        sys.executable, "-m", "flux_agent.cli", "serve",
        "--port", str(port), "--max-concurrent", "1", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "FLUX_DATA_DIR": str(data), "FLUX_API_KEY": KEY}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(process, f"{base}/healthz", log_path, START_TIMEOUT_S)
        yield base
    finally:
        _stop(process, grace_s=20)
        # No traceback may have reached the log either, outside deliberate failures.
        assert "Traceback" not in log_path.read_text(errors="replace")


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=300)


def test_ready_and_guarded(server: str) -> None:
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["status"] == "ready"
    assert ready["checks"]["store"] == f"ok: {len(load_library())} templates"
    assert httpx.get(f"{server}/v1/runs").status_code == 401
    assert httpx.get(f"{server}/").text.count("<html") == 1  # the web page


def test_openai_client_gets_the_answer_and_the_trajectory(server: str) -> None:
    completion = client(server).chat.completions.create(
        model="flux", messages=[{"role": "user", "content": PROBLEM}]
    )
    flux = completion.model_extra["flux"]
    ids = {t.id for t in load_library()}
    assert completion.choices[0].message.content == (flux["answer"] or "")
    assert flux["status"] in ("answered", "failed") and flux["steps"]
    assert {step["template_id"] for step in flux["steps"]} <= ids
    assert completion.usage.completion_tokens > 0


def test_openai_client_streams_reasoning_and_then_the_answer(server: str) -> None:
    stream = client(server).chat.completions.create(
        model="flux", messages=[{"role": "user", "content": PROBLEM}], stream=True
    )
    chunks = list(stream)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert reasoning.strip()  # the steps' text streamed before the answer
    assert len(final) == 1
    assert final[0].choices[0].delta.content == (final[0].model_extra["flux"]["answer"] or "")


def test_event_stream_and_run_store(server: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"problem": PROBLEM, "stream": True, "budgets": {"max_steps": 1}}
    events: list[dict] = []
    start = time.perf_counter()
    first_event_s = None
    with httpx.stream(
        "POST", f"{server}/v1/solve", json=body, headers=headers, timeout=300
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                first_event_s = first_event_s or time.perf_counter() - start
    print(f"first event after {first_event_s:.3f} s, {len(events)} events")
    kinds = [event["type"] for event in events]
    assert kinds[0] == "run" and kinds[-1] == "result"
    assert "step_text" in kinds and "plan" in kinds and "check" in kinds
    result = events[-1]["result"]
    assert len(result["plan"]["steps"]) == 1

    stored = httpx.get(f"{server}/v1/runs/{result['run_id']}", headers=headers).json()
    assert stored["answer"] == result["answer"] and stored["steps"] == result["steps"]
    listed = httpx.get(f"{server}/v1/runs", headers=headers).json()["runs"]
    assert listed[0]["run_id"] == result["run_id"]  # newest first
