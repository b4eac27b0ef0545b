"""Admitting a new template into the library: the gate, and the atomic write.

A candidate (from the API today, from library growth later) gets in only if it
passes every rule `flux library validate` applies to the library as a whole:
the schema, the tag vocabulary, a `check` that evaluates to the example's
answer, a fresh id, and no near-duplicate among the existing techniques.
`Admission` keeps the library's technique vectors in memory, so judging one
candidate embeds one text instead of the whole library.

    admission = Admission.load(folder, embedder)
    rejections = admission.judge(template, sandbox)
    if not rejections:
        path = admission.add(template)
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from flux_agent.templates.duplicates import (
    NEAR_DUPLICATE_THRESHOLD,
    load_distinct_pairs,
    technique_text,
)
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.library import (
    TAGS_FILE,
    check_example,
    load_library,
    load_tag_vocabulary,
)
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.verify.sandbox import Sandbox


@dataclass(frozen=True)
class Rejection:
    """Why a candidate was refused: the field at fault and a sentence a person can act on.

    `kind` is "invalid" for a template that breaks a rule on its own, "conflict" for one
    that clashes with the library (its id is taken, or it repeats a technique).
    """

    field: str
    message: str
    kind: Literal["invalid", "conflict"] = "invalid"


class Admission:
    """The library's templates and technique vectors, and the rules a newcomer must pass."""

    def __init__(
        self,
        folder: Path,
        templates: list[ThoughtTemplate],
        embedder: TextEmbedder,
        threshold: float = NEAR_DUPLICATE_THRESHOLD,
    ) -> None:
        self.folder = Path(folder)
        self.embedder = embedder
        self.threshold = threshold
        self._templates = {t.id: t for t in templates}
        self._ids = [t.id for t in templates]
        self._vectors = np.asarray(
            embedder.embed([technique_text(t) for t in templates]), dtype=float
        ).reshape(len(templates), -1)
        self._lock = threading.Lock()
        self._last_vector: tuple[str, np.ndarray] | None = None

    @classmethod
    def load(cls, folder: Path, embedder: TextEmbedder) -> Admission:
        """Read the library (it must be valid) and embed its techniques (seconds)."""
        return cls(folder, load_library(folder), embedder)

    def get(self, template_id: str) -> ThoughtTemplate | None:
        return self._templates.get(template_id)

    def __len__(self) -> int:
        return len(self._templates)

    def judge(self, template: ThoughtTemplate, sandbox: Sandbox) -> list[Rejection]:
        """Every rule the template breaks (empty: it may be added)."""
        rejections = []
        vocabulary, _ = load_tag_vocabulary(self.folder)
        if vocabulary is not None:
            unknown = [tag for tag in template.tags if tag not in vocabulary]
            if unknown:
                rejections.append(
                    Rejection("tags", f"not in the tag vocabulary ({TAGS_FILE}): {unknown}")
                )
        passed, why = check_example(template, sandbox)
        if not passed:
            rejections.append(Rejection("check", why))
        if template.id in self._templates:
            rejections.append(Rejection("id", "a template with this id exists", "conflict"))
        rejections.extend(self._near_duplicates(template))
        return rejections

    def add(self, template: ThoughtTemplate) -> Path:
        """Write the template's YAML file atomically and remember its technique.

        Raises:
            FileExistsError: the id was taken meanwhile (by another process too).
        """
        vector = self._vector(template)[None, :]
        with self._lock:
            if template.id in self._templates:
                raise FileExistsError(f"a template with id {template.id!r} exists")
            path = write_template(self.folder, template)
            self._templates[template.id] = template
            self._ids.append(template.id)
            self._vectors = np.vstack([self._vectors, vector]) if len(self._ids) > 1 else vector
        return path

    def _vector(self, template: ThoughtTemplate) -> np.ndarray:
        """The technique's embedding; the last one is kept, so `judge` then `add` embed once."""
        key = template.content_hash()
        if self._last_vector is None or self._last_vector[0] != key:
            vector = np.asarray(self.embedder.embed([technique_text(template)]), dtype=float)[0]
            self._last_vector = (key, vector)
        return self._last_vector[1]

    def _near_duplicates(self, template: ThoughtTemplate) -> list[Rejection]:
        if not self._ids:
            return []
        vector = self._vector(template)
        similarities = self._vectors @ vector  # the embedder returns unit vectors
        distinct, _ = load_distinct_pairs(self.folder)
        close = [
            (float(similarity), other)
            for other, similarity in zip(self._ids, similarities.tolist(), strict=True)
            if similarity >= self.threshold
            and other != template.id
            and frozenset((other, template.id)) not in distinct
        ]
        return [
            Rejection(
                "technique",
                f"a near-duplicate of {other} (cosine {similarity:.3f} >= {self.threshold}); "
                "extend that template instead, or describe a technique that differs",
                "conflict",
            )
            for similarity, other in sorted(close, reverse=True)
        ]


def template_path(folder: Path, template: ThoughtTemplate) -> Path:
    """Where a template lives: `<domain>/<last part of its id>.yaml`."""
    return Path(folder) / template.domain / f"{template.id.rsplit('.', 1)[-1]}.yaml"


def write_template(folder: Path, template: ThoughtTemplate) -> Path:
    """Write the template as YAML without ever leaving a partial file or replacing one.

    Raises:
        FileExistsError: a file for this id exists already.
    """
    path = template_path(folder, template)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        template.model_dump(mode="json", exclude={"schema_version"}),
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        # A hard link fails if the name exists, so two writers cannot both win.
        os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path
