"""Tests for the eval report: reading a run directory, summaries, Wilson CIs, Markdown, plot."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flux_agent.eval.records import (
    RESULTS_FILE,
    RUN_INFO_FILE,
    EvalRecord,
    EvalRunInfo,
    TokenCount,
)
from flux_agent.eval.report import (
    GroupAccuracy,
    ReportError,
    StrategySummary,
    common_item_ids,
    read_run,
    summarise,
    wilson_interval,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# item id -> (subject, level)
ITEMS: dict[str, tuple[str | None, int | None]] = {
    "i1": ("Algebra", 1),
    "i2": ("Algebra", 2),
    "i3": ("Geometry", 2),
    "i4": ("Geometry", None),
}


def _record(
    strategy: str,
    item_id: str,
    correct: bool,
    completion: int,
    *,
    prompt: int = 50,
    calls: int = 1,
    wall: float = 1.0,
    navigator: int = 0,
    error: str | None = None,
) -> EvalRecord:
    subject, level = ITEMS[item_id]
    usage = {"solver": TokenCount(completion_tokens=completion - navigator, calls=calls)}
    if navigator:
        usage["navigator"] = TokenCount(completion_tokens=navigator, calls=1)
    return EvalRecord(
        strategy=strategy,
        item_id=item_id,
        subject=subject,
        level=level,
        expected="1",
        answer=None if error else ("1" if correct else "2"),
        correct=correct,
        usage=usage,
        prompt_tokens=prompt,
        completion_tokens=completion,
        llm_calls=calls,
        wall_s=wall,
        error=error,
    )


def _fixture_records() -> list[EvalRecord]:
    """cot 3/4, sc 1/4 with one error, agent 4/4; tokens and times chosen for exact means."""
    cot = [
        _record("cot", "i1", True, 100, wall=1.0),
        _record("cot", "i2", True, 200, wall=2.0),
        _record("cot", "i3", True, 300, wall=3.0),
        _record("cot", "i4", False, 400, wall=10.0),
    ]
    sc = [
        _record("sc", "i1", True, 800, prompt=400, calls=8, wall=4.0),
        _record("sc", "i2", False, 800, prompt=400, calls=8, wall=4.0),
        _record("sc", "i3", False, 800, prompt=400, calls=8, wall=4.0),
        _record("sc", "i4", False, 800, prompt=400, calls=8, wall=4.0, error="timeout"),
    ]
    agent = [
        _record("agent", item, True, tokens, calls=3, wall=wall, navigator=100)
        for item, tokens, wall in [("i1", 500, 5), ("i2", 500, 6), ("i3", 600, 7), ("i4", 600, 8)]
    ]
    # Interleaved, as a concurrent runner would append them.
    return [r for triple in zip(cot, sc, agent, strict=True) for r in triple]


def _run_info() -> EvalRunInfo:
    return EvalRunInfo(
        dataset="math500-mini",
        items=4,
        strategies=["cot", "sc", "agent"],
        navigator="scripted-nav",
        solver="scripted-solver",
        samples=8,
        settings={"temperature": 0.7},
        started="2025-01-02T03:04:05Z",
        flux_version="0.1.0",
    )


def _write_run(
    run_dir: Path, records: list[EvalRecord], info: EvalRunInfo | None = None, tail: str = ""
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    if info is not None:
        (run_dir / RUN_INFO_FILE).write_text(info.model_dump_json(), encoding="utf-8")
    lines = "".join(r.model_dump_json() + "\n" for r in records)
    (run_dir / RESULTS_FILE).write_text(lines + tail, encoding="utf-8")
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return _write_run(tmp_path / "run", _fixture_records(), _run_info())


def _by_name(summaries: list[StrategySummary]) -> dict[str, StrategySummary]:
    return {s.strategy: s for s in summaries}


# Reference values from inverting the score test numerically (scipy brentq), not this formula.
@pytest.mark.parametrize(
    ("correct", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (5, 10, 0.236593, 0.763407),
        (81, 100, 0.722212, 0.874852),
        (1, 3, 0.061492, 0.792340),
        (3, 4, 0.300642, 0.954413),
        (1, 4, 0.045587, 0.699358),
    ],
)
def test_wilson_interval_matches_reference(correct: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(correct, n)
    assert got_low == pytest.approx(low, abs=1e-6)
    assert got_high == pytest.approx(high, abs=1e-6)
    assert 0.0 <= got_low <= correct / n <= got_high <= 1.0


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(5, 4)
    # A wider quantile gives a wider interval.
    narrow, wide = wilson_interval(5, 10, z=1.0), wilson_interval(5, 10)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_summarise_accuracy_ci_and_means() -> None:
    summaries = summarise(_fixture_records())
    assert [s.strategy for s in summaries] == ["cot", "sc", "agent"]
    cot, sc, agent = summaries

    assert (cot.n, cot.correct, cot.accuracy) == (4, 3, 0.75)
    assert (cot.ci_low, cot.ci_high) == pytest.approx((0.300642, 0.954413), abs=1e-6)
    assert cot.completion_tokens == 250
    assert cot.prompt_tokens == 50
    assert cot.llm_calls == 1
    assert cot.median_wall_s == 2.5
    assert cot.mean_wall_s == 4.0
    assert cot.errors == 0

    assert (sc.correct, sc.accuracy, sc.errors) == (1, 0.25, 1)
    assert (sc.completion_tokens, sc.prompt_tokens, sc.llm_calls) == (800, 400, 8)

    assert (agent.accuracy, agent.ci_high) == (1.0, 1.0)
    assert agent.ci_low == pytest.approx(4 / (4 + 1.959963984540054**2))
    assert agent.completion_tokens == 550
    assert agent.median_wall_s == 6.5
    assert dict(agent.role_completion_tokens) == {"solver": 450, "navigator": 100}
    assert dict(cot.role_completion_tokens) == {"solver": 250}


def test_summarise_breakdowns_by_subject_and_level() -> None:
    cot, sc, agent = summarise(_fixture_records())
    assert cot.by_subject == {
        "Algebra": GroupAccuracy(n=2, correct=2),
        "Geometry": GroupAccuracy(n=2, correct=1),
    }
    assert sc.by_subject["Algebra"].accuracy == 0.5
    assert sc.by_subject["Geometry"].accuracy == 0.0
    assert sc.by_level == {
        1: GroupAccuracy(n=1, correct=1),
        2: GroupAccuracy(n=2, correct=0),
        None: GroupAccuracy(n=1, correct=0),
    }
    assert all(group.accuracy == 1.0 for group in agent.by_level.values())


def test_accuracy_per_1k_tokens() -> None:
    cot, sc, _ = summarise(_fixture_records())
    assert cot.accuracy_per_1k_tokens == pytest.approx(0.75 / 0.25)
    assert sc.accuracy_per_1k_tokens == pytest.approx(0.25 / 0.8)
    free = summarise([_record("free", "i1", True, 0)])[0]
    assert free.accuracy_per_1k_tokens is None


def test_read_run_returns_info_and_records(run_dir: Path) -> None:
    info, records = read_run(run_dir)
    assert info == _run_info()
    assert records == _fixture_records()


def test_read_run_without_run_info(tmp_path: Path) -> None:
    info, records = read_run(_write_run(tmp_path / "run", _fixture_records()))
    assert info is None
    assert len(records) == 12


def test_duplicate_pair_keeps_last(tmp_path: Path) -> None:
    records = [
        _record("cot", "i1", False, 100),
        _record("sc", "i1", True, 800),
        _record("cot", "i2", True, 100),
        _record("cot", "i1", True, 999),
    ]
    _, read = read_run(_write_run(tmp_path / "run", records))
    assert [(r.strategy, r.item_id) for r in read] == [("cot", "i1"), ("sc", "i1"), ("cot", "i2")]
    assert read[0].correct is True and read[0].completion_tokens == 999
    assert [s.strategy for s in summarise(read)] == ["cot", "sc"]
    assert summarise(read)[0].accuracy == 1.0


def test_truncated_last_line_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    partial = _record("cot", "i3", True, 1).model_dump_json()[:40]
    run_dir = _write_run(tmp_path / "run", _fixture_records(), tail=partial)
    with caplog.at_level(logging.WARNING, logger="flux_agent.eval.report"):
        _, records = read_run(run_dir)
    assert len(records) == 12
    assert "truncated line 13" in caplog.text
    report = write_report(run_dir).markdown.read_text(encoding="utf-8")
    assert "Skipped 1 truncated line" in report


def test_a_torn_line_left_by_a_resumed_run_is_skipped(tmp_path: Path) -> None:
    # A killed run tears its last line; the resumed run closes it and writes on.
    run_dir = _write_run(tmp_path / "run", _fixture_records())
    lines = (run_dir / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    torn = lines[2][:30]
    lines = [*lines[:2], torn, *lines[2:]]
    (run_dir / RESULTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, records = read_run(run_dir)
    assert len(records) == 12
    assert "Skipped 1 truncated line" in write_report(run_dir).markdown.read_text()


def test_invalid_record_fields_are_reported(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "run", _fixture_records())
    text = (run_dir / RESULTS_FILE).read_text(encoding="utf-8")
    (run_dir / RESULTS_FILE).write_text('{"strategy": "cot"}\n' + text, encoding="utf-8")
    with pytest.raises(ReportError, match=r"line 1 .*item_id"):
        read_run(run_dir)


def test_missing_or_empty_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        read_run(tmp_path / "nope")
    (tmp_path / "no_results").mkdir()
    with pytest.raises(ReportError, match=r"no results\.jsonl"):
        read_run(tmp_path / "no_results")
    empty = _write_run(tmp_path / "empty", [], tail="\n\n")
    with pytest.raises(ReportError, match="has no records"):
        write_report(empty)


def test_corrupt_run_info_is_an_error(run_dir: Path) -> None:
    (run_dir / RUN_INFO_FILE).write_text('{"dataset": "x"', encoding="utf-8")
    with pytest.raises(ReportError, match=r"run\.json is not a valid run info"):
        read_run(run_dir)


def test_report_markdown_tables(run_dir: Path) -> None:
    paths = write_report(run_dir)
    assert paths.markdown == run_dir / "report.md"
    text = paths.markdown.read_text(encoding="utf-8")
    assert text.startswith("# Evaluation report: math500-mini\n")
    for line in [
        "- Dataset: `math500-mini` (4 items)",
        "- Navigator: `scripted-nav`; solver: `scripted-solver`",
        "- Samples (N for self-consistency and best-of-n): 8",
        "- Settings: `temperature=0.7`",
        "- Started: 2025-01-02T03:04:05Z (flux-agent 0.1.0)",
        "| strategy | n | accuracy | 95% CI | gen tokens/problem | prompt tokens/problem"
        " | calls/problem | median s/problem | errors |",
        "| cot | 4 | 75.0% | 30.1–95.4% | 250 | 50 | 1.0 | 2.50 | 0 |",
        "| sc | 4 | 25.0% | 4.6–69.9% | 800 | 400 | 8.0 | 4.00 | 1 |",
        "| agent | 4 | 100.0% | 51.0–100.0% | 550 | 50 | 3.0 | 6.50 | 0 |",
        "| role | cot | sc | agent |",
        "| solver | 250 | 800 | 450 |",
        "| navigator | 0 | 0 | 100 |",
        "| subject | cot | sc | agent |",
        "| Algebra | 100.0% (2) | 50.0% (2) | 100.0% (2) |",
        "| Geometry | 50.0% (2) | 0.0% (2) | 100.0% (2) |",
        "| level | cot | sc | agent |",
        "| 1 | 100.0% (1) | 100.0% (1) | 100.0% (1) |",
        "| 2 | 100.0% (2) | 0.0% (2) | 100.0% (2) |",
        "| unknown | 0.0% (1) | 0.0% (1) | 100.0% (1) |",
        "All strategies have results for the same 4 items.",
        "![](accuracy_vs_tokens.png)",
    ]:
        assert line in text.splitlines(), line
    # Levels sort numerically with unknown last.
    assert text.index("| 1 | 100.0%") < text.index("| 2 | 100.0%") < text.index("| unknown |")
    assert text.endswith(
        "Produced by `flux_agent.eval.report.write_report` from `results.jsonl` (12 records)"
        " and `run.json`.\n"
    )


def test_report_without_run_info_uses_directory_name(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "my-run", _fixture_records())
    text = write_report(run_dir).markdown.read_text(encoding="utf-8")
    assert text.startswith("# Evaluation report: my-run\n")
    assert "## Run" not in text
    assert text.endswith("from `results.jsonl` (12 records).\n")
    assert "| cot | 4 | 75.0% |" in text


def test_report_plot_is_a_png(run_dir: Path) -> None:
    plot = write_report(run_dir).plot
    assert plot == run_dir / "accuracy_vs_tokens.png"
    data = plot.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 20_000
    # IHDR width and height: about 1000x650 px.
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 650)


def test_different_item_sets_get_a_common_items_table(tmp_path: Path) -> None:
    # An interrupted run: agent only finished i1 and i2, sc missed i4.
    records = [
        r
        for r in _fixture_records()
        if not (r.strategy == "agent" and r.item_id in {"i3", "i4"})
        and not (r.strategy == "sc" and r.item_id == "i4")
    ]
    assert common_item_ids(records) == {"i1", "i2"}
    text = write_report(_write_run(tmp_path / "run", records)).markdown.read_text("utf-8")
    lines = text.splitlines()
    assert (
        "Strategies have results for different items (`cot` 4, `sc` 3, `agent` 2); 2 are common."
        in lines
    )
    common = lines[lines.index("## Common items") :]
    # Main table keeps each strategy's own records; the common table uses i1 and i2 only.
    assert "| cot | 4 | 75.0% | 30.1–95.4% | 250 | 50 | 1.0 | 2.50 | 0 |" in lines
    assert "| cot | 2 | 100.0% | 34.2–100.0% | 150 | 50 | 1.0 | 1.50 | 0 |" in common
    assert "| sc | 2 | 50.0% | 9.5–90.5% | 800 | 400 | 8.0 | 4.00 | 0 |" in common
    assert "| agent | 2 | 100.0% | 34.2–100.0% | 500 | 50 | 3.0 | 5.50 | 0 |" in common


def test_common_items_with_no_overlap(tmp_path: Path) -> None:
    records = [_record("cot", "i1", True, 10), _record("sc", "i2", True, 10)]
    assert common_item_ids(records) == set()
    text = write_report(_write_run(tmp_path / "run", records)).markdown.read_text("utf-8")
    assert "(`cot` 1, `sc` 1); 0 are common." in text
    assert "On the common items only" not in text
