"""Summarise an evaluation run directory into `report.md` and an accuracy-vs-tokens plot.

Reads only `run.json` and `results.jsonl` (see `flux_agent.eval.records`), so a
report can be rebuilt at any time, also for a run that is still going or was
interrupted: `write_report(run_dir)`.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from flux_agent.eval.records import RESULTS_FILE, RUN_INFO_FILE, EvalRecord, EvalRunInfo

logger = logging.getLogger(__name__)
_K = TypeVar("_K", bound=Hashable)

REPORT_FILE = "report.md"
PLOT_FILE = "accuracy_vs_tokens.png"
# Two-sided 95% normal quantile, to full precision so the interval matches references.
_Z95 = 1.959963984540054


class ReportError(ValueError):
    """A run directory is missing, empty or holds a file that cannot be read."""


@dataclass(frozen=True)
class GroupAccuracy:
    """How one strategy did on one group of items (a subject or a level)."""

    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        """Fraction correct, 0.0 to 1.0."""
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class StrategySummary:
    """Accuracy and cost of one strategy over its records; means are per problem."""

    strategy: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    completion_tokens: float
    prompt_tokens: float
    llm_calls: float
    median_wall_s: float
    mean_wall_s: float
    errors: int
    role_completion_tokens: Mapping[str, float]
    by_subject: Mapping[str | None, GroupAccuracy]
    by_level: Mapping[int | None, GroupAccuracy]

    @property
    def accuracy_per_1k_tokens(self) -> float | None:
        """Accuracy per 1,000 generated tokens a problem (= solved per 1,000); None if 0 tokens."""
        if self.completion_tokens <= 0:
            return None
        return self.accuracy / (self.completion_tokens / 1000)


@dataclass(frozen=True)
class ReportPaths:
    """Files `write_report` wrote into the run directory."""

    markdown: Path
    plot: Path


def wilson_interval(correct: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at
    0/n and n/n, which small eval runs hit often.

    Args:
        correct: Successes, 0 <= correct <= n.
        n: Trials; with no trials the interval is the whole of [0, 1].
        z: Normal quantile; the default gives a 95% interval.

    Returns:
        (low, high) as fractions.
    """
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n, got {correct}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0/n and n/n the bound is exactly 0 or 1; rounding would otherwise miss it.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def read_run(run_dir: Path) -> tuple[EvalRunInfo | None, list[EvalRecord]]:
    """Read a run directory's metadata (optional) and records.

    A record repeated for the same (strategy, item_id) keeps its last version,
    since a resumed run may rewrite a pair. An unreadable last line is taken to
    be a write cut short by a killed run: it is skipped with a logged warning.

    Raises:
        ReportError: The directory or `results.jsonl` is missing, `run.json` or a
            line other than the last is invalid, or no record is left.
    """
    info, records, _ = _read_run(Path(run_dir))
    return info, records


def summarise(records: Iterable[EvalRecord]) -> list[StrategySummary]:
    """Summarise records per strategy, strategies in the order first seen.

    Errored records count as attempted and wrong, so a strategy that crashes
    is not flattered by a smaller denominator.
    """
    grouped: dict[str, list[EvalRecord]] = {}
    for record in records:
        grouped.setdefault(record.strategy, []).append(record)
    return [_summarise_strategy(name, group) for name, group in grouped.items()]


def common_item_ids(records: Iterable[EvalRecord]) -> set[str]:
    """Items that every strategy in `records` has a result for."""
    per_strategy: dict[str, set[str]] = {}
    for record in records:
        per_strategy.setdefault(record.strategy, set()).add(record.item_id)
    return set.intersection(*per_strategy.values()) if per_strategy else set()


def write_report(run_dir: Path) -> ReportPaths:
    """Write `report.md` and `accuracy_vs_tokens.png` into a run directory.

    Raises:
        ReportError: As `read_run`.
    """
    run_dir = Path(run_dir)
    info, records, skipped = _read_run(run_dir)
    summaries = summarise(records)
    dataset = info.dataset if info else run_dir.name
    n_items = info.items if info else len({r.item_id for r in records})
    paths = ReportPaths(markdown=run_dir / REPORT_FILE, plot=run_dir / PLOT_FILE)
    name = Path(dataset).name if ("/" in dataset and Path(dataset).exists()) else dataset
    _plot_accuracy_vs_tokens(summaries, f"{name} (n={n_items})", paths.plot)
    markdown = _render_markdown(dataset, info, records, skipped)
    paths.markdown.write_text(markdown, encoding="utf-8")
    return paths


def _read_run(run_dir: Path) -> tuple[EvalRunInfo | None, list[EvalRecord], int]:
    if not run_dir.is_dir():
        raise ReportError(f"run directory {run_dir} does not exist")
    info = None
    info_path = run_dir / RUN_INFO_FILE
    if info_path.exists():
        try:
            info = EvalRunInfo.model_validate_json(info_path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ReportError(f"{info_path} is not a valid run info: {_first_error(exc)}") from None
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise ReportError(f"no {RESULTS_FILE} in {run_dir}")
    # A write cut mid-character must not make the whole file unreadable.
    lines = results_path.read_bytes().decode("utf-8", errors="replace").splitlines()
    latest: dict[tuple[str, str], EvalRecord] = {}
    skipped = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            # Not JSON at all: a line torn when a run was killed. The runner closes it
            # with a newline and reruns that pair, so it can sit anywhere in the file.
            logger.warning("skipping truncated line %d of %s", index + 1, results_path)
            skipped += 1
            continue
        try:
            record = EvalRecord.model_validate(data)
        except ValidationError as exc:
            raise ReportError(
                f"{results_path} line {index + 1} is not a valid record: {_first_error(exc)}"
            ) from None
        # A resumed run may rewrite a pair; the newer result replaces it in place.
        latest[(record.strategy, record.item_id)] = record
    if not latest:
        raise ReportError(f"{results_path} has no records")
    return info, list(latest.values()), skipped


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(map(str, error['loc'])) or 'value'}: {error['msg']}"


def _summarise_strategy(name: str, records: Sequence[EvalRecord]) -> StrategySummary:
    n = len(records)
    correct = sum(r.correct for r in records)
    low, high = wilson_interval(correct, n)
    roles: dict[str, int] = {}
    for record in records:
        for role, count in record.usage.items():
            roles[role] = roles.get(role, 0) + count.completion_tokens
    walls = [r.wall_s for r in records]
    return StrategySummary(
        strategy=name,
        n=n,
        correct=correct,
        accuracy=correct / n,
        ci_low=low,
        ci_high=high,
        completion_tokens=sum(r.completion_tokens for r in records) / n,
        prompt_tokens=sum(r.prompt_tokens for r in records) / n,
        llm_calls=sum(r.llm_calls for r in records) / n,
        median_wall_s=statistics.median(walls),
        mean_wall_s=statistics.fmean(walls),
        errors=sum(r.error is not None for r in records),
        role_completion_tokens={role: total / n for role, total in roles.items()},
        by_subject=_group_accuracy(records, lambda r: r.subject),
        by_level=_group_accuracy(records, lambda r: r.level),
    )


def _group_accuracy(
    records: Sequence[EvalRecord], key: Callable[[EvalRecord], _K]
) -> dict[_K, GroupAccuracy]:
    outcomes: dict[_K, list[bool]] = {}
    for record in records:
        outcomes.setdefault(key(record), []).append(record.correct)
    return {group: GroupAccuracy(len(o), sum(o)) for group, o in outcomes.items()}


def _render_markdown(
    dataset: str, info: EvalRunInfo | None, records: Sequence[EvalRecord], skipped: int
) -> str:
    summaries = summarise(records)
    out = [f"# Evaluation report: {dataset}", ""]
    if info:
        settings = ", ".join(f"`{k}={v}`" for k, v in sorted(info.settings.items())) or "none"
        out += [
            "## Run",
            "",
            f"- Dataset: `{info.dataset}` ({info.items} items)",
            f"- Strategies: {', '.join(f'`{s}`' for s in info.strategies)}",
            f"- Navigator: `{info.navigator}`; solver: `{info.solver}`",
            f"- Samples (N for self-consistency and best-of-n): {info.samples}",
            f"- Settings: {settings}",
            f"- Started: {info.started} (flux-agent {info.flux_version})",
            "",
        ]
    if skipped:
        out += [f"> Skipped {skipped} truncated line at the end of `{RESULTS_FILE}`.", ""]
    out += ["## Results", "", *_main_table(summaries), ""]
    out += ["Errored items count as wrong. 95% CI is the Wilson score interval.", ""]
    roles = list(dict.fromkeys(role for s in summaries for role in s.role_completion_tokens))
    if roles:
        out += ["Generated tokens per problem, by role:", ""]
        out += _by_strategy_table(
            "role", roles, summaries, lambda s, r: f"{s.role_completion_tokens.get(r, 0.0):.0f}"
        )
        out.append("")
    out += ["## Accuracy vs. generated tokens", "", f"![]({PLOT_FILE})", ""]
    out += ["## By subject", "", *_group_table("subject", summaries, "by_subject"), ""]
    out += ["## By level", "", *_group_table("level", summaries, "by_level"), ""]
    out += ["## Common items", "", *_common_items_section(records), ""]
    sources = f"`{RESULTS_FILE}` ({len(records)} records)"
    sources += f" and `{RUN_INFO_FILE}`" if info else ""
    out += ["---", "", f"Produced by `flux_agent.eval.report.write_report` from {sources}.", ""]
    return "\n".join(out)


def _main_table(summaries: Iterable[StrategySummary]) -> list[str]:
    rows = [[cell(s) for _, cell in _MAIN_COLUMNS] for s in summaries]
    return _table([name for name, _ in _MAIN_COLUMNS], rows)


def _group_table(label: str, summaries: Sequence[StrategySummary], field: str) -> list[str]:
    groups = dict.fromkeys(group for s in summaries for group in getattr(s, field))
    # None (no subject or level recorded) sorts last, without comparing it to str or int.
    ordered = sorted(groups, key=lambda g: (g is None, g if g is not None else 0))

    def cell(summary: StrategySummary, group: str | int | None) -> str:
        acc = getattr(summary, field).get(group)
        return f"{_percent(acc.accuracy)} ({acc.n})" if acc else "—"

    return _by_strategy_table(label, ordered, summaries, cell)


def _by_strategy_table(
    label: str,
    keys: Sequence[_K],
    summaries: Sequence[StrategySummary],
    cell: Callable[[StrategySummary, _K], str],
) -> list[str]:
    header = [label, *(s.strategy for s in summaries)]
    rows = [["unknown" if k is None else str(k), *(cell(s, k) for s in summaries)] for k in keys]
    return _table(header, rows)


def _common_items_section(records: Sequence[EvalRecord]) -> list[str]:
    common, summaries = common_item_ids(records), summarise(records)
    # Records are unique per (strategy, item), so equal sizes mean equal item sets.
    if all(s.n == len(common) for s in summaries):
        return [f"All strategies have results for the same {len(common)} items."]
    counts = ", ".join(f"`{s.strategy}` {s.n}" for s in summaries)
    lines = [f"Strategies have results for different items ({counts}); {len(common)} are common."]
    if not common:
        return lines
    lines += ["On the common items only, for a like-for-like comparison:", ""]
    return lines + _main_table(summarise(r for r in records if r.item_id in common))


_MAIN_COLUMNS: tuple[tuple[str, Callable[[StrategySummary], str]], ...] = (
    ("strategy", lambda s: s.strategy),
    ("n", lambda s: str(s.n)),
    ("accuracy", lambda s: _percent(s.accuracy)),
    ("95% CI", lambda s: f"{s.ci_low * 100:.1f}–{s.ci_high * 100:.1f}%"),
    ("gen tokens/problem", lambda s: f"{s.completion_tokens:.0f}"),
    ("prompt tokens/problem", lambda s: f"{s.prompt_tokens:.0f}"),
    ("calls/problem", lambda s: f"{s.llm_calls:.1f}"),
    ("median s/problem", lambda s: _seconds(s.median_wall_s)),
    ("errors", lambda s: str(s.errors)),
)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    # Text in the first column, numbers in the rest: right-aligned.
    align = ["---", *["---:"] * (len(header) - 1)]
    # A "|" inside a cell would end it early.
    return [
        "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
        for row in [header, align, *rows]
    ]


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _plot_accuracy_vs_tokens(summaries: Sequence[StrategySummary], title: str, path: Path) -> None:
    # A bare Figure saves to PNG through Agg by itself: no pyplot, so no global backend
    # or figure registry to leak between calls.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1000 / 120, 650 / 120), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    # A legend, not labels at the points: strategies often sit at nearly the same
    # cost and accuracy, where labels would collide; distinct markers keep
    # overlapping points apart.
    for i, s in enumerate(summaries):
        y, low, high = s.accuracy * 100, s.ci_low * 100, s.ci_high * 100
        ax.errorbar(
            s.completion_tokens,
            y,
            yerr=[[y - low], [high - y]],
            fmt=_MARKERS[i % len(_MARKERS)],
            color=f"C{i % 10}",
            markersize=9,
            capsize=5,
            elinewidth=1.5,
            alpha=0.9,
            label=f"{s.strategy}: {y:.1f}% at {s.completion_tokens:.0f} tokens",
        )
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    max_x = max((s.completion_tokens for s in summaries), default=0.0)
    ax.set_xlim(0, max_x * 1.2 if max_x > 0 else 1)
    # Room above the highest interval for the legend, on a scale that still shows 0.
    top = max((s.ci_high * 100 for s in summaries), default=100.0)
    ax.set_ylim(-2, min(105.0, max(40.0, top * 1.6 + 5)))
    ax.set_xlabel("mean generated (completion) tokens per problem")
    ax.set_ylabel("accuracy (%), 95% Wilson CI")
    ax.set_title(f"Accuracy vs. generated tokens — {title}")
    ax.grid(True, alpha=0.35)
    fig.savefig(path, dpi=120)
