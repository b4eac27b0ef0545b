"""`flux train`: train the navigator from a recipe: structure SFT, RL rounds, before/after."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


def _recipe(path: Path, overrides: list[str] | None) -> Any:
    from flux_agent.training.recipe import RecipeError, load_recipe

    try:
        return load_recipe(path, overrides or [])
    except RecipeError as exc:
        raise CLIError(str(exc)) from None


@train_app.command()
def sft(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Structure SFT: teach the navigator the library (template cards, recall, one-step plans).

    Writes the adapter, the merged model, the training data and metrics.jsonl under
    OUTPUT_DIR/sft. Progress and loss are shown as it trains.
    """
    loaded = _recipe(recipe, overrides)
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


@train_app.command()
def rl(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Trajectory optimisation: rounds of plan rollouts, rewards, and DPO on preference pairs
    (or GRPO with the same reward online: --set rl.algorithm=grpo).

    Each round samples rl.samples plans per training problem from the current navigator,
    follows each with the solver on the problem and its rl.neighbours nearest neighbours,
    rewards verified accuracy (plus valid structure and real templates), and trains on
    the best-vs-worst pairs. Everything goes to OUTPUT_DIR/rl; run the same command again
    to resume an interrupted run: finished rounds and rollouts are not redone.
    """
    loaded = _recipe(recipe, overrides)
    from flux_agent.backends import BackendError
    from flux_agent.eval.datasets import DatasetError
    from flux_agent.training.rl import rl_dir, run_rl

    spec = loaded.rl
    console.print(
        f"[bold]trajectory optimisation[/] {loaded.name}: {spec.rounds} rounds x "
        f"{spec.problems} problems, K={spec.samples} plans, M={spec.neighbours} neighbours, "
        f"solver {spec.solver}, start from {spec.start}; output {rl_dir(loaded)}"
    )
    try:
        summaries = run_rl(loaded, _print_event)
    except (FileNotFoundError, ValueError, RuntimeError, BackendError, DatasetError) as exc:
        raise CLIError(str(exc)) from None
    console.print("\n[bold]reward by round[/] (mean ± spread over sampled plans)")
    for summary in summaries:
        console.print(
            f"  round {summary.round}: {summary.reward_mean:.3f} ± {summary.reward_std:.3f}, "
            f"valid plans {summary.valid_share:.0%}, accuracy {summary.accuracy_mean:.1%}, "
            f"{summary.pairs} pairs"
        )
    trained = [rl_dir(loaded) / f"round-{s.round}" / "merged" for s in summaries]
    last = next((path for path in reversed(trained) if (path / "config.json").is_file()), None)
    if last is None:
        console.print("no round trained (no preference pairs), so the navigator is unchanged")
        return
    console.print(
        f"trained navigator: {last}\n"
        f'use it: flux solve --navigator hf:{last} "PROBLEM"\n'
        f"compare it: flux train compare {recipe}"
    )


def _print_event(kind: str, fields: dict[str, Any]) -> None:
    if kind == "round_started":
        console.print(
            f"[bold]round {fields['round']}[/]: {fields['problems']} problems, "
            f"navigator {fields['policy']}"
        )
    elif kind == "problem":
        console.print(
            f"  {fields['problem_id']}: {fields['valid_plans']} valid plans, "
            f"{fields['solves']} solves ({fields['new_solves']} new), {fields['correct']} right",
            markup=False,
        )
    elif kind == "round_scored":
        console.print(
            f"  reward {fields['reward_mean']:.3f} ± {fields['reward_std']:.3f}, "
            f"valid {fields['valid_share']:.0%}, {fields['pairs']} pairs "
            f"(mean margin {fields['margin_mean']:.3f}); training..."
            if fields["pairs"]
            else f"  reward {fields['reward_mean']:.3f} ± {fields['reward_std']:.3f}: "
            "no pairs (every plan scored alike), so no update this round"
        )
    elif kind in ("round_done", "round_skipped"):
        note = "already done" if kind == "round_skipped" else f"{fields['seconds']:.0f} s"
        loss = (
            f", training loss {fields['train_loss']:.4f}"
            if fields["train_loss"] is not None
            else ""
        )
        console.print(f"  round {fields['round']} {note}{loss}")


@train_app.command()
def compare(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file used for `flux train rl`.")],
    every_round: Annotated[
        bool,
        typer.Option("--every-round", help="Score every round's navigator, not only the last."),
    ] = False,
    overrides: Overrides = None,
) -> None:
    """Before/after: the starting and the trained navigator on the run's held-out problems.

    Each navigator plans each held-out problem once (greedy); the same solver follows the
    plan on the problem and its neighbours. Prints and writes OUTPUT_DIR/rl/compare.md:
    valid plans, accuracy, neighbour accuracy and mean reward.
    """
    loaded = _recipe(recipe, overrides)
    from flux_agent.backends import BackendError
    from flux_agent.eval.datasets import DatasetError
    from flux_agent.training.compare import compare_navigators, markdown_table, trained_navigators
    from flux_agent.training.rl import rl_dir

    try:
        navigators = trained_navigators(loaded, every_round)
        console.print(
            f"[bold]compare[/] {', '.join(navigators)} on {loaded.rl.heldout} held-out problems"
        )
        scores = compare_navigators(
            loaded,
            navigators,
            lambda label, done: console.print(
                f"  {label} {done.problem_id}: {done.correct}/{done.solves} right", markup=False
            ),
        )
    except (FileNotFoundError, ValueError, RuntimeError, BackendError, DatasetError) as exc:
        raise CLIError(str(exc)) from None
    console.print(markdown_table(scores), markup=False)
    console.print(f"written: {rl_dir(loaded) / 'compare.md'}")
