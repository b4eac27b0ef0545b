"""The `TemplateStore` interface: find templates for a problem or a planned step.

The agent only needs three things from a store: index templates (incrementally),
search by text with a score, and fetch by id. Chroma implements it
(`chroma_store.py`); anything else that does the same can replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from flux_agent.templates.model import ThoughtTemplate


@dataclass(frozen=True)
class SearchHit:
    """A template and how close it is to the query (cosine similarity, higher is closer)."""

    template: ThoughtTemplate
    score: float


@dataclass(frozen=True)
class IndexReport:
    """What `index` did: ids added, re-embedded because they changed, removed, left alone."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0


class StoreError(RuntimeError):
    """The store is unreachable, empty or inconsistent; the message says what to do."""


@runtime_checkable
class TemplateStore(Protocol):
    """Storage and similarity search over thought templates."""

    def index(self, templates: Sequence[ThoughtTemplate], *, prune: bool = True) -> IndexReport:
        """Add new templates, re-embed changed ones (by content hash), and with `prune`
        remove templates that are no longer in `templates`."""
        ...

    def search(self, query: str, k: int = 5, domain: str | None = None) -> list[SearchHit]:
        """The `k` templates closest to `query`, best first, optionally within one domain."""
        ...

    def get(self, template_id: str) -> ThoughtTemplate | None:
        """The template with this id, or None."""
        ...

    def count(self) -> int:
        """How many templates are indexed."""
        ...
