"""Admitting a new template into the library: the gate, and the atomic write.

A candidate (from the API, from library growth, from a reviewed folder) gets in only
if it passes every rule `flux library validate` applies to the library as a whole:
the schema, the tag vocabulary, a `check` that evaluates to the example's answer, a
fresh id and file, and no near-duplicate among the existing techniques. `Admission`
keeps the library's technique vectors in memory, so judging one candidate embeds one
text instead of the whole library; `refresh` catches up with templates other
processes wrote, embedding only those.

    admission = Admission.load(folder, embedder)
    rejections = admission.judge(template, sandbox)
    if not rejections:
        path = admission.add(template)

`LibraryWriter` (writer.py) wraps this with the lock, the log and the index.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from flux_agent.storage import write_atomic
from flux_agent.templates.duplicates import (
    NEAR_DUPLICATE_THRESHOLD,
    load_distinct_pairs,
    technique_text,
)
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.journal import library_fingerprint
from flux_agent.templates.library import (
    TAGS_FILE,
    check_example,
    load_library,
    load_tag_vocabulary,
)
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.verify.sandbox import Sandbox

HISTORY_DIR = ".history"
"""Old versions of merged templates: `.history/<id>/v<N>.yaml` (hidden: not templates)."""


@dataclass(frozen=True)
class Rejection:
    """Why a candidate was refused: the field at fault and a sentence a person can act on.

    `kind` is "invalid" for a template that breaks a rule on its own, "conflict" for one
    that clashes with the library (its id is taken, or it repeats a technique).
    """

    field: str
    message: str
    kind: Literal["invalid", "conflict"] = "invalid"
    rule: str = ""  # a short name of the rule, for counting ("check fails", "id taken", ...)


@dataclass(frozen=True)
class Neighbour:
    """An existing template whose technique reads like the candidate's."""

    id: str
    similarity: float


class Admission:
    """The library's templates and technique vectors, and the rules a newcomer must pass."""

    def __init__(
        self,
        folder: Path,
        templates: list[ThoughtTemplate],
        embedder: TextEmbedder,
        threshold: float = NEAR_DUPLICATE_THRESHOLD,
        *,
        fingerprint: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.embedder = embedder
        self.threshold = threshold
        self._lock = threading.RLock()
        self._cache: dict[str, np.ndarray] = {}  # content hash -> technique vector
        self._fingerprint = fingerprint
        self._set_templates(templates)

    @classmethod
    def load(cls, folder: Path, embedder: TextEmbedder) -> Admission:
        """Read the library (it must be valid) and embed its techniques (seconds)."""
        fingerprint = library_fingerprint(folder)
        return cls(folder, load_library(folder), embedder, fingerprint=fingerprint)

    def refresh(self) -> bool:
        """Re-read the library if its files changed since it was read (by another process,
        or by hand), embedding only new and changed techniques. True if it changed.

        Raises:
            LibraryError: the folder is no longer a valid library.
        """
        fingerprint = library_fingerprint(self.folder)
        with self._lock:
            if fingerprint == self._fingerprint:
                return False
            self._set_templates(load_library(self.folder))
            self._fingerprint = fingerprint
            return True

    def caught_up(self) -> str:
        """Take the folder as it is now for what is in memory (call it holding the library
        lock, right after this object wrote), so the next `refresh` does not re-read it."""
        self._fingerprint = library_fingerprint(self.folder)
        return self._fingerprint

    def get(self, template_id: str) -> ThoughtTemplate | None:
        return self._templates.get(template_id)

    def templates(self) -> list[ThoughtTemplate]:
        return list(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    def judge(self, template: ThoughtTemplate, sandbox: Sandbox) -> list[Rejection]:
        """Every rule the template breaks (empty: it may be added)."""
        return [
            *self.rule_rejections(template, sandbox),
            *self.conflicts(template),
            *self.near_duplicate_rejections(template),
        ]

    def rule_rejections(
        self, template: ThoughtTemplate, sandbox: Sandbox, *, grounded: bool = False
    ) -> list[Rejection]:
        """The rules a template breaks on its own: unknown tags, a `check` that fails, and
        with `grounded` a check that uses none of the example problem's numbers."""
        rejections = []
        if grounded and not check_is_grounded(template):
            rejections.append(
                Rejection(
                    "check",
                    "uses none of the numbers of the example's problem; it must recompute the "
                    "answer from the example's data, not restate it",
                    rule="check does not use the example",
                )
            )
            return rejections  # evaluating it would prove nothing
        vocabulary, _ = load_tag_vocabulary(self.folder)
        if vocabulary is not None:
            unknown = [tag for tag in template.tags if tag not in vocabulary]
            if unknown:
                rejections.append(
                    Rejection(
                        "tags",
                        f"not in the tag vocabulary ({TAGS_FILE}): {unknown}",
                        rule="unknown tags",
                    )
                )
        passed, why = check_example(template, sandbox)
        if not passed:
            rejections.append(Rejection("check", why, rule="check fails"))
        return rejections

    def conflicts(self, template: ThoughtTemplate) -> list[Rejection]:
        """Its id, or the file it would be written to, is taken."""
        if template.id in self._templates:
            return [Rejection("id", "a template with this id exists", "conflict", "id taken")]
        path = template_path(self.folder, template)
        if path in self._path_set or path.exists():
            return [
                Rejection(
                    "id",
                    f"the file {path.relative_to(self.folder)} belongs to another template; "
                    "choose another last part for the id",
                    "conflict",
                    "id taken",
                )
            ]
        return []

    def free_id(self, template: ThoughtTemplate, tries: int = 20) -> str | None:
        """The template's id if it is free, else the first free `<id>_N`, or None."""
        for number in range(1, tries + 1):
            candidate_id = template.id if number == 1 else f"{template.id}_{number}"
            renamed = template.model_copy(update={"id": candidate_id})
            if not self.conflicts(renamed):
                return candidate_id
        return None

    def neighbours(self, template: ThoughtTemplate) -> list[Neighbour]:
        """Existing templates at or above the near-duplicate threshold, closest first
        (pairs listed in `distinct.yaml` excepted)."""
        if not self._ids:
            return []
        vector = self._vector(template)
        similarities = self._vectors @ vector  # the embedder returns unit vectors
        distinct, _ = load_distinct_pairs(self.folder)
        close = [
            Neighbour(other, round(float(similarity), 4))
            for other, similarity in zip(self._ids, similarities.tolist(), strict=True)
            if similarity >= self.threshold and frozenset((other, template.id)) not in distinct
        ]
        return sorted(close, key=lambda n: n.similarity, reverse=True)

    def near_duplicate_rejections(self, template: ThoughtTemplate) -> list[Rejection]:
        return [self.near_duplicate_rejection(n) for n in self.neighbours(template)]

    def near_duplicate_rejection(
        self,
        neighbour: Neighbour,
        advice: str = "extend that template instead, or describe a technique that differs",
        rule: str = "near-duplicate",
    ) -> Rejection:
        return Rejection(
            "technique",
            f"a near-duplicate of {neighbour.id} "
            f"(cosine {neighbour.similarity:.3f} >= {self.threshold}); {advice}",
            "conflict",
            rule,
        )

    def add(self, template: ThoughtTemplate, *, write: bool = True) -> Path:
        """Write the template's YAML file atomically and remember its technique.

        With `write=False` only memory changes (a dry run sees its own additions).

        Raises:
            FileExistsError: the id was taken meanwhile (by another process too).
        """
        vector = self._vector(template)
        with self._lock:
            if template.id in self._templates:
                raise FileExistsError(f"a template with id {template.id!r} exists")
            path = (
                write_template(self.folder, template)
                if write
                else template_path(self.folder, template)
            )
            self._remember(template, vector, path)
        return path

    def replace(self, template: ThoughtTemplate, *, write: bool = True) -> Path:
        """Write a new version of an existing template, keeping the old one in `.history/`.

        Raises:
            KeyError: no template has this id.
        """
        vector = self._vector(template)
        with self._lock:
            old = self._templates[template.id]
            path = self._paths[template.id]
            if write:
                history = self.folder / HISTORY_DIR / old.id / f"v{old.version}.yaml"
                if not history.exists():
                    write_atomic(history, template_yaml(old), replace=False)
                write_atomic(path, template_yaml(template))
            self._remember(template, vector, path)
        return path

    def _set_templates(self, templates: list[ThoughtTemplate]) -> None:
        with self._lock:
            self._templates = {t.id: t for t in templates}
            self._ids = [t.id for t in templates]
            self._paths = {t.id: template_path(self.folder, t) for t in templates}
            missing = [t for t in templates if t.content_hash() not in self._cache]
            if missing:
                vectors = np.asarray(
                    self.embedder.embed([technique_text(t) for t in missing]), dtype=float
                ).reshape(len(missing), -1)
                self._cache.update(
                    (t.content_hash(), v) for t, v in zip(missing, vectors, strict=True)
                )
            hashes = [t.content_hash() for t in templates]
            self._vectors = (
                np.vstack([self._cache[h] for h in hashes]) if hashes else np.zeros((0, 1))
            )

    def _remember(self, template: ThoughtTemplate, vector: np.ndarray, path: Path) -> None:
        self._cache[template.content_hash()] = vector
        if template.id in self._templates:
            row = self._ids.index(template.id)
            self._vectors = self._vectors.copy()
            self._vectors[row] = vector
        else:
            self._ids.append(template.id)
            self._vectors = (
                np.vstack([self._vectors, vector[None, :]])
                if len(self._ids) > 1
                else vector[None, :]
            )
        self._templates[template.id] = template
        self._paths[template.id] = path

    @property
    def _path_set(self) -> set[Path]:
        return set(self._paths.values())

    def _vector(self, template: ThoughtTemplate) -> np.ndarray:
        """The technique's embedding, cached by content hash (so `judge` then `add` embed once)."""
        key = template.content_hash()
        if key not in self._cache:
            self._cache[key] = np.asarray(
                self.embedder.embed([technique_text(template)]), dtype=float
            )[0]
        return self._cache[key]


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_WORDS.split())} | {
    "thirty": "30",
    "fifty": "50",
    "hundred": "100",
}


def check_is_grounded(template: ThoughtTemplate) -> bool:
    """Whether the `check` uses at least one number from the example's problem (in digits
    or as a word). A check that only restates the answer (`sqrt(1)` for "1") proves
    nothing about the worked example. About 5% of the hand-written library derives all
    its numbers (a grid of 7 streets gives `binomial(6 + 4, 4)`), so this rule is for
    machine-written candidates only."""
    given = set(_NUMBER.findall(template.example.problem))
    given |= {
        _NUMBER_WORDS[word]
        for word in re.findall(r"[a-z]+", template.example.problem.lower())
        if word in _NUMBER_WORDS
    }
    return bool(set(_NUMBER.findall(template.check)) & given)


def template_path(folder: Path, template: ThoughtTemplate) -> Path:
    """Where a template lives: `<domain>/<last part of its id>.yaml`."""
    return Path(folder) / template.domain / f"{template.id.rsplit('.', 1)[-1]}.yaml"


def template_yaml(template: ThoughtTemplate) -> str:
    """The template as the library stores it (no empty optional fields)."""
    data = template.model_dump(mode="json", exclude={"schema_version"}, exclude_none=True)
    if not data["provenance"].get("merges"):
        data["provenance"].pop("merges", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_template(folder: Path, template: ThoughtTemplate) -> Path:
    """Write the template as YAML without ever leaving a partial file or replacing one.

    Raises:
        FileExistsError: a file for this id exists already.
    """
    path = template_path(folder, template)
    write_atomic(path, template_yaml(template), replace=False)
    return path
