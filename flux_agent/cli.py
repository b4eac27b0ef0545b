"""The `flux` command: solve problems and manage the template library.

    flux solve "What is the sum of the roots of x^2 - 5x + 6 = 0?"
    flux solve --json --solver "http://127.0.0.1:8000/v1?model=qwen" "..."
    flux resume RUN_ID
    flux show RUN_ID
    flux library validate | build | search "query"

Everything runs offline by default: the embedded SmolLM2 model, Chroma in the
user's data folder ($FLUX_DATA_DIR overrides it) and the bundled embedding model.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from flux_agent.config import AgentSettings, BackendSettings, Settings
from flux_agent.templates.duplicates import NEAR_DUPLICATE_THRESHOLD

app = typer.Typer(
    help="Template-guided math reasoning: a navigator plans over thought templates, "
    "a solver carries out each step, sympy checks the steps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
library_app = typer.Typer(
    help="Validate, index and search the template library.", no_args_is_help=True
)
app.add_typer(library_app, name="library")


def _print_version(value: bool) -> None:
    if value:
        from flux_agent import __version__

        print(f"flux-agent {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Template-guided math reasoning (see `flux COMMAND --help`)."""


console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where runs and the index live (default: $FLUX_DATA_DIR or the user data folder).",
    ),
]
NavigatorSpec = Annotated[
    str,
    typer.Option(
        "--navigator",
        help="Navigator backend: 'embedded', a .gguf path, "
        "'http://host:port/v1?model=NAME[&structured_output=llama_cpp|vllm]', "
        "or 'vllm:MODEL'.",
    ),
]
SolverSpec = Annotated[
    str, typer.Option("--solver", help="Solver backend, same forms as --navigator.")
]


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _settings(
    data_dir: Path | None = None,
    navigator: str = "embedded",
    solver: str = "embedded",
    library: Path | None = None,
    **agent: Any,
) -> Settings:
    try:
        values: dict[str, Any] = {
            "navigator": BackendSettings.from_spec(navigator),
            "solver": BackendSettings.from_spec(solver),
            "agent": AgentSettings(**{k: v for k, v in agent.items() if v is not None}),
            "library_path": library,
        }
        if data_dir is not None:
            values["data_dir"] = data_dir
        return Settings(**values)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _run(coroutine: Any) -> Any:
    from flux_agent.backends.base import BackendError
    from flux_agent.templates import LibraryError, StoreError

    try:
        return asyncio.run(coroutine)
    except (BackendError, StoreError, LibraryError, ValueError) as exc:
        raise CLIError(str(exc)) from None


@app.command()
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
    settings = _settings(
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
    result = _run(_solve(settings, problem, expected, run_id, view))
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


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the result as JSON.")] = False,
    navigator: NavigatorSpec = "embedded",
    solver: SolverSpec = "embedded",
    data_dir: DataDir = None,
) -> None:
    """Continue an interrupted run from its last checkpoint."""
    from flux_agent.agent import RunNotFound

    settings = _settings(data_dir, navigator, solver)
    view = None if as_json else LiveView(console)

    async def go() -> Any:
        agent = _open_agent(settings, quiet=view is None)
        try:
            return await agent.resume_result(run_id, on_event=view.show if view else None)
        except RunNotFound:
            raise CLIError(f"no run with id {run_id!r} in {settings.runs_path}") from None
        finally:
            await _close(agent)

    result = _run(go())
    if as_json:
        print(result.model_dump_json(indent=2))


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    data_dir: DataDir = None,
) -> None:
    """Print a recorded run's result as JSON."""
    from flux_agent.agent.runner import RunNotFound, load_run

    settings = _settings(data_dir)
    try:
        result = asyncio.run(load_run(settings.runs_path, run_id))
    except RunNotFound:
        raise CLIError(f"no run with id {run_id!r} in {settings.runs_path}") from None
    print(result.model_dump_json(indent=2))


@library_app.command("validate")
def library_validate(
    path: Annotated[Path | None, typer.Argument(help="Library folder (default: shipped).")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip evaluating `check`.")] = False,
    no_duplicates: Annotated[
        bool, typer.Option("--no-duplicates", help="Skip near-duplicate detection (no model load).")
    ] = False,
    threshold: Annotated[
        float, typer.Option(help="Cosine similarity at which two templates are near-duplicates.")
    ] = NEAR_DUPLICATE_THRESHOLD,
) -> None:
    """Check every template: schema, placement, unique ids, known tags, that `check` proves
    the example's answer, and that no two templates are near-duplicates."""
    from flux_agent.templates import default_library_path, validate_library
    from flux_agent.templates.embeddings import load_embedder

    folder = path or default_library_path()
    embedder = None
    if not no_duplicates:
        with console.status("Loading the embedding model…"):
            embedder = load_embedder(None)
    with console.status("Validating templates…"):
        report = validate_library(
            folder, check_examples=not no_check, embedder=embedder, threshold=threshold
        )
    for issue in report.issues:
        console.print(f"[red]✗[/] {escape(str(issue))}")
    if report.issues:
        console.print(f"[red]{len(report.issues)} problem(s)[/] in {folder}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {len(report.templates)} templates valid in {folder}")


@library_app.command("stats")
def library_stats(
    path: Annotated[Path | None, typer.Argument(help="Library folder (default: shipped).")] = None,
    closest: Annotated[int, typer.Option(help="How many closest pairs to list.", min=0)] = 10,
) -> None:
    """Counts per domain and tag, average steps, and the closest pairs of templates."""
    from flux_agent.templates import default_library_path, load_library
    from flux_agent.templates.duplicates import closest_pairs
    from flux_agent.templates.embeddings import load_embedder

    templates = load_library(path or default_library_path())
    domains = Counter(t.domain for t in templates)
    tags = Counter(tag for t in templates for tag in t.tags)
    steps = sum(len(t.steps) for t in templates) / len(templates)
    console.print(f"[bold]{len(templates)} templates[/], {steps:.1f} steps on average")
    table = Table("domain", "templates")
    for domain, count in sorted(domains.items()):
        table.add_row(domain, str(count))
    console.print(table)
    console.print("tags: " + ", ".join(f"{tag} {n}" for tag, n in tags.most_common()))
    if closest:
        with console.status("Embedding templates…"):
            pairs = closest_pairs(templates, load_embedder(None), limit=closest)
        pair_table = Table("cosine", "template", "template")
        for column in pair_table.columns[1:]:
            column.overflow = "fold"
        for pair in pairs:
            pair_table.add_row(f"{pair.similarity:.3f}", pair.first, pair.second)
        console.print(pair_table)


@library_app.command("build")
def library_build(
    library: Annotated[Path | None, typer.Option(help="Library folder (default: shipped).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Index the library into the vector store (only new or changed templates are embedded)."""
    from flux_agent.factory import build_index
    from flux_agent.templates import LibraryError

    settings = _settings(data_dir, library=library)
    with console.status("Embedding templates…"):
        try:
            built = build_index(settings)
        except LibraryError as exc:
            raise CLIError(str(exc)) from None
    r = built.report
    console.print(
        f"[green]✓[/] {built.total} templates in {settings.chroma_path}: {len(r.added)} added, "
        f"{len(r.updated)} re-embedded, {len(r.removed)} removed, {r.unchanged} unchanged "
        f"({built.seconds:.1f} s)"
    )


@library_app.command("search")
def library_search(
    query: Annotated[str, typer.Argument(help="A problem or a technique to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many results.", min=1, max=50)] = 5,
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Show the templates closest to a query, with similarity scores."""
    from flux_agent.templates import StoreError
    from flux_agent.templates.chroma_store import open_store

    if not query.strip():
        raise CLIError("the query is empty")
    settings = _settings(data_dir)
    try:
        hits = open_store(settings).search(query, k=k, domain=domain)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    table = Table("score", "id", "name")
    table.columns[1].overflow = "fold"
    for hit in hits:
        table.add_row(f"{hit.score:.3f}", hit.template.id, escape(hit.template.name))
    console.print(table)


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


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one line and exit 2."""
    try:
        app()
    except CLIError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/] (a started run can be continued with `flux resume`)")
        sys.exit(130)


if __name__ == "__main__":
    main()
