"""`flux train`: train the navigator from a recipe (structure SFT so far)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flux_agent.cli.common import CLIError, console

train_app = typer.Typer(
    help="Train the navigator from a recipe (training/recipes/*.yaml).",
    no_args_is_help=True,
)

Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a recipe field, as dotted.key=value (value read as YAML); repeatable, "
        "e.g. --set sft.max_steps=10 --set output_dir=runs/try.",
    ),
]


@train_app.command()
def sft(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Structure SFT: teach the navigator the library (template cards, recall, one-step plans).

    Writes the adapter, the merged model, the training data and metrics.jsonl under
    OUTPUT_DIR/sft. Progress and loss are shown as it trains.
    """
    from flux_agent.training.recipe import RecipeError, load_recipe

    try:
        loaded = load_recipe(recipe, overrides or [])
    except RecipeError as exc:
        raise CLIError(str(exc)) from None
    from flux_agent.training.sft import run_sft

    console.print(
        f"[bold]structure SFT[/] {loaded.name}: model {loaded.model.source}"
        f"{' ' + loaded.model.path if loaded.model.path else ''}, "
        f"{'full fine-tune' if loaded.sft.full_finetune else f'LoRA r={loaded.sft.lora.r}'}, "
        f"output {loaded.output_dir / 'sft'}"
    )
    try:
        report = run_sft(loaded)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    console.print(
        f"trained {report.steps} steps on {report.examples} examples in {report.seconds:.0f} s, "
        f"mean loss {report.final_loss:.3f}\n"
        f"adapter: {report.output / 'adapter'}\nmerged model: {report.output / 'merged'}\n"
        f"metrics: {report.output / 'metrics.jsonl'}"
    )
