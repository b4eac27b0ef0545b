"""The library's journal: one writer at a time, a log of what growth changed, and an index
that catches up with the folder.

The YAML folder is the truth; a vector index is derived from it. Every change to the
folder (`flux library grow`, `flux library accept`, `POST /v1/templates`) happens under
`library_lock(folder)`, writes the template file atomically, appends a line to
`growth-log.jsonl`, and then updates the index. A crash between any two of those leaves
a folder that is complete and an index that is behind; `sync_index` notices (the
folder's fingerprint differs from the one the index recorded) and catches up
incrementally on the next start:

    with library_lock(folder):
        path = write_template(folder, template)
        append_log(folder, LogEntry(action="added", ...))
        store.index([template], prune=False)
        store.mark_library(library_fingerprint(folder))
    ...
    sync_index(store, folder)    # at every start: 7 ms when nothing changed
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from flux_agent.storage import JsonlLog, file_lock
from flux_agent.templates.library import load_library, template_files
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import IndexReport

logger = logging.getLogger(__name__)

LOG_FILE = "growth-log.jsonl"
LOCK_FILE = ".lock"


class LogEntry(BaseModel):
    """One change to the library, as `flux library log` shows it."""

    model_config = ConfigDict(extra="ignore")

    at: str = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        description="When (UTC, ISO 8601).",
    )
    action: Literal["added", "merged"]
    id: str
    version: int
    path: str = Field(description="The template's file, relative to the library.")
    by: str = Field(description="What made the change: grow, accept or api.")
    source: str
    record: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    candidate: str | None = Field(
        default=None, description="Content hash of the candidate that caused it (for resuming)."
    )
    detail: str = ""


@runtime_checkable
class IndexedStore(Protocol):
    """A store that remembers which state of the library it holds (`ChromaTemplateStore`)."""

    @property
    def library_fingerprint(self) -> str | None: ...

    def mark_library(self, fingerprint: str) -> None: ...

    def index(self, templates: list[ThoughtTemplate], *, prune: bool = True) -> IndexReport: ...


def library_lock(folder: Path) -> AbstractContextManager[None]:
    """The lock every writer of the library holds (also across processes)."""
    return file_lock(Path(folder) / LOCK_FILE)


def library_fingerprint(folder: Path) -> str:
    """A hash of every template file's name, size and modification time (milliseconds for
    the whole library): it changes whenever a template is added, edited or removed."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in template_files(folder):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def log_file(folder: Path) -> JsonlLog:
    return JsonlLog(Path(folder) / LOG_FILE)


def append_log(folder: Path, entry: LogEntry) -> None:
    """Append one change (call it holding the lock)."""
    log_file(folder).append(entry.model_dump(mode="json", exclude_none=True))


def read_log(folder: Path) -> list[LogEntry]:
    """Every logged change, oldest first (safe to call while a writer appends)."""
    return [LogEntry.model_validate(row) for row in log_file(folder).read(repair=False)]


def sync_index(store: IndexedStore, folder: Path) -> IndexReport | None:
    """Bring the index in step with the folder, if the folder changed since it last was.

    Returns None when the index was already in step (the usual case, a few milliseconds),
    else what was added, re-embedded and removed. Only changed templates are embedded.

    Raises:
        LibraryError: the folder changed and is no longer a valid library.
    """
    folder = Path(folder)
    if store.library_fingerprint == library_fingerprint(folder):
        return None
    with ExitStack() as stack:
        # A read-only library (an installed package) has no writers to wait for.
        with suppress(OSError):
            stack.enter_context(library_lock(folder))
        report = sync_index_locked(store, folder)
    if report is not None and (report.added or report.updated or report.removed):
        logger.info(
            "index caught up with %s: %d added, %d re-embedded, %d removed",
            folder,
            len(report.added),
            len(report.updated),
            len(report.removed),
        )
    return report


def sync_index_locked(store: IndexedStore, folder: Path) -> IndexReport | None:
    """`sync_index` for a caller already holding the library lock."""
    if store.library_fingerprint == library_fingerprint(folder):
        return None
    return index_library(store, folder)[0]


def index_library(store: IndexedStore, folder: Path) -> tuple[IndexReport, int]:
    """Index the whole library incrementally and record its fingerprint; returns what
    changed and how many templates the library holds."""
    # Fingerprint first: a file changed after it only makes the next start check again.
    fingerprint = library_fingerprint(folder)
    templates = load_library(folder)
    report = store.index(templates)
    store.mark_library(fingerprint)
    return report, len(templates)
