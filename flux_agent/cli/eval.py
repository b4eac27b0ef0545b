"""`flux eval`: run strategies over a dataset and report accuracy against tokens.

    flux eval --dataset math_train.jsonl --strategies cot,self-consistency,flux \\
        --limit 50 --output runs/math50 --model ~/models/qwen2.5-0.5b.gguf
    flux eval report runs/math50

Results are appended to RUN_DIR/results.jsonl as each (strategy, problem) pair
finishes; rerunning the same command skips the pairs already there. The report
(RUN_DIR/report.md and accuracy_vs_tokens.png) is written at the end of a run
and by `flux eval report`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flux_agent.cli.common import (
    CLIError,
    DataDir,
    console,
    run_async,
    settings_from_options,
)
from flux_agent.config import Settings

eval_app = typer.Typer(
    help="Evaluate strategies (cot, self-consistency, best-of-n, budget-forcing, flux) on a "
    "dataset: `flux eval --dataset FILE --output RUN_DIR`, then `flux eval report RUN_DIR`.",
    invoke_without_command=True,
)

_ALL = "cot,self-consistency,best-of-n,budget-forcing,flux-guided,flux"


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="A JSONL file (MATH, GSM8K or AIME style) or a Hugging Face dataset name "
            "(needs `datasets` and the internet, or a local cache)."
        ),
    ] = None,
    strategies: Annotated[str, typer.Option(help=f"Comma-separated, from: {_ALL}.")] = _ALL,
    output: Annotated[
        Path | None,
        typer.Option(help="Run directory (default: eval-runs/DATASET-TIME). Reuse it to resume."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate this many items (sampled).")] = None,
    subjects: Annotated[
        str | None, typer.Option(help="Only these subjects, comma-separated.")
    ] = None,
    levels: Annotated[str | None, typer.Option(help="Only these levels, e.g. 1,2,3.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for item sampling and sampled strategies.")] = 0,
    split: Annotated[str, typer.Option(help="Split of a Hugging Face dataset.")] = "test",
    model: Annotated[
        str | None,
        typer.Option(help="Backend for every role (overrides --navigator and --solver)."),
    ] = None,
    navigator: Annotated[str, typer.Option(help="Navigator backend (flux only).")] = "embedded",
    solver: Annotated[
        str, typer.Option(help="Solver backend; the baselines run on it.")
    ] = "embedded",
    samples: Annotated[int, typer.Option(help="N for self-consistency and best-of-n.", min=1)] = 4,
    temperature: Annotated[
        float, typer.Option(help="Sampling temperature of self-consistency and best-of-n.")
    ] = 0.7,
    max_tokens: Annotated[
        int, typer.Option(help="Generated tokens per chain-of-thought sample, at most.")
    ] = 1024,
    min_thinking: Annotated[int, typer.Option(help="Budget forcing: least thinking.")] = 256,
    max_thinking: Annotated[int, typer.Option(help="Budget forcing: most thinking.")] = 768,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Problems in flight (default: 1 in-process, 4 for an HTTP server).", min=1
        ),
    ] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Run again the pairs recorded with an error.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Run strategies over a dataset, appending results to RUN_DIR, then write the report."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None:
        raise CLIError("--dataset is required (a JSONL file or a Hugging Face dataset name)")
    from flux_agent.eval.datasets import DatasetError, describe, load_items
    from flux_agent.eval.strategies import STRATEGY_NAMES, StrategyOptions

    names = _split(strategies)
    unknown = [name for name in names if name not in STRATEGY_NAMES]
    if not names or unknown:
        raise CLIError(f"unknown strategies {unknown or '(none)'}; choose from {_ALL}")
    try:
        level_numbers = [int(level) for level in _split(levels)]
    except ValueError:
        raise CLIError(f"--levels takes numbers such as 1,2,3, not {levels!r}") from None
    try:
        items = load_items(
            dataset,
            limit=limit,
            subjects=_split(subjects),
            levels=level_numbers,
            seed=seed,
            split=split,
        )
        options = StrategyOptions(samples, temperature, max_tokens, min_thinking, max_thinking)
    except (DatasetError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if model is not None:
        navigator = solver = model
    settings = settings_from_options(data_dir, navigator, solver)
    run_dir = output or Path("eval-runs") / (
        f"{Path(dataset).stem or 'dataset'}-{datetime.now():%Y%m%d-%H%M%S}"
    )
    console.print(f"[bold]{escape(describe(items))}[/] → {run_dir}")
    if concurrency is None:
        concurrency = 4 if settings.solver.kind == "openai" else 1
    run_async(
        _evaluate(
            settings, dataset, items, names, options, run_dir, seed, concurrency, retry_errors
        )
    )
    _report(run_dir)


async def _evaluate(
    settings: Settings,
    dataset: str,
    items: list[Any],
    names: list[str],
    options: Any,
    run_dir: Path,
    seed: int,
    concurrency: int,
    retry_errors: bool,
) -> None:
    from flux_agent import __version__
    from flux_agent.agent import FluxAgent
    from flux_agent.backends import build_backend
    from flux_agent.eval.records import EvalRunInfo
    from flux_agent.eval.runner import RunDirectoryError, done_pairs, prepare_run_dir, run_eval
    from flux_agent.eval.strategies import build_strategies
    from flux_agent.factory import create_agent
    from flux_agent.verify import default_sandbox

    info = EvalRunInfo(
        dataset=dataset,
        items=len(items),
        strategies=names,
        navigator=settings.navigator.describe(),
        solver=settings.solver.describe(),
        samples=options.samples,
        settings={
            "seed": seed,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
            "min_thinking": options.min_thinking,
            "max_thinking": options.max_thinking,
            "agent": settings.agent.model_dump(),
        },
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        flux_version=__version__,
    )
    try:
        prepare_run_dir(run_dir, info)
    except RunDirectoryError as exc:
        raise CLIError(str(exc)) from None
    already = done_pairs(run_dir, retry_errors=retry_errors)
    todo = sum((name, item.id) not in already for item in items for name in names)
    if todo == 0:
        console.print("[green]✓[/] every (strategy, problem) pair is already in the run")
        return
    if already:
        console.print(f"[dim]resuming: {len(already)} pairs done, {todo} to go[/]")

    agent = None
    if {"flux", "flux-guided"} & set(names):
        with console.status("Loading the template store and models…"):
            agent = create_agent(settings)
        # Trajectories go next to the results, so `flux show --data-dir RUN_DIR` reads them.
        agent = FluxAgent(agent.context, Path(run_dir) / "runs.sqlite")
        solver = agent.context.solver
    else:
        solver = build_backend(settings.solver)
    sandbox = default_sandbox()
    strategies = build_strategies(
        names, solver=solver, sandbox=sandbox, agent=agent, options=options
    )
    progress = _Progress(todo)
    try:
        with progress.bar:
            await run_eval(
                items,
                strategies,
                run_dir,
                sandbox=sandbox,
                concurrency=concurrency,
                seed=seed,
                retry_errors=retry_errors,
                on_record=progress.update,
            )
    finally:
        await solver.aclose()
        if agent is not None and agent.context.navigator is not solver:
            await agent.context.navigator.aclose()


class _Progress:
    """A progress bar with accuracy so far per strategy and generation speed."""

    def __init__(self, total: int) -> None:
        self.bar = Progress(
            TextColumn("[bold]eval[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
        )
        self.task = self.bar.add_task("eval", total=total, stats="")
        self.began = time.perf_counter()
        self.tally: dict[str, list[int]] = {}
        self.tokens = 0
        self.errors = 0

    def update(self, record: Any) -> None:
        right, seen = self.tally.setdefault(record.strategy, [0, 0])
        self.tally[record.strategy] = [right + record.correct, seen + 1]
        self.tokens += record.completion_tokens
        self.errors += record.error is not None
        rate = self.tokens / max(time.perf_counter() - self.began, 1e-9)
        accuracy = " ".join(f"{name} {r}/{n}" for name, (r, n) in self.tally.items())
        errors = f" · [red]{self.errors} errors[/]" if self.errors else ""
        stats = f"{accuracy} · {rate:.0f} tok/s{errors}"
        self.bar.update(self.task, advance=1, stats=stats)
        if not console.is_terminal:
            # No live bar in a log file: one line per result instead.
            task = self.bar.tasks[0]
            mark = "ok" if record.correct else ("error" if record.error else "wrong")
            console.print(
                f"[{task.completed:.0f}/{task.total:.0f}] {record.strategy} {record.item_id} "
                f"{mark} · {record.completion_tokens} tok · {record.wall_s:.1f} s · "
                f"{record.strategy} {self.tally[record.strategy][0]}/"
                f"{self.tally[record.strategy][1]} so far · {rate:.0f} tok/s",
                markup=False,
                soft_wrap=True,
            )


@eval_app.command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `flux eval`.")],
) -> None:
    """Write RUN_DIR/report.md and the accuracy-vs-tokens plot, and print the summary."""
    _report(run_dir)


def _report(run_dir: Path) -> None:
    from flux_agent.eval.report import ReportError, read_run, summarise, write_report

    try:
        paths = write_report(run_dir)
        _, records = read_run(run_dir)
    except ReportError as exc:
        raise CLIError(str(exc)) from None
    table = Table("strategy", "n", "accuracy", "95% CI", "gen tokens", "calls", "s/problem")
    for row in summarise(records):
        table.add_row(
            row.strategy,
            str(row.n),
            f"{100 * row.accuracy:.1f}%",
            f"{100 * row.ci_low:.0f}–{100 * row.ci_high:.0f}%",
            f"{row.completion_tokens:.0f}",
            f"{row.llm_calls:.1f}",
            f"{row.median_wall_s:.1f}",
        )
    console.print(table)
    console.print(f"report: {paths.markdown}\nplot:   {paths.plot}")
