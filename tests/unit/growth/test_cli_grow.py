"""`flux library grow`, `accept` and `log` through the CLI: help, one-line errors (exit 2),
the log's table and JSON, and a whole pass with the backend scripted at the bottom."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flux_agent.backends
import flux_agent.templates.embeddings
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.cli import app, main
from flux_agent.templates.journal import LogEntry, append_log, read_log
from tests.unit.growth.conftest import VIETA, WORKED, scripted_model

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
EUCLID = "number_theory.gcd.euclidean_algorithm_gcd"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """The three solved problems of the growth tests, as MATH-style JSONL with ids."""
    path = tmp_path / "math-mini.jsonl"
    lines = [
        {"id": w.record, "problem": w.problem, "answer": w.answer, "solution": w.solution}
        for w in WORKED
    ]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if v}) + "\n" for r in lines))
    return path


def flux_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `flux ARGS` through the real entry point (which turns CLIError into exit 2)."""
    monkeypatch.setenv("COLUMNS", "1000")  # so a long message is not wrapped by the console
    monkeypatch.setattr(sys, "argv", ["flux", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_grow_help_explains_itself():
    result = runner.invoke(app, ["library", "grow", "--help"], env=WIDE)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Grow the template library from solved problems" in text
    assert "near-duplicate" in text and "resumes where it stopped" in text
    for option in ("--model", "--limit", "--good", "--dry-run", "--review", "--no-merge"):
        assert option in text
    assert "--prompt" in text and "--library" in text and "--data-dir" in text
    library_help = runner.invoke(app, ["library", "--help"], env=WIDE).output
    assert "grow" in library_help and "accept" in library_help and "log" in library_help


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "{missing}: file not found"),
        (
            ["{dataset}", "--review", "{tmp}/review", "--dry-run"],
            "--review already writes nothing to the library; drop --dry-run",
        ),
        (["{dataset}", "--good", "run-1"], "--good names runs; use it with the source 'runs'"),
        (["{dataset}", "--prompt", "extract-v9"], "no extraction prompt 'extract-v9'"),
        (["runs"], "was checked correct; solve with --expected, or name good runs"),
        (["runs", "--good", "run-1"], "no run 'run-1' in"),
        (["{broken}"], "{broken}, line 2"),
    ],
    ids=[
        "missing-file",
        "review-and-dry-run",
        "good-without-runs",
        "prompt",
        "no-runs",
        "unknown-good-run",
        "bad-line",
    ],
)
def test_grow_refuses_bad_input_in_one_line(monkeypatch, capsys, tmp_path, dataset, args, message):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(dataset.read_text().splitlines()[0] + "\n{not json\n")
    names = {"missing": tmp_path / "nope.jsonl", "dataset": dataset, "tmp": tmp_path}
    names["broken"] = broken
    args = [a.format(**names) for a in args]

    code, _, err = flux_main(
        monkeypatch, capsys, "library", "grow", *args, "--data-dir", str(tmp_path / "data")
    )

    assert code == 2
    assert err.startswith("error: ") and message.format(**names) in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "data" / "growth").exists()  # refused before any work


def test_accept_refuses_a_missing_folder_or_file(monkeypatch, capsys, tmp_path):
    code, _, err = flux_main(monkeypatch, capsys, "library", "accept", str(tmp_path / "none"))
    assert code == 2 and err.strip() == f"error: {tmp_path / 'none'} is not a folder"

    code, _, err = flux_main(
        monkeypatch, capsys, "library", "accept", str(tmp_path), str(tmp_path / "a.yaml")
    )
    assert code == 2 and err.strip() == f"error: {tmp_path / 'a.yaml'} is not a file"


# --- flux library log


def entry(action, template_id, version, record, **fields) -> LogEntry:
    return LogEntry(
        action=action,
        id=template_id,
        version=version,
        path=f"{template_id.split('.')[0]}/{template_id.rsplit('.', 1)[-1]}.yaml",
        by="grow",
        source="math-mini.jsonl",
        record=record,
        model="qwen2.5-0.5b",
        prompt_version="extract-v1",
        **fields,
    )


def test_log_says_when_nothing_was_logged_then_lists_additions(small_library):
    empty = runner.invoke(app, ["library", "log", "--library", str(small_library)], env=WIDE)
    assert empty.exit_code == 0
    assert f"no additions or merges logged in {small_library}" in empty.output

    append_log(small_library, entry("added", EUCLID, 1, "gcd-1", at="2026-11-30T10:00:00+00:00"))
    append_log(small_library, entry("merged", VIETA, 2, "roots-2", at="2026-11-30T11:00:00+00:00"))

    listed = runner.invoke(app, ["library", "log", "--library", str(small_library)], env=WIDE)
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if "2026-11-30" in line]
    assert len(rows) == 2
    newest, oldest = rows
    for cell in ("2026-11-30 11:00:00", "merged (grow)", f"{VIETA} v2", "math-mini.jsonl #roots-2"):
        assert cell in newest
    for cell in ("added (grow)", f"{EUCLID} v1", "#gcd-1", "qwen2.5-0.5b", "extract-v1"):
        assert cell in oldest

    newest_only = ["library", "log", "-n", "1", "--library", str(small_library)]
    one = runner.invoke(app, newest_only, env=WIDE)
    assert VIETA in one.output and EUCLID not in one.output


def test_log_json_prints_one_object_per_line(small_library):
    quiet = runner.invoke(app, ["library", "log", "--json", "--library", str(small_library)])
    assert quiet.exit_code == 0 and quiet.output == ""

    append_log(small_library, entry("added", EUCLID, 1, "gcd-1"))
    append_log(small_library, entry("merged", VIETA, 2, None))

    result = runner.invoke(app, ["library", "log", "--json", "--library", str(small_library)])

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [VIETA, EUCLID]  # newest first
    assert rows[1]["record"] == "gcd-1" and "record" not in rows[0]  # None is left out
    assert all(row["prompt_version"] == "extract-v1" and row["at"] for row in rows)
    assert [LogEntry.model_validate(row) for row in reversed(rows)] == read_log(small_library)


# --- a whole pass through the CLI, with a scripted model


@pytest.fixture
def scripted(monkeypatch, embedder) -> ScriptedBackend:
    """Every backend the CLI builds is one scripted model; the embedder is loaded once."""
    backend = ScriptedBackend(scripted_model())
    monkeypatch.setattr(flux_agent.backends, "build_backend", lambda settings: backend)
    monkeypatch.setattr(
        flux_agent.templates.embeddings, "load_embedder", lambda *args, **kwargs: embedder
    )
    return backend


def test_grow_writes_reports_and_resumes(tmp_path, dataset, small_library, scripted):
    args = ["library", "grow", str(dataset), "--library", str(small_library)]
    args += ["--data-dir", str(tmp_path / "data"), "--max-tokens", "700"]

    result = runner.invoke(app, args, env=WIDE)

    assert result.exit_code == 0, result.output
    text = result.output
    assert f"growing {small_library} (5 templates) from 3 problems" in text
    assert f"✓ added {EUCLID}: new technique" in text
    assert f"✓ merged {VIETA}: into {VIETA} v2" in text
    assert "why rejected: check fails 1, no usable reply 1" in text
    assert len(scripted.calls) == 4 and scripted.calls[0].max_tokens == 700
    (work,) = (tmp_path / "data" / "growth").iterdir()
    assert work.name.startswith("math-mini-")
    assert str(work / "rejected.jsonl") in text.replace("\n", "")
    assert len((work / "rejected.jsonl").read_text().splitlines()) == 2
    entries = read_log(small_library)
    assert [(e.id, e.source, e.record) for e in entries] == [
        (EUCLID, "math-mini.jsonl", "gcd-1"),
        (VIETA, "math-mini.jsonl", "roots-2"),
    ]
    assert entries[0].model == "SmolLM2-135M-Instruct (embedded)"

    again = runner.invoke(app, args, env=WIDE)
    assert again.exit_code == 0, again.output
    assert len(scripted.calls) == 4  # all replies and decisions were on disk
    assert "why rejected: check fails 1, no usable reply 1" in again.output
    assert len(read_log(small_library)) == 2

    logged = runner.invoke(app, ["library", "log", "--library", str(small_library)], env=WIDE)
    assert EUCLID in logged.output and VIETA in logged.output


def test_grow_review_then_accept(tmp_path, dataset, small_library, scripted):
    review = tmp_path / "review"
    args = ["library", "grow", str(dataset), "--library", str(small_library), "--review"]
    args += [str(review), "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(app, args, env=WIDE)

    assert result.exit_code == 0, result.output
    assert f"candidates to review: {review} (then `flux library accept {review}`)" in result.output
    assert f"would be added {EUCLID}" in result.output
    assert len(list(review.glob("*.yaml"))) == 3 and read_log(small_library) == []

    accepted = runner.invoke(
        app, ["library", "accept", str(review), "--library", str(small_library)], env=WIDE
    )

    assert accepted.exit_code == 1  # one candidate is still rejected
    lines = accepted.output.splitlines()
    assert any(line.startswith("✓ 001-euclidean_algorithm_gcd.yaml: added") for line in lines)
    assert any(line.startswith("✓ 003-root_sum_product_shortcut.yaml: merged") for line in lines)
    assert any(
        line.startswith("✗ 002-multiset_permutations.yaml: rejected: check: evaluates to 120")
        for line in lines
    )
    assert [p.name for p in review.glob("*.yaml")] == ["002-multiset_permutations.yaml"]
    assert [(e.action, e.by) for e in read_log(small_library)] == [
        ("added", "accept"),
        ("merged", "accept"),
    ]


def test_a_resumed_pass_names_what_it_had_added(tmp_path, dataset, small_library, scripted):
    args = ["library", "grow", str(dataset), "--library", str(small_library)]
    args += ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, args, env=WIDE).exit_code == 0

    again = runner.invoke(app, args, env=WIDE)

    assert again.exit_code == 0, again.output
    assert "✓ added ?" not in again.output
    assert f"✓ added {EUCLID}" in again.output
