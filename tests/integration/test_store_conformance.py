"""One behaviour suite for every `TemplateStore` that can run here.

Parametrised over Chroma on disk (`PersistentClient`) and a Chroma server over
HTTP (`chroma run`, started on 127.0.0.1 for this module and stopped after it).
Every store is built by `open_store` from `Settings`, with the real bundled
embedding model and the shipped template library. The model's vectors are
cached by text for the module: the stores are under test here, not the model,
and re-embedding the library for every test costs seconds each on a CPU.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from flux_agent.config import Settings, StoreSettings
from flux_agent.templates.chroma_store import open_store
from flux_agent.templates.embeddings import Embedder, load_embedder
from flux_agent.templates.library import load_library
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import IndexReport, StoreError, TemplateStore

pytestmark = pytest.mark.integration

VIETA = "algebra.quadratics.vieta_sum_product"

OpenStore = Callable[[], TemplateStore]


class CachedEmbedder:
    """The real model, remembering each text's vector."""

    def __init__(self, model: Embedder) -> None:
        self._model = model
        self._vectors: dict[str, list[float]] = {}
        self.name = model.name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        self._vectors.update(zip(missing, self._model.embed(missing), strict=True))
        return [self._vectors[t] for t in texts]


@pytest.fixture(scope="module")
def embedder() -> CachedEmbedder:
    return CachedEmbedder(load_embedder(None))


@pytest.fixture(scope="module")
def library() -> list[ThoughtTemplate]:
    return load_library()


@pytest.fixture(params=["persistent", "http"])
def open_fresh(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: CachedEmbedder
) -> OpenStore:
    """Opens (and reopens) a store on a collection no other test uses."""
    collection = f"conformance_{uuid.uuid4().hex[:12]}"
    if request.param == "http":
        host, port = request.getfixturevalue("chroma_server")
        store_settings = StoreSettings(kind="http", host=host, port=port, collection=collection)
    else:
        store_settings = StoreSettings(kind="persistent", collection=collection)
    settings = Settings(data_dir=tmp_path, store=store_settings)
    return lambda: open_store(settings, embedder=embedder)


def _edited(template: ThoughtTemplate, extra: str) -> ThoughtTemplate:
    data = template.model_dump()
    data["description"] = f"{template.description} {extra}"
    return ThoughtTemplate.model_validate(data)


def test_is_a_template_store(open_fresh: OpenStore) -> None:
    assert isinstance(open_fresh(), TemplateStore)


def test_index_is_incremental(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()

    first = store.index(library)
    second = store.index(library)

    assert sorted(first.added) == sorted(t.id for t in library)
    assert (first.updated, first.removed, first.unchanged) == ((), (), 0)
    assert second == IndexReport(unchanged=len(library))
    assert store.count() == len(library)


def test_changed_template_is_updated(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()
    store.index(library)
    changed = _edited(library[0], "Zebras and xylophones appear in its marker sentence.")

    report = store.index([changed, *library[1:]])

    assert report == IndexReport(updated=(changed.id,), unchanged=len(library) - 1)
    assert store.get(changed.id) == changed
    assert store.search(changed.search_text(), k=1)[0].template == changed


def test_prune_and_keep(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()
    store.index(library)

    kept = store.index(library[:2], prune=False)
    pruned = store.index(library[:2])

    assert kept == IndexReport(unchanged=2)
    assert sorted(pruned.removed) == sorted(t.id for t in library[2:])
    assert store.count() == 2
    assert store.get(library[2].id) is None


def test_get_round_trips(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()
    store.index(library)

    assert [store.get(t.id) for t in library] == library
    assert store.get("algebra.no_such.template") is None


def test_search_finds_each_template_by_its_own_text(
    open_fresh: OpenStore, library: list[ThoughtTemplate]
) -> None:
    store = open_fresh()
    store.index(library)

    for template in library:
        hits = store.search(template.search_text(), k=3)
        assert hits[0].template.id == template.id
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_finds_vieta_for_a_roots_question(
    open_fresh: OpenStore, library: list[ThoughtTemplate]
) -> None:
    store = open_fresh()
    store.index(library)

    hits = store.search("What is the sum of the roots of x^2 - 5x + 6 = 0?", k=3)

    assert VIETA in [hit.template.id for hit in hits]


def test_domain_filter(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()
    store.index(library)
    in_domain = [t for t in library if t.domain == "number_theory"]

    hits = store.search(
        "What is the sum of the roots of x^2 - 5x + 6 = 0?", k=len(library), domain="number_theory"
    )

    assert sorted(h.template.id for h in hits) == sorted(t.id for t in in_domain)


def test_empty_store_and_empty_query(open_fresh: OpenStore, library: list[ThoughtTemplate]) -> None:
    store = open_fresh()

    with pytest.raises(StoreError, match="flux library build"):
        store.search("sum of roots")
    store.index(library[:1])
    with pytest.raises(ValueError, match="empty"):
        store.search("  ")


def test_reopened_store_keeps_its_index(
    open_fresh: OpenStore, library: list[ThoughtTemplate]
) -> None:
    open_fresh().index(library)

    reopened = open_fresh()

    assert reopened.count() == len(library)
    assert reopened.index(library) == IndexReport(unchanged=len(library))
