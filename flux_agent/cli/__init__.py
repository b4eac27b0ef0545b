"""The `flux` command: solve problems, manage the template library, evaluate strategies.

    flux solve "What is the sum of the roots of x^2 - 5x + 6 = 0?"
    flux solve --json --solver "http://127.0.0.1:8000/v1?model=qwen" "..."
    flux resume RUN_ID
    flux show RUN_ID
    flux library validate | build | search "query" | stats
    flux eval --dataset FILE --strategies cot,self-consistency,flux --output RUN_DIR
    flux eval report RUN_DIR
    flux serve --port 8080            (HTTP API, OpenAI-compatible facade, web page)
    flux train sft training/recipes/smoke.yaml [--set sft.max_steps=10]
    flux train rl training/recipes/smoke.yaml  (then: flux train compare RECIPE)

Everything runs offline by default: the embedded SmolLM2 model, Chroma in the
user's data folder ($FLUX_DATA_DIR overrides it) and the bundled embedding model.
Each group of commands lives in its own module; this one assembles them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from flux_agent.cli.common import CLIError, errors
from flux_agent.cli.eval import eval_app
from flux_agent.cli.library import library_app
from flux_agent.cli.serve import serve
from flux_agent.cli.solve import resume, show, solve
from flux_agent.cli.train import train_app

__all__ = ["CLIError", "app", "main"]

app = typer.Typer(
    help="Template-guided math reasoning: a navigator plans over thought templates, "
    "a solver carries out each step, sympy checks the steps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(solve)
app.command()(resume)
app.command()(show)
app.command()(serve)
app.add_typer(library_app, name="library")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")


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


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one line and exit 2."""
    try:
        app()
    except CLIError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        hint = (
            "rerun the same command to resume it"
            if sys.argv[1:3] == ["library", "grow"]
            else "a started run can be continued with `flux resume`"
        )
        errors.print(f"[yellow]interrupted[/] ({hint})")
        sys.exit(130)
