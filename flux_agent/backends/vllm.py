"""In-process vLLM backend: a Hugging Face model on local GPUs, without a server.

`VLLMBackend` wraps `vllm.LLM` and sends a whole batch to `LLM.chat` at once,
so vLLM's continuous batching and prefix caching work across the batch. JSON
schemas become vLLM structured outputs (`StructuredOutputsParams(json=...)`).

`LLM.chat` blocks and cannot stream, so it runs in a worker thread and
`on_text` receives each reply whole once the batch is done. For streaming, run
`vllm serve` and use the OpenAI-compatible HTTP backend instead.

Logprobs come from `SamplingParams(logprobs=0)` (the chosen token's only). A
prefill is sent as a final assistant message that `LLM.chat` continues
(`continue_final_message=True, add_generation_prompt=False`); those flags hold
for a whole call, so a batch mixing prefilled and plain requests makes two calls.
The chat template renders that message, so one that rewrites assistant content
(DeepSeek-R1's drops the text up to `</think>`) can make the call fail.

`vllm` is an optional extra (`pip install 'flux-agent[vllm]'`), imported only
when this backend is built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from flux_agent.backends.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TextCallback,
    Usage,
)

MISSING_EXTRA = (
    "The in-process vLLM backend needs the 'vllm' extra: "
    "pip install 'flux-agent[vllm]' (GPU required)"
)


class VLLMBackend:
    """Completes requests with a model loaded in this process by vLLM."""

    supports_prefill = True

    def __init__(
        self,
        model: str,
        context_length: int | None = None,
        seed: int = 0,
        **engine_args: Any,
    ) -> None:
        """Load the model (this takes the GPU memory vLLM is configured for).

        Args:
            model: a Hugging Face model id or a local model folder.
            context_length: `max_model_len`; None takes the model's own.
            seed: the engine's random seed.
            **engine_args: passed to `vllm.LLM` (e.g. `tensor_parallel_size`,
                `gpu_memory_utilization`, `enable_prefix_caching`).

        Raises:
            BackendError: `vllm` is not installed, or the engine could not start.
        """
        try:
            import vllm
            from vllm.sampling_params import StructuredOutputsParams
        except ImportError as exc:
            raise BackendError(MISSING_EXTRA) from exc
        self.name = f"vllm:{model}"
        self._sampling_params = vllm.SamplingParams
        self._structured_outputs = StructuredOutputsParams
        if context_length is not None:
            engine_args.setdefault("max_model_len", context_length)
        try:
            self._llm = vllm.LLM(model=model, seed=seed, **engine_args)
        except Exception as exc:
            raise BackendError(f"vLLM could not load {model}: {type(exc).__name__}: {exc}") from exc
        # LLM.chat is not meant to be entered from two threads at once.
        self._lock = threading.Lock()

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        """Complete the whole batch in one `LLM.chat` call."""
        if not requests:
            return []
        completions = await asyncio.to_thread(self._complete, requests)
        if on_text is not None:
            for index, completion in enumerate(completions):
                if completion.text:
                    on_text(index, completion.text)
        return completions

    async def aclose(self) -> None:
        # vLLM frees the GPU when the engine is garbage-collected; drop our reference.
        self._llm = None

    def _complete(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if self._llm is None:
            raise BackendError(f"{self.name} was closed")
        completions: list[Completion | None] = [None] * len(requests)
        for continued in (False, True):
            indices = [i for i, r in enumerate(requests) if bool(r.prefill) == continued]
            if not indices:
                continue
            batch = [requests[i] for i in indices]
            for index, completion in zip(indices, self._chat(batch, continued), strict=True):
                completions[index] = completion
        return [completion for completion in completions if completion is not None]

    def _chat(self, requests: Sequence[GenerationRequest], continued: bool) -> list[Completion]:
        """One `LLM.chat` call; `continued`: every request has a prefill to continue."""
        conversations = []
        for request in requests:
            messages = [dict(m) for m in request.messages]
            if continued:
                messages.append({"role": "assistant", "content": request.prefill})
            conversations.append(messages)
        params = [self._params(request) for request in requests]
        try:
            with self._lock:
                outputs = self._llm.chat(
                    conversations,
                    sampling_params=params,
                    use_tqdm=False,
                    # The template renders the last assistant message unclosed and opens
                    # no new turn: the model continues the prefill's text.
                    add_generation_prompt=not continued,
                    continue_final_message=continued,
                )
        except Exception as exc:
            raise BackendError(f"vLLM failed: {type(exc).__name__}: {exc}") from exc
        completions = []
        for request, output in zip(requests, outputs, strict=True):
            sample = output.outputs[0]
            usage = Usage(len(output.prompt_token_ids or ()), len(sample.token_ids), 1)
            completions.append(
                Completion(
                    text=sample.text,
                    usage=usage,
                    finish_reason=sample.finish_reason or "stop",
                    mean_logprob=_mean_logprob(sample) if request.logprobs else None,
                )
            )
        return completions

    def _params(self, request: GenerationRequest) -> Any:
        structured = None
        if request.json_schema is not None:
            structured = self._structured_outputs(json=request.json_schema)
        return self._sampling_params(
            temperature=request.temperature,  # 0 is greedy in vLLM
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            seed=request.seed,
            structured_outputs=structured,
            # The number of alternatives per token; 0 still returns the chosen token's.
            logprobs=0 if request.logprobs else None,
        )


def _mean_logprob(sample: Any) -> float | None:
    """Mean logprob of a `CompletionOutput`'s tokens; None if vLLM sent none.

    vLLM sums the chosen tokens' logprobs into `cumulative_logprob` when logprobs
    are requested; the per-token `logprobs` (one {token id: Logprob} per position)
    are the fallback.
    """
    token_ids = list(sample.token_ids)
    if not token_ids:
        return None
    if sample.cumulative_logprob is not None:
        return float(sample.cumulative_logprob) / len(token_ids)
    if not sample.logprobs:
        return None
    values = [
        float(position[token].logprob)
        for token, position in zip(token_ids, sample.logprobs, strict=False)
        if position and token in position
    ]
    return sum(values) / len(values) if values else None
