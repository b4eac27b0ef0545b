"""`ChromaTemplateStore`: the `TemplateStore` on Chroma, on disk or over HTTP.

Each template is one Chroma record: its id, the embedding of `search_text()`
(computed here, never by Chroma), and metadata holding the full template JSON,
its `content_hash()`, domain and name. `get` and `search` therefore return
`ThoughtTemplate` objects without reading the YAML library.

The collection records which embedding model produced its vectors. Opened with
a different model, the store re-embeds everything on the next `index` or
`search` (from the given templates, or from the JSON it holds) instead of
mixing vectors from two models.

`open_store(settings)` picks the client: `chromadb.PersistentClient` on
`settings.chroma_path`, or `chromadb.HttpClient` when `store.kind == "http"`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import chromadb
import httpx
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, NotFoundError
from pydantic import ValidationError

from flux_agent.templates.embeddings import TextEmbedder, load_embedder
from flux_agent.templates.model import DOMAINS, ThoughtTemplate
from flux_agent.templates.store import IndexReport, SearchHit, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection

    from flux_agent.config import Settings

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "flux_templates"
BUILD_HINT = "run `flux library build`"
_MODEL_KEY = "embedding_model"
_LIBRARY_KEY = "library_fingerprint"
_SPACE = "cosine"
_CONFIGURATION: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}


class ChromaTemplateStore:
    """Templates in one Chroma collection, embedded by `embedder`, searched by cosine similarity.

    Args:
        client: any Chroma client (persistent, HTTP, in-memory).
        embedder: computes the vectors; its `name` is recorded in the collection.
        collection: the collection name (created on first use, with cosine distance).

    Raises:
        StoreError: if Chroma is unreachable or the collection uses another distance.
    """

    def __init__(
        self, client: ClientAPI, embedder: TextEmbedder, collection: str = DEFAULT_COLLECTION
    ) -> None:
        self._client = client
        self._embedder = embedder
        self._collection_name = collection
        self._max_batch: int | None = None
        with _chroma_errors(f"open collection {collection!r}"):
            self._collection = self._open_collection()

    @property
    def embedding_model(self) -> str:
        """The name of the model this store embeds with."""
        return self._embedder.name

    @property
    def indexed_with(self) -> str | None:
        """The model the stored vectors came from (None for a collection made elsewhere)."""
        value = (self._collection.metadata or {}).get(_MODEL_KEY)
        return value if isinstance(value, str) else None

    @property
    def library_fingerprint(self) -> str | None:
        """The fingerprint of the library folder this index last caught up with (see journal)."""
        with _chroma_errors("read the collection"):
            metadata = self._client.get_collection(
                self._collection_name, embedding_function=None
            ).metadata
        value = (metadata or {}).get(_LIBRARY_KEY)
        return value if isinstance(value, str) else None

    def mark_library(self, fingerprint: str) -> None:
        """Record that the index now holds the library whose fingerprint this is."""
        with _chroma_errors("update the collection"):
            self._collection = self._client.get_collection(
                self._collection_name, embedding_function=None
            )
            metadata = dict(self._collection.metadata or {})
            metadata[_LIBRARY_KEY] = fingerprint
            self._collection.modify(metadata=metadata)

    def index(self, templates: Sequence[ThoughtTemplate], *, prune: bool = True) -> IndexReport:
        """Embed new and changed templates (by content hash); with `prune`, drop the others.

        Raises:
            ValueError: if two templates share an id.
            StoreError: if Chroma fails.
        """
        ids = [template.id for template in templates]
        duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate template ids: {', '.join(duplicates)}")
        with _chroma_errors("index templates"):
            stored = self._stored_hashes()
            if self.indexed_with != self.embedding_model:
                return self._reindex_for_new_model(templates, stored, prune=prune)
            added = [t for t in templates if t.id not in stored]
            updated = [t for t in templates if t.id in stored and stored[t.id] != t.content_hash()]
            self._upsert(added + updated)
            removed = sorted(set(stored) - set(ids)) if prune else []
            if removed:
                self._collection.delete(ids=removed)
        return IndexReport(
            added=tuple(t.id for t in added),
            updated=tuple(t.id for t in updated),
            removed=tuple(removed),
            unchanged=len(templates) - len(added) - len(updated),
        )

    def search(self, query: str, k: int = 5, domain: str | None = None) -> list[SearchHit]:
        """The `k` templates closest to `query`, best first; score is cosine similarity.

        Raises:
            ValueError: for an empty query, k < 1, or an unknown domain.
            StoreError: if nothing is indexed yet, or Chroma fails.
        """
        if not query.strip():
            raise ValueError("the search query is empty")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if domain is not None and domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
        with _chroma_errors("search templates"):
            if self.indexed_with != self.embedding_model:
                self._reindex_for_new_model(self._stored_templates(), {}, prune=True)
            total = self._collection.count()
            if total == 0:
                raise StoreError(
                    f"the template store (collection {self._collection_name!r}) is empty: "
                    f"{BUILD_HINT} to index the template library"
                )
            vectors: list[Sequence[float]] = list(self._embedder.embed([query]))
            result = self._collection.query(
                query_embeddings=vectors,
                n_results=min(k, total),
                where={"domain": domain} if domain else None,
                include=["metadatas", "distances"],
            )
        ids = result["ids"][0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        hits = [
            SearchHit(_template_from(record_id, metadata), 1.0 - float(distance))
            for record_id, metadata, distance in zip(ids, metadatas, distances, strict=True)
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)

    def get(self, template_id: str) -> ThoughtTemplate | None:
        """The stored template with this id, or None."""
        if not template_id:
            return None
        with _chroma_errors("read a template"):
            result = self._collection.get(ids=[template_id], include=["metadatas"])
        if not result["ids"]:
            return None
        return _template_from(template_id, (result["metadatas"] or [{}])[0])

    def count(self) -> int:
        """How many templates are indexed."""
        with _chroma_errors("count templates"):
            return self._collection.count()

    def __repr__(self) -> str:
        return f"ChromaTemplateStore({self._collection_name!r}, embedder={self.embedding_model!r})"

    def _open_collection(self) -> Collection:
        try:
            collection = self._client.get_collection(self._collection_name, embedding_function=None)
        except NotFoundError:
            return self._create_collection()
        # The raw JSON: `.configuration` warns about the "legacy" (absent) embedding function.
        space = ((collection.configuration_json or {}).get("hnsw") or {}).get("space", _SPACE)
        if space != _SPACE:
            raise StoreError(
                f"collection {self._collection_name!r} uses {space} distance, not {_SPACE}; "
                "delete it or set store.collection to another name"
            )
        return collection

    def _create_collection(self) -> Collection:
        return self._client.create_collection(
            self._collection_name,
            configuration=_CONFIGURATION,
            metadata={_MODEL_KEY: self.embedding_model},
            embedding_function=None,
        )

    def _reindex_for_new_model(
        self,
        templates: Sequence[ThoughtTemplate],
        stored: dict[str, str],
        *,
        prune: bool,
    ) -> IndexReport:
        # The collection is dropped and rebuilt: a new model may have another dimension.
        logger.warning(
            "collection %r was embedded with %s; re-embedding every template with %s",
            self._collection_name,
            self.indexed_with,
            self.embedding_model,
        )
        given = {template.id for template in templates}
        kept = list(templates)
        if not prune:
            kept += [t for t in self._stored_templates() if t.id not in given]
        # Embed before dropping anything, so a failing model leaves the old index in place.
        vectors = self._embedder.embed([t.search_text() for t in kept])
        self._client.delete_collection(self._collection_name)
        self._collection = self._create_collection()
        self._upsert(kept, vectors)
        return IndexReport(
            added=tuple(t.id for t in templates if t.id not in stored),
            updated=tuple(t.id for t in templates if t.id in stored),
            removed=tuple(sorted(set(stored) - given)) if prune else (),
            unchanged=0,
        )

    def _stored_hashes(self) -> dict[str, str]:
        result = self._collection.get(include=["metadatas"])
        metadatas = result["metadatas"] or [{}] * len(result["ids"])
        return {
            record_id: str((metadata or {}).get("content_hash", ""))
            for record_id, metadata in zip(result["ids"], metadatas, strict=True)
        }

    def _stored_templates(self) -> list[ThoughtTemplate]:
        result = self._collection.get(include=["metadatas"])
        metadatas = result["metadatas"] or [{}] * len(result["ids"])
        templates = []
        for record_id, metadata in zip(result["ids"], metadatas, strict=True):
            try:
                templates.append(_template_from(record_id, metadata))
            except StoreError as exc:
                logger.warning("dropping unreadable stored template: %s", exc)
        return templates

    def _upsert(
        self, templates: Sequence[ThoughtTemplate], vectors: list[list[float]] | None = None
    ) -> None:
        if not templates:
            return
        if vectors is None:
            vectors = self._embedder.embed([t.search_text() for t in templates])
        if self._max_batch is None:
            self._max_batch = self._client.get_max_batch_size()
        for start in range(0, len(templates), self._max_batch):
            batch = templates[start : start + self._max_batch]
            embeddings: list[Sequence[float]] = list(vectors[start : start + self._max_batch])
            self._collection.upsert(
                ids=[t.id for t in batch],
                embeddings=embeddings,
                documents=[t.search_text() for t in batch],
                metadatas=[_metadata_for(t) for t in batch],
            )


def open_store(settings: Settings, embedder: TextEmbedder | None = None) -> ChromaTemplateStore:
    """The store described by `settings.store`, with the configured embedding model.

    Args:
        settings: `store.kind` "persistent" uses `settings.chroma_path` (created if
            missing); "http" connects to `store.host:store.port`.
        embedder: an already loaded model; default loads `store.embedding_model`.

    Raises:
        StoreError: if the folder cannot be created or the server does not answer.
    """
    store = settings.store
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if store.kind == "http":
        with _chroma_errors(f"connect to Chroma at {store.host}:{store.port}"):
            client = chromadb.HttpClient(host=store.host, port=store.port, settings=chroma_settings)
    else:
        path = settings.chroma_path
        with _chroma_errors(f"open Chroma in {path}"):
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    embedder = embedder or load_embedder(store.embedding_model)
    return ChromaTemplateStore(client, embedder, collection=store.collection)


def _metadata_for(template: ThoughtTemplate) -> dict[str, str]:
    return {
        "template": template.model_dump_json(),
        "content_hash": template.content_hash(),
        "domain": template.domain,
        "name": template.name,
    }


def _template_from(record_id: str, metadata: Any) -> ThoughtTemplate:
    try:
        return ThoughtTemplate.model_validate_json(metadata["template"])
    except (KeyError, TypeError, ValidationError) as exc:
        raise StoreError(
            f"stored template {record_id!r} cannot be read ({exc}); {BUILD_HINT} to re-index"
        ) from exc


@contextmanager
def _chroma_errors(action: str) -> Iterator[None]:
    """Turn Chroma and connection failures into a `StoreError` that says what failed."""
    try:
        yield
    except StoreError:
        raise
    except (ChromaError, ValueError, OSError, httpx.HTTPError) as exc:
        raise StoreError(f"cannot {action}: {exc}") from exc
