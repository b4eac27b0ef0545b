"""Folding a near-duplicate candidate into the template it repeats.

A candidate that describes a technique the library already has is not added; but it
may still know something the existing template lacks: a cue that signals the
technique, a pitfall, a step. `plan_merge` finds those items (an item is new when no
existing item in the same field reads like it, by embedding similarity) and
`merged_template` writes them into the next version of the existing template:

- new cues (`applies_when`) and pitfalls are appended;
- new steps are placed after the existing step that matched the candidate's
  previous step, so the procedure keeps its order. Steps are only merged when the
  two procedures share at least one step; otherwise they are different procedures
  and mixing them would produce neither.

At most `MAX_ADDED` items per field per merge, and no field grows past `MAX_ITEMS`,
so repeated merges cannot bloat a template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.model import Merge, ThoughtTemplate

ITEM_SIMILARITY = 0.75
"""Two items (cues, steps or pitfalls) at or above this cosine similarity say the same thing."""

MAX_ADDED = 3
MAX_ITEMS = 10


@dataclass(frozen=True)
class MergePlan:
    """What a candidate adds to an existing template (empty: it adds nothing)."""

    applies_when: list[str] = field(default_factory=list)
    pitfalls: list[str] = field(default_factory=list)
    steps: list[tuple[int, str]] = field(default_factory=list)  # (insert after index, step)

    @property
    def added(self) -> dict[str, int]:
        counts = {
            "applies_when": len(self.applies_when),
            "steps": len(self.steps),
            "pitfalls": len(self.pitfalls),
        }
        return {name: count for name, count in counts.items() if count}

    def __bool__(self) -> bool:
        return bool(self.applies_when or self.pitfalls or self.steps)

    def describe(self) -> str:
        return ", ".join(f"+{count} {name}" for name, count in self.added.items()) or "nothing"


def plan_merge(
    existing: ThoughtTemplate, candidate: ThoughtTemplate, embedder: TextEmbedder
) -> MergePlan:
    """The candidate's cues, pitfalls and steps that `existing` lacks."""
    return MergePlan(
        applies_when=_new_items(existing.applies_when, candidate.applies_when, embedder),
        pitfalls=_new_items(existing.pitfalls, candidate.pitfalls, embedder),
        steps=_new_steps(existing.steps, candidate.steps, embedder),
    )


def merged_template(
    existing: ThoughtTemplate,
    plan: MergePlan,
    *,
    source: str,
    record: str | None = None,
    model: str | None = None,
    prompt_version: str | None = None,
    today: dt.date | None = None,
) -> ThoughtTemplate:
    """The next version of `existing` with the plan's items in, and the merge recorded."""
    steps = list(existing.steps)
    # From the back, so earlier positions stay valid and steps for one place keep their order.
    order = sorted(range(len(plan.steps)), key=lambda i: (plan.steps[i][0], i), reverse=True)
    for i in order:
        after, step = plan.steps[i]
        steps.insert(after + 1, step)
    version = existing.version + 1
    merge = Merge(
        version=version,
        date=today or dt.date.today(),
        source=source,
        record=record,
        model=model,
        prompt_version=prompt_version,
        added=plan.added,
    )
    provenance = existing.provenance.model_copy(
        update={"merges": [*existing.provenance.merges, merge]}
    )
    data = existing.model_dump()
    data.update(
        applies_when=[*existing.applies_when, *plan.applies_when],
        pitfalls=[*existing.pitfalls, *plan.pitfalls],
        steps=steps,
        version=version,
        provenance=provenance.model_dump(),
    )
    return ThoughtTemplate.model_validate(data)


def _similarities(old: Sequence[str], new: Sequence[str], embedder: TextEmbedder) -> np.ndarray:
    vectors = np.asarray(embedder.embed([*old, *new]), dtype=float)
    return vectors[len(old) :] @ vectors[: len(old)].T  # (new, old); unit vectors


def _new_items(old: list[str], new: list[str], embedder: TextEmbedder) -> list[str]:
    room = min(MAX_ADDED, MAX_ITEMS - len(old))
    if room <= 0 or not new:
        return []
    similarities = _similarities(old, new, embedder)
    kept: list[str] = []
    for item, row in zip(new, similarities, strict=True):
        if row.max(initial=-1.0) < ITEM_SIMILARITY and item not in kept:
            kept.append(item)
    return kept[:room]


def _new_steps(old: list[str], new: list[str], embedder: TextEmbedder) -> list[tuple[int, str]]:
    room = min(MAX_ADDED, MAX_ITEMS - len(old))
    if room <= 0 or not new:
        return []
    similarities = _similarities(old, new, embedder)
    matched = [int(row.argmax()) if row.max() >= ITEM_SIMILARITY else None for row in similarities]
    if all(index is None for index in matched):
        return []  # no step in common: a different procedure, not an extension of this one
    insertions: list[tuple[int, str]] = []
    anchor = -1  # a new step before any matched one goes first
    for step, index in zip(new, matched, strict=True):
        if index is not None:
            anchor = max(anchor, index)
        else:
            insertions.append((anchor, step))
    return insertions[:room]
