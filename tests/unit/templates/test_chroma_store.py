"""ChromaTemplateStore on a real on-disk Chroma, with a fake embedder instead of the real model.

The fake embeds a hashed bag of words, so a query that shares words with one
template is closest to it, and it records every text it embeds, so the tests can
tell exactly what `index` re-embedded.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import chromadb
import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings

from flux_agent.config import Settings, StoreSettings
from flux_agent.templates.chroma_store import ChromaTemplateStore, open_store
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.store import IndexReport, StoreError, TemplateStore


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors; `texts` lists everything embedded."""

    def __init__(self, name: str = "fake-bow-64", dimension: int = 64) -> None:
        self.name = name
        self.dimension = dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        vector[0] = 0.1  # never the zero vector, whose cosine distance is undefined
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            slot = int(hashlib.sha256(word.encode()).hexdigest(), 16) % (self.dimension - 1)
            vector[slot + 1] += 1.0
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector]


TOPICS = {
    "algebra.quadratics.vieta_sums": "quadratic roots sum product coefficients vieta",
    "geometry.triangles.pythagorean_legs": "right triangle hypotenuse legs pythagorean",
    "number_theory.powers.last_digit_cycle": "last digit power cycle units exponent",
    "counting_probability.subsets.choose_committee": "committee choose subsets combinations",
}


def make_template(template_id: str, words: str, **changes: object) -> ThoughtTemplate:
    domain = template_id.split(".")[0]
    data = {
        "id": template_id,
        "name": f"Technique about {words}",
        "domain": domain,
        "tags": [domain.replace("_", "-")],
        "description": f"A reusable technique for problems about {words}.",
        "applies_when": [f"The problem mentions {words}.", "A direct computation is too long."],
        "steps": ["Read the problem carefully.", f"Apply the idea of {words}.", "Check it."],
        "pitfalls": ["Forgetting to check the final answer."],
        "example": {
            "problem": f"A sample problem about {words}.",
            "solution": "Apply the steps one by one and simplify the result.",
            "answer": "1",
        },
        "check": "1",
        "provenance": {"date": date(2026, 1, 1)},
    }
    data.update(changes)
    return ThoughtTemplate.model_validate(data)


@pytest.fixture
def templates() -> list[ThoughtTemplate]:
    return [make_template(template_id, words) for template_id, words in TOPICS.items()]


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


def _client(path: Path) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )


@pytest.fixture
def store(tmp_path: Path, embedder: FakeEmbedder) -> ChromaTemplateStore:
    return ChromaTemplateStore(_client(tmp_path / "chroma"), embedder)


def test_store_implements_the_protocol(store: ChromaTemplateStore) -> None:
    assert isinstance(store, TemplateStore)


def test_first_index_adds_everything(store, embedder, templates) -> None:
    report = store.index(templates)

    assert report == IndexReport(added=tuple(TOPICS), unchanged=0)
    assert store.count() == len(templates)
    assert embedder.texts == [t.search_text() for t in templates]


def test_second_index_of_the_same_templates_embeds_nothing(store, embedder, templates) -> None:
    store.index(templates)
    embedder.texts.clear()

    report = store.index(templates)

    assert report == IndexReport(unchanged=len(templates))
    assert embedder.texts == []


def test_changed_template_is_the_only_one_reembedded(store, embedder, templates) -> None:
    store.index(templates)
    embedder.texts.clear()
    changed = make_template(
        templates[1].id, TOPICS[templates[1].id], description="Now also about circles and arcs."
    )

    report = store.index([templates[0], changed, *templates[2:]])

    assert report == IndexReport(updated=(changed.id,), unchanged=len(templates) - 1)
    assert embedder.texts == [changed.search_text()]
    assert store.get(changed.id) == changed


def test_templates_missing_from_the_list_are_pruned(store, templates) -> None:
    store.index(templates)

    report = store.index(templates[:2])

    assert report == IndexReport(removed=tuple(sorted(t.id for t in templates[2:])), unchanged=2)
    assert store.count() == 2
    assert store.get(templates[3].id) is None


def test_without_prune_missing_templates_stay(store, templates) -> None:
    store.index(templates)

    report = store.index(templates[:1], prune=False)

    assert report == IndexReport(unchanged=1)
    assert store.count() == len(templates)


def test_duplicate_ids_are_rejected(store, templates) -> None:
    with pytest.raises(ValueError, match=re.escape(f"duplicate template ids: {templates[0].id}")):
        store.index([templates[0], templates[0]])
    assert store.count() == 0


@pytest.mark.parametrize("template_id", list(TOPICS))
def test_search_ranks_the_template_sharing_the_query_words_first(
    store, templates, template_id
) -> None:
    store.index(templates)

    hits = store.search(f"Which {TOPICS[template_id]} question is this?", k=4)

    assert hits[0].template.id == template_id
    assert len(hits) == 4
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1]
    assert all(-1.0 <= score <= 1.0 for score in scores)


def test_score_is_cosine_similarity(store, embedder, templates) -> None:
    store.index(templates)
    query = templates[0].search_text()

    [hit] = store.search(query, k=1)

    assert hit.template.id == templates[0].id
    assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_search_returns_at_most_k_and_at_most_what_is_stored(store, templates) -> None:
    store.index(templates)

    assert len(store.search("roots", k=2)) == 2
    assert len(store.search("roots", k=50)) == len(templates)


def test_domain_filter_only_returns_that_domain(store, templates) -> None:
    store.index([*templates, make_template("geometry.circles.inscribed_angle", "circle arc")])

    hits = store.search(TOPICS["algebra.quadratics.vieta_sums"], k=5, domain="geometry")

    assert {hit.template.domain for hit in hits} == {"geometry"}
    assert len(hits) == 2


def test_domain_filter_with_no_templates_in_it_is_empty(store, templates) -> None:
    store.index(templates)

    assert store.search("roots", domain="precalculus") == []


def test_get_round_trips_the_whole_template(store, templates) -> None:
    store.index(templates)

    fetched = store.get(templates[2].id)

    assert fetched == templates[2]
    assert fetched is not None
    assert fetched.content_hash() == templates[2].content_hash()
    assert fetched.example.solution == templates[2].example.solution


def test_get_unknown_id_is_none(store, templates) -> None:
    store.index(templates)

    assert store.get("algebra.nothing.here") is None
    assert store.get("") is None


def test_search_on_an_empty_store_says_to_build_the_library(store) -> None:
    with pytest.raises(StoreError, match="flux library build"):
        store.search("sum of the roots")


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_rejected(store, templates, query) -> None:
    store.index(templates)

    with pytest.raises(ValueError, match="empty"):
        store.search(query)


def test_bad_k_and_unknown_domain_are_rejected(store, templates) -> None:
    store.index(templates)

    with pytest.raises(ValueError, match="k must be"):
        store.search("roots", k=0)
    with pytest.raises(ValueError, match="unknown domain 'algbra'"):
        store.search("roots", domain="algbra")


def test_index_survives_reopening_the_folder(tmp_path, templates) -> None:
    first = ChromaTemplateStore(_client(tmp_path / "chroma"), FakeEmbedder())
    first.index(templates)
    # Chroma shares one in-process system per path; drop it so the reopen reads the disk.
    SharedSystemClient.clear_system_cache()
    embedder = FakeEmbedder()

    reopened = ChromaTemplateStore(_client(tmp_path / "chroma"), embedder)

    assert reopened.count() == len(templates)
    assert reopened.index(templates) == IndexReport(unchanged=len(templates))
    assert embedder.texts == []
    assert reopened.get(templates[0].id) == templates[0]


def test_collection_records_the_embedding_model(store, templates) -> None:
    store.index(templates)

    assert store.indexed_with == "fake-bow-64"
    assert store.embedding_model == "fake-bow-64"


def test_new_embedding_model_reembeds_everything_on_index(tmp_path, templates) -> None:
    ChromaTemplateStore(_client(tmp_path / "chroma"), FakeEmbedder()).index(templates[:3])
    other = FakeEmbedder(name="fake-bow-32", dimension=32)
    store = ChromaTemplateStore(_client(tmp_path / "chroma"), other)
    assert store.indexed_with == "fake-bow-64"

    report = store.index(templates[1:])

    assert report == IndexReport(
        added=(templates[3].id,),
        updated=tuple(t.id for t in templates[1:3]),
        removed=(templates[0].id,),
        unchanged=0,
    )
    assert sorted(other.texts) == sorted(t.search_text() for t in templates[1:])
    assert store.indexed_with == "fake-bow-32"
    assert store.search(TOPICS[templates[3].id], k=1)[0].template.id == templates[3].id


def test_new_embedding_model_reembeds_stored_templates_on_search(tmp_path, templates) -> None:
    ChromaTemplateStore(_client(tmp_path / "chroma"), FakeEmbedder()).index(templates)
    other = FakeEmbedder(name="fake-bow-32", dimension=32)
    store = ChromaTemplateStore(_client(tmp_path / "chroma"), other)

    hits = store.search(TOPICS[templates[2].id], k=2)

    assert hits[0].template == templates[2]
    assert store.indexed_with == "fake-bow-32"
    assert store.count() == len(templates)
    assert len(other.texts) == len(templates) + 1  # every template, then the query


def test_unchanged_model_after_reembedding_embeds_nothing(tmp_path, templates) -> None:
    ChromaTemplateStore(_client(tmp_path / "chroma"), FakeEmbedder()).index(templates)
    other = FakeEmbedder(name="fake-bow-32", dimension=32)
    ChromaTemplateStore(_client(tmp_path / "chroma"), other).index(templates)
    other.texts.clear()

    report = ChromaTemplateStore(_client(tmp_path / "chroma"), other).index(templates)

    assert report == IndexReport(unchanged=len(templates))
    assert other.texts == []


def test_collection_with_another_distance_is_refused(tmp_path) -> None:
    client = _client(tmp_path / "chroma")
    client.create_collection("flux_templates", configuration={"hnsw": {"space": "l2"}})

    with pytest.raises(StoreError, match="uses l2 distance"):
        ChromaTemplateStore(client, FakeEmbedder())


def test_open_store_creates_the_folder_and_uses_the_collection(tmp_path, templates) -> None:
    settings = Settings(data_dir=tmp_path / "data", store=StoreSettings(collection="my_templates"))

    store = open_store(settings, embedder=FakeEmbedder())
    store.index(templates)

    assert (tmp_path / "data" / "chroma").is_dir()
    client = _client(tmp_path / "data" / "chroma")
    assert client.get_collection("my_templates").count() == len(templates)


def test_open_store_without_a_server_raises_store_error(unused_port: int) -> None:
    settings = Settings(store=StoreSettings(kind="http", port=unused_port))

    with pytest.raises(
        StoreError, match=re.escape(f"cannot connect to Chroma at 127.0.0.1:{unused_port}")
    ):
        open_store(settings, embedder=FakeEmbedder())


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
