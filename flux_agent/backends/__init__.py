"""LLM backends behind one protocol, and the one place that picks an implementation.

`build_backend(settings)` turns a `BackendSettings` into a backend; nothing else
names the concrete classes. Heavy optional packages (llama_cpp, vllm, torch) are
imported by the implementation that needs them, when it is built.
"""

from __future__ import annotations

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    LLMBackend,
    Message,
    TextCallback,
    Usage,
)
from flux_agent.backends.llama_cpp import LlamaCppBackend, embedded_model_path
from flux_agent.backends.openai_http import OpenAIHTTPBackend
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.backends.transformers_backend import TransformersBackend
from flux_agent.backends.vllm import VLLMBackend
from flux_agent.config import BackendSettings

__all__ = [
    "BackendError",
    "Completion",
    "GenerationRequest",
    "LLMBackend",
    "LlamaCppBackend",
    "Message",
    "OpenAIHTTPBackend",
    "ScriptedBackend",
    "TextCallback",
    "TransformersBackend",
    "Usage",
    "VLLMBackend",
    "build_backend",
    "build_backends",
    "embedded_model_path",
]


def build_backend(settings: BackendSettings) -> LLMBackend:
    """The backend these settings describe.

    Raises:
        BackendError: a needed package or model file is missing.
    """
    if settings.kind == "llama_cpp":
        return LlamaCppBackend(
            model_path=settings.model,
            context_length=settings.context_length,
            threads=settings.threads,
        )
    elif settings.kind == "openai":
        assert settings.base_url is not None  # checked by BackendSettings
        return OpenAIHTTPBackend(
            base_url=settings.base_url,
            model=settings.model,
            api_key=settings.api_key,
            structured_output=settings.structured_output,
            timeout_s=settings.timeout_s,
            max_concurrency=settings.max_concurrency,
        )
    elif settings.kind == "vllm":
        assert settings.model is not None  # checked by BackendSettings
        return VLLMBackend(model=settings.model, context_length=settings.context_length)
    elif settings.kind == "transformers":
        assert settings.model is not None  # checked by BackendSettings
        return TransformersBackend(model_path=settings.model, threads=settings.threads)
    raise ValueError(f"unknown backend kind: {settings.kind!r}")


def build_backends(
    navigator: BackendSettings, solver: BackendSettings
) -> tuple[LLMBackend, LLMBackend]:
    """Backends for the two roles: one shared object when both name the same endpoint.

    Sharing matters most for in-process models, which would otherwise be loaded
    twice (llama.cpp backends also share weights per file on their own).
    """
    navigator_backend = build_backend(navigator)
    if solver == navigator:
        return navigator_backend, navigator_backend
    return navigator_backend, build_backend(solver)
