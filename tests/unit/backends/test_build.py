"""`build_backend` and `build_backends`: settings in, the right backend out, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flux_agent.backends import (
    BackendError,
    LlamaCppBackend,
    LLMBackend,
    OpenAIHTTPBackend,
    build_backend,
    build_backends,
    embedded_model_path,
)
from flux_agent.config import BackendSettings


def test_embedded_settings_build_llama_cpp_on_the_shipped_model() -> None:
    backend = build_backend(BackendSettings.from_spec("embedded"))
    assert isinstance(backend, LlamaCppBackend)
    assert isinstance(backend, LLMBackend)
    assert backend.model_path == embedded_model_path().resolve()
    assert backend.model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert backend.model_path.is_file()


def test_gguf_path_settings_build_llama_cpp_on_that_file(tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")  # only checked for existence until the first request
    backend = build_backend(
        BackendSettings(kind="llama_cpp", model=str(model), context_length=1024, threads=1)
    )
    assert isinstance(backend, LlamaCppBackend)
    assert backend.model_path == model.resolve()
    assert (backend.context_length, backend.threads) == (1024, 1)


def test_missing_gguf_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(BackendError, match="not found") as error:
        build_backend(BackendSettings.from_spec(str(missing)))
    assert str(missing) in str(error.value)


def test_missing_llama_cpp_package_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the package unfindable
    with pytest.raises(BackendError, match="llama-cpp-python"):
        build_backend(BackendSettings())


def test_http_settings_build_the_openai_backend() -> None:
    settings = BackendSettings.from_spec(
        "http://127.0.0.1:9/v1/?model=smol&structured_output=llama_cpp"
    )
    backend = build_backend(settings)
    assert isinstance(backend, OpenAIHTTPBackend)
    assert isinstance(backend, LLMBackend)
    assert backend.base_url == "http://127.0.0.1:9/v1"
    assert backend.model == "smol"
    assert backend.structured_output == "llama_cpp"


def test_vllm_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ImportError
    with pytest.raises(BackendError, match=r"pip install 'flux-agent\[vllm\]'"):
        build_backend(BackendSettings.from_spec("vllm:Qwen/Qwen2.5-0.5B-Instruct"))


def test_equal_settings_share_one_backend() -> None:
    navigator, solver = build_backends(BackendSettings(), BackendSettings.from_spec("embedded"))
    assert navigator is solver


def test_different_settings_get_their_own_backends() -> None:
    http = BackendSettings.from_spec("http://127.0.0.1:9/v1?model=a")
    navigator, solver = build_backends(http, BackendSettings())
    assert navigator is not solver
    assert isinstance(navigator, OpenAIHTTPBackend)
    assert isinstance(solver, LlamaCppBackend)
    other_model = BackendSettings.from_spec("http://127.0.0.1:9/v1?model=b")
    first, second = build_backends(http, other_model)
    assert first is not second
