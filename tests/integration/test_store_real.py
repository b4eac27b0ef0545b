"""The template store with everything real: the bundled embedding model, Chroma on
disk, and the shipped template library."""

from __future__ import annotations

import math
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from flux_agent.config import Settings
from flux_agent.templates.chroma_store import ChromaTemplateStore, open_store
from flux_agent.templates.embeddings import (
    BUNDLED_MODEL_NAME,
    Embedder,
    EmbeddingModelError,
    load_embedder,
)
from flux_agent.templates.library import load_library
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import IndexReport

pytestmark = pytest.mark.integration

VIETA = "algebra.quadratics.vieta_sum_product"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder(None)


@pytest.fixture(scope="module")
def library() -> list[ThoughtTemplate]:
    return load_library()


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_bundled_model_gives_unit_vectors_that_mean_something(embedder: Embedder) -> None:
    roots, vieta, triangle = embedder.embed(
        [
            "What is the sum of the roots of x^2 - 5x + 6 = 0?",
            "The sum of the roots of a quadratic equals -b/a and their product c/a.",
            "Find the area of a triangle with base 4 and height 7.",
        ]
    )

    assert embedder.name == BUNDLED_MODEL_NAME
    assert len(roots) == 384
    assert math.sqrt(sum(x * x for x in roots)) == pytest.approx(1.0, abs=1e-4)
    assert _cosine(roots, vieta) > _cosine(roots, triangle) + 0.1


def test_shipped_library_is_indexed_and_found(
    tmp_path: Path, embedder: Embedder, library: list[ThoughtTemplate]
) -> None:
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = ChromaTemplateStore(client, embedder)

    report = store.index(library)
    hits = store.search("What is the sum of the roots of x^2 - 5x + 6 = 0?", k=3)
    again = store.index(library)

    assert sorted(report.added) == sorted(t.id for t in library)
    assert store.count() == len(library)
    assert VIETA in [hit.template.id for hit in hits]
    assert hits[0].score >= hits[-1].score
    assert again == IndexReport(unchanged=len(library))


def test_open_store_loads_the_bundled_model_by_default(
    tmp_path: Path, library: list[ThoughtTemplate]
) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    store.index(library)

    hits = store.search("r and s are the roots of 3x^2 + 2x - 1 = 0; find 1/r + 1/s", k=3)

    assert store.embedding_model == BUNDLED_MODEL_NAME
    assert store.indexed_with == BUNDLED_MODEL_NAME
    assert VIETA in [hit.template.id for hit in hits]


def test_model_not_on_disk_fails_offline_with_a_clear_error() -> None:
    with pytest.raises(EmbeddingModelError, match="cannot load embedding model 'flux-agent/none'"):
        load_embedder("flux-agent/none")
