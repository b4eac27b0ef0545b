"""Files that survive being killed: an append-only JSON-lines log, and a lock between processes.

log = JsonlLog(folder / "outcomes.jsonl")
log.append({"key": "a", "correct": True})    # flushed and fsynced
with file_lock(folder / ".lock"):             # one holder at a time, across processes
    ...
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class JsonlLog:
    """An append-only JSON-lines file that survives being killed mid-write.

    Each record is flushed and synced as it is appended; a torn last line (a kill during
    a write) is dropped when the file is read back, and with `repair` cut off before the
    next append. Only a writer (one holding the lock, if several processes append)
    should repair: a reader could otherwise cut a line another process is writing."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self, *, repair: bool = True) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records, good_bytes = [], 0
        with self.path.open("rb") as lines:
            for line in lines:
                try:
                    records.append(json.loads(line))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    break
                good_bytes += len(line)
        if repair and good_bytes < self.path.stat().st_size:
            with self.path.open("r+b") as torn:
                torn.truncate(good_bytes)
        return records

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = ""
        if self._torn():
            self.read()  # cut the torn line off, or the new record would be glued to it
            start = "\n" if self._torn() else ""  # it was whole, only its newline was lost
        with self.path.open("a", encoding="utf-8") as out:
            out.write(start + json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _torn(self) -> bool:
        """The file does not end with a newline (a writer was killed mid-line)."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        except (FileNotFoundError, OSError):  # missing, or empty (seek before the start)
            return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) until the block ends.

    The lock is `flock`: it excludes other processes and other open files in this
    process, and the kernel releases it when its holder dies, so a killed process
    never leaves the lock taken.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, text: str, *, replace: bool = True) -> None:
    """Write `text` to `path` so a reader sees the old file or the new one, never a mix.

    The text goes to a hidden temporary file (`.new-*`, mode 0644) in the same folder,
    synced, then renamed over `path`; with `replace=False` it is hard-linked instead,
    which fails if `path` exists, so two writers cannot both create it.

    Raises:
        FileExistsError: `replace=False` and `path` exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-", suffix=path.suffix)
    try:
        os.fchmod(handle, 0o644)  # mkstemp makes it private; these files are for every reader
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
