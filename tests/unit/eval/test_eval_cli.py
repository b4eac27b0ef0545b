"""`flux eval` and `flux eval report` through the CLI, with the backend scripted at the bottom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flux_agent.backends
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.cli import CLIError, app

runner = CliRunner()

PROBLEMS = [
    {"problem": "What is 2 + 3?", "answer": "5", "subject": "Prealgebra", "level": "Level 1"},
    {"problem": "What is 4 * 6?", "answer": "24", "subject": "Prealgebra", "level": "Level 1"},
    {"problem": "Solve x + 1 = 3.", "answer": "2", "subject": "Algebra", "level": "Level 2"},
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(problem) + "\n" for problem in PROBLEMS))
    return path


@pytest.fixture
def scripted_solver(monkeypatch) -> ScriptedBackend:
    """Every backend the CLI builds is this one: right on two problems, wrong on x + 1 = 3."""
    answers = {"2 + 3": "\\boxed{5}", "4 * 6": "4 * 6 = 24, \\boxed{24}", "x + 1": "\\boxed{3}"}
    backend = ScriptedBackend(answers)
    monkeypatch.setattr(flux_agent.backends, "build_backend", lambda settings: backend)
    return backend


def test_eval_runs_writes_results_and_a_report(tmp_path, dataset, scripted_solver):
    run_dir = tmp_path / "run"
    args = ["eval", "--dataset", str(dataset), "--strategies", "cot,self-consistency"]
    args += ["--samples", "2", "--output", str(run_dir)]

    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert sum(r["correct"] for r in records if r["strategy"] == "cot") == 2
    assert len(scripted_solver.calls) == 3 + 3 * 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["strategies"] == ["cot", "self-consistency"] and info["samples"] == 2
    report = (run_dir / "report.md").read_text()
    assert "| cot | 3 | 66.7% |" in report
    assert (run_dir / "accuracy_vs_tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "66.7%" in result.output  # the summary table

    # Running the same command again finds nothing to do and calls no model.
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "already in the run" in again.output
    assert len(scripted_solver.calls) == 9


def test_report_command_rewrites_the_report(tmp_path, dataset, scripted_solver):
    run_dir = tmp_path / "run"
    runner.invoke(
        app, ["eval", "--dataset", str(dataset), "--strategies", "cot", "--output", str(run_dir)]
    )
    (run_dir / "report.md").unlink()

    result = runner.invoke(app, ["eval", "report", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert (run_dir / "report.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval"], "--dataset is required"),
        (["eval", "--dataset", "missing.jsonl"], "not found"),
        (["eval", "--dataset", "DATASET", "--strategies", "cot,magic"], "unknown strategies"),
        (["eval", "--dataset", "DATASET", "--levels", "one"], "--levels"),
        (["eval", "--dataset", "DATASET", "--subjects", "Astrology"], "Astrology"),
        (["eval", "--dataset", "DATASET", "--limit", "0"], "limit"),
        (["eval", "report", "RUN_DIR/nothing-here"], "nothing-here"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, dataset, args, message):
    args = [arg.replace("DATASET", str(dataset)).replace("RUN_DIR", str(tmp_path)) for arg in args]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, CLIError), result.output
    assert message in str(result.exception)


def test_budget_forcing_on_a_chat_only_server_is_refused_before_running(
    tmp_path, dataset, scripted_solver
):
    scripted_solver.supports_prefill = False
    result = runner.invoke(
        app,
        [
            "eval",
            "--dataset",
            str(dataset),
            "--strategies",
            "budget-forcing",
            "--output",
            str(tmp_path / "run"),
        ],
    )
    assert isinstance(result.exception, CLIError)
    assert "continues a partial reply" in str(result.exception)
    assert scripted_solver.calls == []
