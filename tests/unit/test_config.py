"""Backend specs and settings validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flux_agent.config import AgentSettings, BackendSettings, Settings


def test_embedded_is_the_default():
    spec = BackendSettings.from_spec("embedded")
    assert spec.kind == "llama_cpp" and spec.model is None
    assert Settings().navigator == spec


def test_http_spec_with_options(monkeypatch):
    monkeypatch.setenv("FLUX_LLM_API_KEY", "k")
    spec = BackendSettings.from_spec(
        "http://127.0.0.1:8000/v1/?model=qwen&structured_output=llama_cpp"
    )
    assert spec.kind == "openai"
    assert spec.base_url == "http://127.0.0.1:8000/v1"
    assert spec.model == "qwen" and spec.structured_output == "llama_cpp"
    assert spec.api_key == "k"


def test_gguf_and_vllm_specs():
    assert BackendSettings.from_spec("/models/q.gguf").model == "/models/q.gguf"
    spec = BackendSettings.from_spec("vllm:Qwen/Qwen2.5-7B-Instruct")
    assert spec.kind == "vllm" and spec.model == "Qwen/Qwen2.5-7B-Instruct"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("ftp://x", "cannot read backend spec"),
        ("http://h/v1?modle=x", "unknown option"),
        ("http://h/v1?structured_output=xml", "structured_output"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        BackendSettings.from_spec(spec)


def test_settings_are_checked():
    with pytest.raises(ValidationError):
        AgentSettings(max_steps=0)
    with pytest.raises(ValidationError):
        BackendSettings(kind="openai")
    with pytest.raises(ValidationError):
        Settings(surprise=1)


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLUX_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.runs_path == tmp_path / "runs.sqlite"
    assert settings.chroma_path == tmp_path / "chroma"


def test_chroma_server_from_environment(monkeypatch):
    monkeypatch.setenv("FLUX_CHROMA_URL", "http://chroma.internal:8123")
    store = Settings().store
    assert (store.kind, store.host, store.port) == ("http", "chroma.internal", 8123)
    monkeypatch.setenv("FLUX_CHROMA_URL", "chroma.internal")
    with pytest.raises(ValueError, match="FLUX_CHROMA_URL"):
        Settings()


def test_llama_cpp_specs_take_threads_and_context():
    spec = BackendSettings.from_spec("/models/q.gguf?threads=2&context=8192")
    assert (spec.kind, spec.model, spec.threads, spec.context_length) == (
        "llama_cpp",
        "/models/q.gguf",
        2,
        8192,
    )
    embedded = BackendSettings.from_spec("embedded?threads=1")
    assert embedded.model is None and embedded.threads == 1
    assert BackendSettings.from_spec("embedded") == BackendSettings()
    with pytest.raises(ValueError, match="unknown option"):
        BackendSettings.from_spec("/models/q.gguf?gpu=1")
    with pytest.raises(ValueError, match="whole numbers"):
        BackendSettings.from_spec("/models/q.gguf?threads=two")
    with pytest.raises(ValueError):
        BackendSettings.from_spec("/models/q.gguf?threads=0")


def test_hf_specs_name_a_model_folder_for_transformers():
    spec = BackendSettings.from_spec("hf:/x/y")
    assert (spec.kind, spec.model, spec.threads) == ("transformers", "/x/y", None)
    assert BackendSettings.from_spec("hf:runs/merged?threads=2").threads == 2
    assert "transformers" in spec.describe()
    with pytest.raises(ValueError, match="unknown option"):
        BackendSettings.from_spec("hf:/x/y?context=8192")
    with pytest.raises(ValueError, match="whole number"):
        BackendSettings.from_spec("hf:/x/y?threads=two")
    with pytest.raises(ValueError, match="needs model"):
        BackendSettings.from_spec("hf:")
