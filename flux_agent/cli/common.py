"""What every `flux` command shares: consoles, the user-facing error, settings from options."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flux_agent.config import AgentSettings, BackendSettings, Settings

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
        help="Navigator backend: 'embedded' or a .gguf path (either with ?threads=N&context=N), "
        "'http://host:port/v1?model=NAME[&structured_output=llama_cpp|vllm]', "
        "'vllm:MODEL', or 'hf:PATH' (a Hugging Face model folder, e.g. a trained navigator).",
    ),
]
SolverSpec = Annotated[
    str, typer.Option("--solver", help="Solver backend, same forms as --navigator.")
]


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def settings_from_options(
    data_dir: Path | None = None,
    navigator: str = "embedded",
    solver: str = "embedded",
    library: Path | None = None,
    **agent: Any,
) -> Settings:
    """Settings from command-line options; unset agent budgets keep their defaults."""
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


def run_async(coroutine: Any) -> Any:
    """Run a command's coroutine, turning the failures a user can fix into `CLIError`."""
    from flux_agent.backends.base import BackendError
    from flux_agent.templates import LibraryError, StoreError

    try:
        return asyncio.run(coroutine)
    except (BackendError, StoreError, LibraryError, ValueError) as exc:
        raise CLIError(str(exc)) from None
