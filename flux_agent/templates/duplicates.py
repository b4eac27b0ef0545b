"""Near-duplicate detection: templates whose techniques read almost the same.

Two templates are near-duplicates when the cosine similarity of their
*technique text* (name, description, cues and steps; not the worked example,
whose numbers say nothing about the technique) reaches `NEAR_DUPLICATE_THRESHOLD`.
A pair that is close on purpose (say, the same idea for sums and for products)
is listed in the library's `distinct.yaml` with a reason, and is then allowed:

    - pair: [algebra.quadratics.vieta_sum_product, intermediate_algebra.polynomials.vieta_cubic]
      reason: degree 2 versus degree 3; the cubic needs the pairwise-sum relation
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.model import ThoughtTemplate

NEAR_DUPLICATE_THRESHOLD = 0.75
"""Calibrated with all-MiniLM-L6-v2 on technique texts: three templates rewritten in
entirely new words (same technique) scored 0.775, 0.810 and 0.874 against their
originals, while different techniques on one topic (discriminant vs Vieta vs
completing the square; units-digit cycles vs modular powers) scored at most 0.59.
Pairs at or above it must be merged or marked distinct with a reason."""

DISTINCT_FILE = "distinct.yaml"


@dataclass(frozen=True)
class ClosePair:
    """Two templates and the cosine similarity of their technique texts."""

    first: str
    second: str
    similarity: float


def technique_text(template: ThoughtTemplate) -> str:
    """What the technique is, without the worked example."""
    return "\n".join(
        [
            template.name,
            template.description,
            " ".join(template.applies_when),
            " ".join(template.steps),
        ]
    )


def closest_pairs(
    templates: Sequence[ThoughtTemplate], embedder: TextEmbedder, *, limit: int | None = None
) -> list[ClosePair]:
    """Every pair of templates, most similar first (all pairs when `limit` is None)."""
    if len(templates) < 2:
        return []
    vectors = np.asarray(embedder.embed([technique_text(t) for t in templates]), dtype=float)
    similarities = vectors @ vectors.T  # the embedder returns unit vectors
    first, second = np.triu_indices(len(templates), k=1)
    pairs = [
        ClosePair(templates[i].id, templates[j].id, round(float(similarities[i, j]), 4))
        for i, j in zip(first.tolist(), second.tolist(), strict=True)
    ]
    pairs.sort(key=lambda pair: pair.similarity, reverse=True)
    return pairs if limit is None else pairs[:limit]


def load_distinct_pairs(folder: Path) -> tuple[dict[frozenset[str], str], list[str]]:
    """Pairs marked distinct in `distinct.yaml` (pair -> reason), and problems with the file."""
    path = Path(folder) / DISTINCT_FILE
    if not path.exists():
        return {}, []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        return {}, [f"cannot read: {exc}"]
    marked: dict[frozenset[str], str] = {}
    problems = []
    if not isinstance(data, list):
        return {}, ["must be a list of {pair: [id, id], reason: ...}"]
    for number, entry in enumerate(data, 1):
        pair: Any = entry.get("pair") if isinstance(entry, dict) else None
        reason: Any = entry.get("reason") if isinstance(entry, dict) else None
        ids_ok = isinstance(pair, list) and all(isinstance(p, str) for p in pair)
        if not (ids_ok and len(pair) == 2 and len(set(pair)) == 2):
            problems.append(f"entry {number}: 'pair' must list two different template ids")
        elif not (isinstance(reason, str) and len(reason.strip()) >= 10):
            problems.append(f"entry {number}: 'reason' must say why the two differ")
        else:
            marked[frozenset(pair)] = reason
    return marked, problems


def near_duplicates(
    templates: Sequence[ThoughtTemplate],
    embedder: TextEmbedder,
    distinct: dict[frozenset[str], str],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> list[ClosePair]:
    """Pairs at or above `threshold` that are not marked distinct."""
    return [
        pair
        for pair in closest_pairs(templates, embedder)
        if pair.similarity >= threshold and frozenset((pair.first, pair.second)) not in distinct
    ]
