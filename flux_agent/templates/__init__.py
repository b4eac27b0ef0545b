"""Thought templates: the model, the library on disk, and the store that searches it."""

from flux_agent.templates.library import (
    LibraryError,
    LibraryIssue,
    LibraryReport,
    default_library_path,
    load_library,
    validate_library,
)
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import IndexReport, SearchHit, StoreError, TemplateStore

__all__ = [
    "IndexReport",
    "LibraryError",
    "LibraryIssue",
    "LibraryReport",
    "SearchHit",
    "StoreError",
    "TemplateStore",
    "ThoughtTemplate",
    "default_library_path",
    "load_library",
    "validate_library",
]
