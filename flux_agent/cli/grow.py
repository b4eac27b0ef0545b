"""`flux library grow`, `flux library accept`, `flux library log`: growing the library."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flux_agent.cli.common import CLIError, DataDir, console, run_async, settings_from_options
from flux_agent.config import BackendSettings, Settings

if TYPE_CHECKING:  # the heavy modules load inside the commands, after argument checks
    from flux_agent.growth.extract import ExtractionPrompt, Worked
    from flux_agent.growth.grow import GrowSummary
    from flux_agent.templates.writer import LibraryWriter

Library = Annotated[
    Path | None, typer.Option("--library", help="Library folder (default: the shipped one).")
]


def grow(
    source: Annotated[
        str,
        typer.Argument(
            help="A JSONL of solved problems (MATH: problem + solution/answer; GSM8K: question "
            "+ answer), or 'runs' for the run store's solves checked correct."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="The LLM that writes templates: 'embedded', a .gguf path, an http(s)://…/v1 "
            "URL, vllm:MODEL or hf:PATH (as --navigator in `flux solve`).",
        ),
    ] = "embedded",
    limit: Annotated[int | None, typer.Option(help="At most this many problems.", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --limit sample.")] = 0,
    subject: Annotated[list[str] | None, typer.Option(help="Only this subject (repeat).")] = None,
    level: Annotated[list[int] | None, typer.Option(help="Only this level (repeat).")] = None,
    good: Annotated[
        list[str] | None,
        typer.Option(help="With 'runs': also learn from this run id, unchecked (repeat)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be added, merged and rejected.")
    ] = False,
    review: Annotated[
        Path | None,
        typer.Option(
            help="Write nothing to the library: put the candidates in this folder, with their "
            "verdicts, for `flux library accept`."
        ),
    ] = None,
    no_merge: Annotated[
        bool, typer.Option("--no-merge", help="Reject near-duplicates instead of merging.")
    ] = False,
    max_tokens: Annotated[int, typer.Option(help="Tokens per reply, at most.", min=200)] = 1500,
    prompt: Annotated[str, typer.Option(help="Extraction prompt version.")] = "extract-v2",
    library: Library = None,
    data_dir: DataDir = None,
) -> None:
    """Grow the template library from solved problems.

    The model proposes templates for each problem; each must pass the gate (schema, tag
    vocabulary, a `check` equal to its example's answer, no near-duplicate). A
    near-duplicate that adds cues, steps or pitfalls is merged into the template it
    repeats as a new version. Rerunning the same command resumes where it stopped.
    """
    from flux_agent.eval.datasets import DatasetError
    from flux_agent.growth.extract import ExtractionPrompt
    from flux_agent.growth.sources import RUNS, from_dataset, from_runs

    settings = settings_from_options(data_dir, navigator=model, library=library)
    if review is not None and dry_run:
        raise CLIError("--review already writes nothing to the library; drop --dry-run")
    if good and source != RUNS:
        raise CLIError("--good names runs; use it with the source 'runs'")
    try:
        extraction_prompt = ExtractionPrompt.load(prompt)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if source == RUNS:
        problems = run_async(from_runs(settings.runs_path, good=good or [], limit=limit))
        if not problems:
            raise CLIError(
                f"no run in {settings.runs_path} was checked correct; solve with --expected, "
                "or name good runs with --good RUN_ID"
            )
    else:
        try:
            problems = from_dataset(
                source, limit=limit, subjects=subject or [], levels=level or [], seed=seed
            )
        except DatasetError as exc:
            raise CLIError(str(exc)) from None
    work_dir = _work_dir(settings, source, settings.navigator, extraction_prompt.version)
    run_async(
        _grow(
            settings,
            problems,
            extraction_prompt,
            work_dir,
            dry_run,
            review,
            not no_merge,
            max_tokens,
        )
    )


async def _grow(
    settings: Settings,
    problems: list[Worked],
    prompt: ExtractionPrompt,
    work_dir: Path,
    dry_run: bool,
    review: Path | None,
    merge: bool,
    max_tokens: int,
) -> None:
    from flux_agent.backends import build_backend
    from flux_agent.growth.grow import Grower, ProblemOutcome

    writer = _writer(settings, dry_run=dry_run or review is not None, merge=merge)
    backend = build_backend(settings.navigator)
    mode = "dry run: " if dry_run else ("review: " if review else "")
    console.print(
        f"{mode}growing {writer.folder} ({len(writer.admission)} templates) from "
        f"{len(problems)} problems with {settings.navigator.describe()}"
    )
    grower = Grower(
        writer,
        backend,
        model=model_label(settings.navigator),
        work_dir=work_dir,
        prompt=prompt,
        review_dir=review,
        max_tokens=max_tokens,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "[green]{task.fields[added]} added[/] [cyan]{task.fields[merged]} merged[/] "
            "[red]{task.fields[rejected]} rejected[/]"
        ),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("problems", total=len(problems), added=0, merged=0, rejected=0)

            def shown(outcome: ProblemOutcome, summary: GrowSummary) -> None:
                where = f"{outcome.worked.source} #{outcome.worked.record}"
                for decision in outcome.decisions:
                    if decision.outcome == "rejected":
                        name = decision.candidate.id if decision.candidate else "(no template)"
                        reason = _short(decision.reason)
                        progress.console.print(
                            f"  [red]✗[/] rejected {escape(name)} from {escape(where)}: "
                            f"{escape(reason)}"
                        )
                        continue
                    done = "would be " + decision.outcome if writer.dry_run else decision.outcome
                    name = decision.template.id if decision.template else "?"
                    progress.console.print(
                        f"  [green]✓[/] {done} {escape(name)}: {escape(decision.detail)}"
                    )
                if not outcome.decisions:
                    reason = _short(outcome.errors[0] if outcome.errors else "no template")
                    progress.console.print(
                        f"  [red]✗[/] nothing from {escape(where)}: {escape(reason)}"
                    )
                progress.update(
                    task,
                    advance=1,
                    added=summary.added,
                    merged=summary.merged,
                    rejected=summary.rejected + summary.failed_replies,
                )

            summary = await grower.run(problems, on_problem=shown)
    finally:
        await backend.aclose()
    _report(summary, work_dir, writer, review)


def _report(
    summary: GrowSummary, work_dir: Path, writer: LibraryWriter, review: Path | None
) -> None:
    table = Table("problems", "candidates", "added", "merged", "rejected", "no usable reply")
    table.add_row(
        str(summary.problems),
        str(summary.candidates),
        str(summary.added),
        str(summary.merged),
        str(summary.rejected),
        str(summary.failed_replies),
    )
    console.print(table)
    if summary.reasons:
        console.print(
            "why rejected: "
            + ", ".join(f"{reason} {count}" for reason, count in summary.reasons.most_common())
        )
    console.print(
        f"{summary.usage.completion_tokens} tokens generated in {summary.seconds:.0f} s; "
        f"rejected candidates and their reasons: {work_dir / 'rejected.jsonl'}"
    )
    if review is not None:
        console.print(f"candidates to review: {review} (then `flux library accept {review}`)")
    elif writer.dry_run:
        console.print("dry run: nothing was written")


def accept(
    folder: Annotated[Path, typer.Argument(help="A folder written by `grow --review`.")],
    files: Annotated[
        list[Path] | None, typer.Argument(help="Only these files of it (default: all).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide, write nothing.")] = False,
    no_merge: Annotated[
        bool, typer.Option("--no-merge", help="Reject near-duplicates instead of merging.")
    ] = False,
    library: Library = None,
    data_dir: DataDir = None,
) -> None:
    """Add reviewed candidates to the library, through the same gate as `grow`.

    Accepted and merged files move to FOLDER/accepted/; rejected ones stay, with the reason
    printed, to be fixed and accepted again.
    """
    from flux_agent.growth.grow import accept_folder

    if not folder.is_dir():
        raise CLIError(f"{folder} is not a folder")
    for file in files or []:
        if not file.is_file():
            raise CLIError(f"{file} is not a file")
    if not files and not any(folder.glob("*.yaml")):
        raise CLIError(f"no candidate files (*.yaml) in {folder}")
    settings = settings_from_options(data_dir, library=library)
    # A person has read these: the grounding heuristic for machine-written checks is off.
    writer = _writer(settings, dry_run=dry_run, merge=not no_merge, grounded=False)
    results = accept_folder(writer, folder, list(files) if files else None)
    if not results:
        raise CLIError(f"no candidate files (*.yaml) in {folder}")
    for path, decision, message in results:
        outcome = decision.outcome if decision else "unreadable"
        mark = "[green]✓[/]" if outcome in {"added", "merged"} else "[red]✗[/]"
        console.print(f"{mark} {escape(path.name)}: {outcome}: {escape(message)}")
    if any(decision is None or decision.outcome == "rejected" for _, decision, _ in results):
        raise typer.Exit(1)


def log(
    limit: Annotated[
        int, typer.Option("-n", "--limit", help="How many, newest first.", min=1)
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    library: Library = None,
) -> None:
    """Recent additions and merges, with where each came from."""
    from flux_agent.templates import default_library_path
    from flux_agent.templates.journal import read_log

    folder = library or default_library_path()
    entries = list(reversed(read_log(folder)))[:limit]
    if as_json:
        for entry in entries:
            print(entry.model_dump_json(exclude_none=True))
        return
    if not entries:
        console.print(f"no additions or merges logged in {folder}")
        return
    table = Table("when", "what", "template", "from", "model", "prompt")
    for column in table.columns:
        column.overflow = "fold"
    for entry in entries:
        where = entry.source + (f" #{entry.record}" if entry.record else "")
        table.add_row(
            entry.at.replace("T", " ").removesuffix("+00:00"),
            f"{entry.action} ({entry.by})",
            f"{entry.id} v{entry.version}",
            escape(where),
            escape(entry.model or "-"),
            entry.prompt_version or "-",
        )
    console.print(table)


def _short(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def model_label(settings: BackendSettings) -> str:
    """A short name of the model, for provenance."""
    if settings.kind == "llama_cpp":
        return Path(settings.model).name if settings.model else "SmolLM2-135M-Instruct (embedded)"
    if settings.kind == "openai":
        return settings.model or f"server at {settings.base_url}"
    return str(settings.model)


def _writer(
    settings: Settings, *, dry_run: bool, merge: bool, grounded: bool = True
) -> LibraryWriter:
    from flux_agent.templates import LibraryError, StoreError, default_library_path
    from flux_agent.templates.admission import Admission
    from flux_agent.templates.chroma_store import open_store
    from flux_agent.templates.embeddings import load_embedder
    from flux_agent.templates.writer import LibraryWriter
    from flux_agent.verify import default_sandbox

    folder = settings.library_path or default_library_path()
    with console.status("Loading the library and the embedding model…"):
        try:
            embedder = load_embedder(settings.store.embedding_model)
            admission = Admission.load(folder, embedder)
            store = None if dry_run else open_store(settings, embedder)
        except (LibraryError, StoreError) as exc:
            raise CLIError(str(exc)) from None
    return LibraryWriter(
        admission, default_sandbox(), store, merge=merge, grounded=grounded, dry_run=dry_run
    )


def _work_dir(settings: Settings, source: str, backend: BackendSettings, prompt: str) -> Path:
    """Where a pass keeps its replies and decisions: one folder per source, model and prompt,
    so rerunning the same command resumes it."""
    where = str(Path(source).resolve()) if Path(source).exists() else source
    material = json.dumps(
        [where, backend.model_dump(mode="json"), prompt, str(settings.library_path)]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:10]
    return settings.data_dir / "growth" / f"{Path(source).stem}-{digest}"
