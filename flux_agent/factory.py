"""Assembling an agent from `Settings`: backends, store, sandbox, run store.

This is the composition root shared by the CLI and (later) the API: the one
place where settings become live objects. The core modules never import it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flux_agent.agent import AgentContext, FluxAgent
from flux_agent.backends import build_backends
from flux_agent.config import Settings
from flux_agent.templates import (
    IndexReport,
    LibraryError,
    TemplateStore,
    default_library_path,
    load_library,
)
from flux_agent.templates.chroma_store import open_store
from flux_agent.templates.journal import IndexedStore, index_library, sync_index
from flux_agent.verify import default_sandbox

logger = logging.getLogger(__name__)


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
    folder = settings.library_path or default_library_path()
    store = store or open_store(settings)
    if isinstance(store, IndexedStore):
        report, total = index_library(store, folder)
    else:  # a store that cannot record the library's state is simply indexed
        templates = load_library(folder)
        report, total = store.index(templates), len(templates)
    return BuildReport(report, time.perf_counter() - start, total)


def catch_up_index(settings: Settings, store: TemplateStore) -> None:
    """At start: index an empty store, or bring the index in step with a library that changed
    since (templates grown, edited, or written by a process that died before indexing).

    Raises:
        LibraryError: the store is empty and the library is invalid (nothing to search).
    """
    if store.count() == 0:
        build_index(settings, store)
        return
    if not isinstance(store, IndexedStore):
        return
    folder = settings.library_path or default_library_path()
    try:
        sync_index(store, folder)
    except LibraryError as exc:
        # Searching yesterday's index beats refusing to solve over one broken file.
        logger.warning("the index was not updated: %s", exc)


def create_agent(settings: Settings, *, build_if_empty: bool = True) -> FluxAgent:
    """A ready agent: backends built, store opened (and indexed on first use), sandbox set."""
    # Backends first: a missing model file or extra should fail before seconds of indexing.
    navigator, solver = build_backends(settings.navigator, settings.solver)
    store = open_store(settings)
    if build_if_empty:
        catch_up_index(settings, store)
    context = AgentContext(
        navigator=navigator,
        solver=solver,
        store=store,
        settings=settings.agent,
        sandbox=default_sandbox(),
    )
    return FluxAgent(context, settings.runs_path)
