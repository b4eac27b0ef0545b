"""`flux eval` on the embedded model: two strategies, three problems, interrupted and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROBLEMS = [
    {"problem": "What is 7 + 5?", "answer": "12", "subject": "Prealgebra", "level": "Level 1"},
    {"problem": "What is 9 times 3?", "answer": "27", "subject": "Prealgebra", "level": "Level 1"},
    {
        "problem": "What is the sum of the roots of x^2 - 5x + 6 = 0?",
        "answer": "5",
        "subject": "Algebra",
        "level": "Level 2",
    },
]


def test_eval_two_strategies_survives_an_interrupt_and_reports(tmp_path: Path) -> None:
    dataset = tmp_path / "three.jsonl"
    dataset.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "flux_agent.cli", "eval", "--dataset", str(dataset)]
    command += ["--strategies", "cot,flux", "--max-tokens", "96", "--output", str(run_dir)]
    env = {**os.environ, "FLUX_DATA_DIR": str(tmp_path / "data")}
    results = run_dir / "results.jsonl"

    # Interrupt the first run as soon as one result is on disk, as Ctrl-C would.
    # A shell's background jobs ignore SIGINT, and children inherit that (CI may run us
    # so): restore the default so the child's Python turns SIGINT into KeyboardInterrupt.
    first = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 1:
            first.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr.decode()[-2000:]  # interrupted, not finished
    before = results.read_text().splitlines()
    assert 1 <= len(before) < 6

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout
    records = [json.loads(line) for line in results.read_text().splitlines()]
    pairs = [(r["strategy"], r["item_id"]) for r in records]
    assert len(pairs) == len(set(pairs)) == 6  # nothing lost, nothing run twice
    assert records[: len(before)] == [json.loads(line) for line in before]
    for record in records:
        assert record["error"] is None, record
        assert record["completion_tokens"] > 0 and record["llm_calls"] >= 1
    flux_records = [r for r in records if r["strategy"] == "flux"]
    assert all(r["usage"]["navigator"]["calls"] == 1 for r in flux_records)
    report = (run_dir / "report.md").read_text()
    assert "| cot | 3 |" in report and "| flux | 3 |" in report
    plot = run_dir / "accuracy_vs_tokens.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    # The agent's trajectories are kept next to the results.
    assert (run_dir / "runs.sqlite").exists()
