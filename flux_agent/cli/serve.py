"""`flux serve`: the HTTP API, the OpenAI-compatible facade and the web page."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from flux_agent.cli.common import (
    CLIError,
    DataDir,
    NavigatorSpec,
    SolverSpec,
    console,
    settings_from_options,
)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    navigator: NavigatorSpec = "embedded",
    solver: SolverSpec = "embedded",
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="Another backend a request can name, as NAME=SPEC (same SPEC forms as "
            "--navigator); repeatable. The defaults are named 'navigator' and 'solver'.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FLUX_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every /v1 route "
            "(health checks, the web page and /docs stay open).",
            show_envvar=True,
        ),
    ] = None,
    max_concurrent: Annotated[
        int, typer.Option(help="Solves at once; more get 429 (Retry-After).", min=1)
    ] = 2,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds a solve may take; it is then stopped, resumable.", min=1),
    ] = 600.0,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted (413 past it).", min=1024)
    ] = 1_000_000,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the agent over HTTP: /v1 API, OpenAI-compatible /v1/chat/completions, web page at /.

    Examples:

      flux serve --port 8080

      FLUX_API_KEY=secret flux serve --host 0.0.0.0

      flux serve --solver "http://127.0.0.1:8000/v1?model=qwen" --backend small=embedded
    """
    import uvicorn

    from flux_agent.api import ServiceLimits, create_app, open_service
    from flux_agent.config import BackendSettings

    settings = settings_from_options(data_dir, navigator, solver)
    extra = {}
    for item in backend or []:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip():
            raise CLIError(f"--backend takes NAME=SPEC, got {item!r}")
        if name.strip() in ("navigator", "solver"):
            raise CLIError(f"--backend {name}: the name is taken (set it with --{name})")
        try:
            extra[name.strip()] = BackendSettings.from_spec(spec)
        except ValueError as exc:
            raise CLIError(f"--backend {name}: {exc}") from None
    limits = ServiceLimits(
        api_key=api_key or None,
        max_concurrent_solves=max_concurrent,
        solve_timeout_s=timeout,
        max_body_bytes=max_body_bytes,
    )
    with console.status("Loading the template store and embedding model…"):
        try:
            service = open_service(settings, limits, extra)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    console.print(
        f"flux serve: [bold]http://{shown}:{port}/[/] (web page), /docs (API), "
        f"/v1/chat/completions (OpenAI-compatible, model 'flux')"
        + (" · API key required" if limits.api_key else "")
    )
    console.print(
        f"[dim]navigator: {settings.navigator.describe()} · "
        f"solver: {settings.solver.describe()} · runs: {settings.runs_path}[/]"
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level)
