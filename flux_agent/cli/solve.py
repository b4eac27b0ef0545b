"""`flux solve`, `flux resume`, `flux show`: one problem at a time, the trajectory shown live."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from flux_agent.cli.common import (
    CLIError,
    DataDir,
    NavigatorSpec,
    SolverSpec,
    console,
    run_async,
    settings_from_options,
)
from flux_agent.config import Settings


def solve(
    problem: Annotated[str, typer.Argument(help="The problem text ('-' reads it from stdin).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the SolveResult as JSON.")
    ] = False,
    navigator: NavigatorSpec = "embedded",
    solver: SolverSpec = "embedded",
    expected: Annotated[str | None, typer.Option(help="Reference answer to score against.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Steps in a plan, at most.")] = None,
    max_revisions: Annotated[int | None, typer.Option(help="Plan revisions, at most.")] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", help="Generated tokens for the whole solve, at most."),
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Use this run id (default: random).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Solve a problem, showing the template trajectory live."""
    if problem == "-":
        problem = sys.stdin.read()
    if not problem.strip():
        raise CLIError("the problem is empty")
    settings = settings_from_options(
        data_dir,
        navigator,
        solver,
        max_steps=max_steps,
        max_revisions=max_revisions,
        max_total_tokens=max_tokens,
    )
    view = None if as_json else LiveView(console)
    if view:
        view.intro(settings)
    result = run_async(_solve(settings, problem, expected, run_id, view))
    if as_json:
        print(result.model_dump_json(indent=2))
    if result.status != "answered":
        raise typer.Exit(1)


async def _solve(
    settings: Settings,
    problem: str,
    expected: str | None,
    run_id: str | None,
    view: LiveView | None,
) -> Any:
    agent = _open_agent(settings, quiet=view is None)
    try:
        return await agent.solve(
            problem, run_id=run_id, expected=expected, on_event=view.show if view else None
        )
    finally:
        await _close(agent)


def _open_agent(settings: Settings, *, quiet: bool) -> Any:
    from flux_agent.factory import create_agent

    if quiet:
        return create_agent(settings)
    # Loading the embedding model (and indexing on first use) takes seconds: say so.
    with console.status("Loading the template store and models…"):
        return create_agent(settings)


async def _close(agent: Any) -> None:
    await agent.context.navigator.aclose()
    if agent.context.solver is not agent.context.navigator:
        await agent.context.solver.aclose()


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the result as JSON.")] = False,
    navigator: NavigatorSpec = "embedded",
    solver: SolverSpec = "embedded",
    data_dir: DataDir = None,
) -> None:
    """Continue an interrupted run from its last checkpoint."""
    from flux_agent.agent import RunNotFound

    settings = settings_from_options(data_dir, navigator, solver)
    view = None if as_json else LiveView(console)

    async def go() -> Any:
        agent = _open_agent(settings, quiet=view is None)
        try:
            return await agent.resume_result(run_id, on_event=view.show if view else None)
        except RunNotFound:
            raise CLIError(f"no run with id {run_id!r} in {settings.runs_path}") from None
        finally:
            await _close(agent)

    result = run_async(go())
    if as_json:
        print(result.model_dump_json(indent=2))


def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    data_dir: DataDir = None,
) -> None:
    """Print a recorded run's result as JSON."""
    from flux_agent.agent.runner import RunNotFound, load_run

    settings = settings_from_options(data_dir)
    try:
        result = asyncio.run(load_run(settings.runs_path, run_id))
    except RunNotFound:
        raise CLIError(f"no run with id {run_id!r} in {settings.runs_path}") from None
    print(result.model_dump_json(indent=2))


class LiveView:
    """Prints a solve's events as they arrive."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.streaming = False

    def intro(self, settings: Settings) -> None:
        self.out.print(
            f"[dim]navigator: {settings.navigator.describe()} · "
            f"solver: {settings.solver.describe()}[/]"
        )

    def show(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind != "step_text" and self.streaming:
            self.out.print()
            self.streaming = False
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _on_run(self, event: dict[str, Any]) -> None:
        verb = "Resuming" if event["resumed"] else "Run"
        self.out.print(f"[dim]{verb} {event['run_id']}[/]")

    def _on_candidates(self, event: dict[str, Any]) -> None:
        names = ", ".join(f"{t['id']} ({t['score']:.2f})" for t in event["templates"])
        self.out.print(f"[dim]retrieved: {escape(names)}[/]")

    def _on_plan(self, event: dict[str, Any]) -> None:
        title = "Plan (fallback)" if event["fallback"] else "Plan"
        lines = [
            f"{i}. [cyan]{s['template_id']}[/] — {escape(s['goal'])}"
            for i, s in enumerate(event["plan"]["steps"], 1)
        ]
        self.out.print(Panel("\n".join(lines), title=title, expand=False))

    def _on_step_started(self, event: dict[str, Any]) -> None:
        again = f" (attempt {event['attempt']})" if event["attempt"] > 1 else ""
        self.out.print(
            f"[bold]Step {event['step'] + 1}[/] [cyan]{event['template_id']}[/]"
            f"{again}: {escape(event['goal'])}"
        )

    def _on_step_text(self, event: dict[str, Any]) -> None:
        self.out.print(f"[dim]{escape(event['delta'])}[/]", end="")
        self.streaming = True

    def _on_step_result(self, event: dict[str, Any]) -> None:
        formula = f"  [dim]= {escape(event['expression'])}[/]" if event["expression"] else ""
        self.out.print(f"  result: {escape(event['result'])}{formula}")

    def _on_check(self, event: dict[str, Any]) -> None:
        marks = {"verified": "[green]✓ verified[/]", "unchecked": "[yellow]· unchecked[/]"}
        mark = marks.get(event["status"], f"[red]✗ {event['status']}[/]")
        self.out.print(f"  {mark} {escape(event['detail'])}")

    def _on_revision(self, event: dict[str, Any]) -> None:
        if event["failed"]:
            self.out.print(
                f"[yellow]↻ revision after step {event['after_step'] + 1} failed; "
                "keeping the plan[/]"
            )
            return
        steps = "; ".join(f"{s['template_id']}: {s['goal']}" for s in event["new_steps"])
        self.out.print(
            f"[yellow]↻ revised plan from step {event['after_step'] + 1}:[/] {escape(steps)}"
        )

    def _on_answer(self, event: dict[str, Any]) -> None:
        verified = "[green]verified[/]" if event["verified"] else "[yellow]not verified[/]"
        detail = escape(event["verification"])
        body = f"[bold]{escape(str(event['answer']))}[/]  ({verified}: {detail})"
        if event.get("correct") is not None:
            body += "\n" + (
                "[green]matches the expected answer[/]"
                if event["correct"]
                else "[red]differs from the expected answer[/]"
            )
        self.out.print(Panel(body, title="Answer", expand=False))

    def _on_result(self, event: dict[str, Any]) -> None:
        result = event["result"]
        usage = ", ".join(
            f"{role} {u.prompt_tokens}→{u.completion_tokens} tok/{u.calls} calls"
            for role, u in result.usage.items()
        )
        self.out.print(
            f"[dim]{usage} · {result.timings.get('total', 0):.1f} s · run {result.run_id}[/]"
        )
        for failure in result.failures:
            self.out.print(f"[yellow]note:[/] {escape(failure)}")
