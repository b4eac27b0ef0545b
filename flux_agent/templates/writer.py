"""`LibraryWriter`: the one way templates get into the library, for every caller.

`flux library grow`, `flux library accept` and `POST /v1/templates` all submit
candidates here. A candidate is judged on its own first (tags, `check`: no lock
held, since the check may take seconds), then, holding the library lock:

1. the writer catches up with what other processes wrote (and the index with the folder);
2. a candidate already written by an earlier, interrupted run is recognised by its
   content hash in the log, and not written twice;
3. a near-duplicate is merged into the template it repeats when it adds cues, steps
   or pitfalls (a new version; the old one kept in `.history/`), else rejected;
4. a taken id is renamed `<id>_2`, ... (or rejected, for the API);
5. the YAML is written atomically, the change logged, the index updated.

With `dry_run` nothing is written and no lock is taken; the decisions are the same,
and later candidates of the same dry run see the earlier ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flux_agent.templates.admission import Admission, Neighbour, Rejection, template_path
from flux_agent.templates.journal import (
    IndexedStore,
    LogEntry,
    append_log,
    library_lock,
    read_log,
    sync_index_locked,
)
from flux_agent.templates.merge import merged_template, plan_merge
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.verify.sandbox import Sandbox

Outcome = Literal["added", "merged", "rejected"]


@dataclass(frozen=True)
class Origin:
    """Who submits a candidate and where it came from (for the log and merge records)."""

    by: Literal["grow", "accept", "api"]
    source: str
    record: str | None = None
    model: str | None = None
    prompt_version: str | None = None


@dataclass
class Decision:
    """What became of one candidate."""

    outcome: Outcome
    candidate: ThoughtTemplate | None  # None: the model's JSON was not a template
    template: ThoughtTemplate | None = None  # what the library now holds (renamed, merged)
    path: Path | None = None
    rejections: list[Rejection] = field(default_factory=list)
    merged_into: str | None = None
    similarity: float | None = None
    detail: str = ""
    resumed: bool = False

    @property
    def reason(self) -> str:
        """One line: why it was rejected, or what was done."""
        if self.rejections:
            return "; ".join(f"{r.field}: {r.message}" for r in self.rejections)
        return self.detail


def candidate_key(template: ThoughtTemplate, *, with_id: bool = True) -> str:
    """A hash of what a candidate says, not of its provenance (which carries the date) or
    version; `with_id=False` also leaves out the id (which the writer may have renamed)."""
    leave_out = {"provenance", "version"} | (set() if with_id else {"id"})
    payload = template.model_dump(mode="json", exclude=leave_out)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def sweep_partial_files(folder: Path) -> list[Path]:
    """Delete the temporary files of writes that were killed (call it holding the lock:
    then no write is in progress). Readers skip them anyway; this only tidies up."""
    removed = [p for p in Path(folder).rglob(".new-*") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


class LibraryWriter:
    """Judges candidates and writes the accepted ones (see the module docstring).

    Args:
        admission: the library in memory (its folder is the one written).
        sandbox: evaluates each candidate's `check`.
        store: the vector index kept in step; None leaves indexing to the next start.
        merge: fold near-duplicates that add something into the existing template.
        rename: give a candidate whose id is taken a free `<id>_N` instead of rejecting it.
        resume: recognise a candidate an earlier run already wrote (by the log) and report
            that decision again instead of judging it anew.
        grounded: also require the `check` to use a number of the example's problem (for
            machine-written candidates; see `check_is_grounded`).
        dry_run: decide, but write nothing.
    """

    def __init__(
        self,
        admission: Admission,
        sandbox: Sandbox,
        store: IndexedStore | None = None,
        *,
        merge: bool = True,
        rename: bool = True,
        resume: bool = True,
        grounded: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.admission = admission
        self.sandbox = sandbox
        self.store = store
        self.merge = merge
        self.rename = rename
        self.resume = resume
        self.grounded = grounded
        self.dry_run = dry_run
        self._swept = False

    @property
    def folder(self) -> Path:
        return self.admission.folder

    def submit(self, candidate: ThoughtTemplate, origin: Origin) -> Decision:
        """Judge one candidate and, unless rejected, add or merge it.

        Raises:
            LibraryError: the library on disk became invalid (someone broke a file).
            StoreError: the index could not be updated (the folder is already written;
                the next start catches the index up).
        """
        own = self.admission.rule_rejections(candidate, self.sandbox, grounded=self.grounded)
        if own:
            return Decision("rejected", candidate, rejections=own)
        if self.dry_run:
            return self._decide(candidate, origin)
        with library_lock(self.folder):
            if not self._swept:
                sweep_partial_files(self.folder)
                self._swept = True
            self.admission.refresh()
            if self.store is not None:
                sync_index_locked(self.store, self.folder)
            earlier = self._done_earlier(candidate, origin) if self.resume else None
            return earlier or self._decide(candidate, origin)

    def _decide(self, candidate: ThoughtTemplate, origin: Origin) -> Decision:
        neighbours = self.admission.neighbours(candidate)
        conflicts = self.admission.conflicts(candidate)
        if not self.merge and (neighbours or (conflicts and not self.rename)):
            # Every conflict at once, so a person can fix them in one go.
            rejections = [*conflicts, *self.admission.near_duplicate_rejections(candidate)]
            return Decision("rejected", candidate, rejections=rejections)
        if neighbours:
            return self._near_duplicate(candidate, origin, neighbours[0])
        template = candidate
        detail = "new technique"
        if conflicts:
            free = self.admission.free_id(candidate) if self.rename else None
            if free is None:
                return Decision("rejected", candidate, rejections=conflicts)
            template = candidate.model_copy(update={"id": free})
            detail = f"new technique (renamed from {candidate.id}: the id was taken)"
        path = self.admission.add(template, write=not self.dry_run)
        self._record("added", template, path, origin, candidate, detail)
        return Decision("added", candidate, template=template, path=path, detail=detail)

    def _near_duplicate(
        self, candidate: ThoughtTemplate, origin: Origin, neighbour: Neighbour
    ) -> Decision:
        other_id, similarity = neighbour.id, neighbour.similarity
        existing = self.admission.get(other_id)
        assert existing is not None
        plan = plan_merge(existing, candidate, self.admission.embedder)
        if not plan:
            rejection = self.admission.near_duplicate_rejection(
                neighbour, "adds no new cue, step or pitfall", "near-duplicate adding nothing"
            )
            return Decision("rejected", candidate, rejections=[rejection], similarity=similarity)
        template = merged_template(
            existing,
            plan,
            source=origin.source,
            record=origin.record,
            model=origin.model,
            prompt_version=origin.prompt_version,
        )
        path = self.admission.replace(template, write=not self.dry_run)
        detail = f"into {other_id} v{template.version} (cosine {similarity:.3f}): {plan.describe()}"
        self._record("merged", template, path, origin, candidate, detail)
        return Decision(
            "merged",
            candidate,
            template=template,
            path=path,
            merged_into=other_id,
            similarity=similarity,
            detail=detail,
        )

    def _record(
        self,
        action: Literal["added", "merged"],
        template: ThoughtTemplate,
        path: Path,
        origin: Origin,
        candidate: ThoughtTemplate,
        detail: str,
    ) -> None:
        if self.dry_run:
            return
        append_log(
            self.folder,
            LogEntry(
                action=action,
                id=template.id,
                version=template.version,
                path=str(path.relative_to(self.folder)),
                by=origin.by,
                source=origin.source,
                record=origin.record,
                model=origin.model,
                prompt_version=origin.prompt_version,
                candidate=candidate_key(candidate),
                detail=detail,
            ),
        )
        fingerprint = self.admission.caught_up()
        if self.store is not None:
            self.store.index([template], prune=False)
            self.store.mark_library(fingerprint)

    def _done_earlier(self, candidate: ThoughtTemplate, origin: Origin) -> Decision | None:
        """The decision an earlier run already carried out for this very candidate.

        Found in the log, or (for a run killed between writing a template and logging it)
        in the library itself: a template from the same record saying the same thing. The
        missing log line is then written.
        """
        key = candidate_key(candidate)
        log = read_log(self.folder)
        for entry in reversed(log):
            if entry.candidate == key and (entry.source, entry.record) == (
                origin.source,
                origin.record,
            ):
                return Decision(
                    entry.action,
                    candidate,
                    template=self.admission.get(entry.id),
                    path=self.folder / entry.path,
                    merged_into=entry.id if entry.action == "merged" else None,
                    detail=f"{entry.detail} (done earlier, at {entry.at})",
                    resumed=True,
                )
        logged = {(entry.id, entry.version) for entry in log}
        content = candidate_key(candidate, with_id=False)
        for template in self.admission.templates():
            provenance = template.provenance
            if (
                (template.id, template.version) not in logged
                and (provenance.source, provenance.record) == (origin.source, origin.record)
                and candidate_key(template, with_id=False) == content
            ):
                detail = "new technique (written earlier; its log line was missing)"
                path = template_path(self.folder, template)
                self._record("added", template, path, origin, candidate, detail)
                return Decision(
                    "added", candidate, template=template, path=path, detail=detail, resumed=True
                )
        return None
