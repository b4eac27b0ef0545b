"""`flux library ...`: validate, index, search and summarise the template library."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flux_agent.cli.common import CLIError, DataDir, console, settings_from_options
from flux_agent.cli.grow import accept, grow, log
from flux_agent.templates.duplicates import NEAR_DUPLICATE_THRESHOLD

library_app = typer.Typer(
    help="Validate, index, search and grow the template library.", no_args_is_help=True
)
library_app.command()(grow)
library_app.command()(accept)
library_app.command()(log)


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

    settings = settings_from_options(data_dir, library=library)
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
    settings = settings_from_options(data_dir)
    try:
        hits = open_store(settings).search(query, k=k, domain=domain)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    table = Table("score", "id", "name")
    table.columns[1].overflow = "fold"
    for hit in hits:
        table.add_row(f"{hit.score:.3f}", hit.template.id, escape(hit.template.name))
    console.print(table)
