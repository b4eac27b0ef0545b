"""Assembling an agent from `Settings`: backends, store, sandbox, run store.

This is the composition root shared by the CLI and (later) the API: the one
place where settings become live objects. The core modules never import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flux_agent.agent import AgentContext, FluxAgent
from flux_agent.backends import build_backends
from flux_agent.config import Settings
from flux_agent.templates import IndexReport, TemplateStore, default_library_path, load_library
from flux_agent.templates.chroma_store import open_store
from flux_agent.verify import default_sandbox


@dataclass(frozen=True)
class BuildReport:
    """An index build: what changed, in how many seconds, out of how many templates."""

    report: IndexReport
    seconds: float
    total: int


def build_index(settings: Settings, store: TemplateStore | None = None) -> BuildReport:
    """Index the library into the store incrementally (unchanged templates are not re-embedded)."""
    import time

    start = time.perf_counter()
    templates = load_library(settings.library_path or default_library_path())
    store = store or open_store(settings)
    report = store.index(templates)
    return BuildReport(report, time.perf_counter() - start, len(templates))


def create_agent(settings: Settings, *, build_if_empty: bool = True) -> FluxAgent:
    """A ready agent: backends built, store opened (and indexed on first use), sandbox set."""
    # Backends first: a missing model file or extra should fail before seconds of indexing.
    navigator, solver = build_backends(settings.navigator, settings.solver)
    store = open_store(settings)
    if build_if_empty and store.count() == 0:
        build_index(settings, store)
    context = AgentContext(
        navigator=navigator,
        solver=solver,
        store=store,
        settings=settings.agent,
        sandbox=default_sandbox(),
    )
    return FluxAgent(context, settings.runs_path)
