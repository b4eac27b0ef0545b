"""The whole agent on real parts: embedded llama.cpp model, Chroma on disk, the `flux` CLI,
and the OpenAI-compatible backend against llama-cpp-python's own server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flux_agent.agent import load_run
from flux_agent.config import AgentSettings, BackendSettings, Settings
from flux_agent.factory import create_agent
from flux_agent.templates import load_library

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"


def flux(*args: str, data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLUX_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "flux_agent.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def test_cli_solves_on_the_embedded_default(tmp_path):
    start = time.perf_counter()
    done = flux("solve", "--json", PROBLEM, data_dir=tmp_path)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    print(f"flux solve --json: {seconds:.1f} s, usage {result['usage']}")

    ids = {t.id for t in load_library()}
    planned = [step["template_id"] for step in result["plan"]["steps"]]
    assert planned and set(planned) <= ids
    executed = [step["index"] for step in result["steps"]]
    assert executed == list(range(len(executed))) and executed
    assert all(step["template_id"] in ids for step in result["steps"])
    assert isinstance(result["answer"], str) and result["answer"]
    for role in ("navigator", "solver"):
        assert result["usage"][role]["completion_tokens"] > 0
        assert result["usage"][role]["calls"] >= 1
    assert result["llm_calls"] == sum(u["calls"] for u in result["usage"].values())

    shown = flux("show", result["run_id"], data_dir=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["answer"] == result["answer"]


def test_cli_live_view_names_templates_and_the_answer(tmp_path):
    done = flux("solve", "--max-steps", "1", PROBLEM, data_dir=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Plan" in done.stdout and "Step 1" in done.stdout and "Answer" in done.stdout
    assert any(t.id in done.stdout for t in load_library())


def test_cli_errors_are_one_clear_line(tmp_path):
    empty = flux("solve", "   ", data_dir=tmp_path)
    assert empty.returncode == 2 and "the problem is empty" in empty.stderr
    assert "Traceback" not in empty.stderr

    missing = flux("solve", "--solver", str(tmp_path / "nope.gguf"), PROBLEM, data_dir=tmp_path)
    assert missing.returncode == 2 and "nope.gguf" in missing.stderr
    assert "Traceback" not in missing.stderr

    unreachable = flux(
        "solve", "--solver", "http://127.0.0.1:9/v1?model=x", "--navigator",
        "http://127.0.0.1:9/v1?model=x", PROBLEM, data_dir=tmp_path,
    )  # fmt: skip
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    unknown = flux("show", "no-such-run", data_dir=tmp_path)
    assert unknown.returncode == 2 and "no run with id" in unknown.stderr


async def test_agent_with_the_solver_behind_an_openai_compatible_server(tmp_path, llama_server):
    settings = Settings(
        data_dir=tmp_path,
        solver=BackendSettings.from_spec(f"{llama_server}?structured_output=llama_cpp"),
        agent=AgentSettings(max_steps=1, max_revisions=0),
    )
    agent = create_agent(settings)
    events: list[dict] = []

    result = await agent.solve(PROBLEM, on_event=events.append)

    assert result.status == "answered" and result.answer
    assert result.usage["solver"].calls >= 2 and result.usage["solver"].completion_tokens > 0
    assert result.usage["navigator"].calls >= 1
    deltas = [e for e in events if e["type"] == "step_text"]
    assert len(deltas) > 1  # streamed token by token, not one block at the end
    assert (await load_run(settings.runs_path, result.run_id)).answer == result.answer
