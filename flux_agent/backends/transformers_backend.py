"""In-process transformers backend: a Hugging Face model folder run by PyTorch, on a CPU.

`TransformersBackend` runs the folder `flux train` writes (`save_pretrained` for
model and tokenizer, e.g. `training-runs/NAME/rl/round-2/merged/`), so a trained
navigator can be used by `flux solve --navigator hf:PATH` without a GPU, and
training rollouts can sample plans from it in process.

One model per (folder, device) is kept in the process, shared by every backend
that names it; a lock serialises generation on it. Weights load on first use, in
float32, on CUDA when available, else the CPU. Generation blocks, so it runs in
a worker thread; `on_text` is only ever called from the event loop's thread.

Requests whose sampling settings match run as one left-padded batch. Greedy
requests batch whatever their seed. Sampled requests with a seed are batched only
with others of distinct seeds, and the batch is seeded once with its first
request's seed: a request alone with seed s gives the same text every time, and a
batch (K samples of one prompt, as rollouts send) gives the same texts for the
same requests in the same order, but a seeded request's text depends on the batch
it ran in. Seeding never disturbs the process's own torch random state.

A request runs alone when streamed. The chat is rendered with the tokenizer's
chat template; a prefill is appended to it and only the continuation is returned.
Plain transformers cannot constrain decoding, so `json_schema` is ignored: the
agent's `generate_structured` validates the reply and retries. torch and
transformers (the `train` extra) are imported only when the backend is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
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
    loop_emitter,
)

MISSING_EXTRA = "the transformers backend needs torch and transformers: pip install -e '.[train]'"
MAX_BATCH = 16
"""Requests in one batched generate call, at most (memory grows with the batch)."""

_models: dict[tuple[str, str], tuple[Any, Any, threading.Lock]] = {}
_users: dict[str, int] = {}
"""Open backends per folder: the last one to close drops the folder's model from memory
(training rounds each open a new folder and would otherwise keep every round loaded)."""
_models_lock = threading.Lock()


class TransformersBackend:
    """Completes requests with a Hugging Face model folder loaded in this process."""

    supports_prefill = True

    def __init__(
        self, model_path: str | Path, threads: int | None = None, device: str | None = None
    ) -> None:
        """Check the folder and the packages; the weights load on first use.

        Args:
            model_path: a folder written by `save_pretrained` (config.json, weights, tokenizer).
            threads: CPU threads for torch (process-wide); None keeps torch's default.
            device: a torch device such as "cpu" or "cuda"; None takes CUDA when available.

        Raises:
            BackendError: the folder is not a model folder, or torch/transformers are missing.
        """
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise BackendError(f"model folder not found: {path}")
        if not (path / "config.json").is_file():
            if (path / "adapter_config.json").is_file():
                raise BackendError(
                    f"{path} holds a LoRA adapter, not a whole model: "
                    f"use the merged/ folder next to it ({path.parent / 'merged'})"
                )
            raise BackendError(f"{path} is not a Hugging Face model folder (no config.json)")
        if importlib.util.find_spec("torch") is None or (
            importlib.util.find_spec("transformers") is None
        ):
            raise BackendError(MISSING_EXTRA)
        self.model_path = path.resolve()
        self.threads = threads
        self.device = device
        self.name = f"transformers:{self.model_path.name}"
        self._open = True
        with _models_lock:
            _users[str(self.model_path)] = _users.get(str(self.model_path), 0) + 1

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        """Complete the requests, batching those with the same sampling settings."""
        loop = asyncio.get_running_loop()
        completions: list[Completion | None] = [None] * len(requests)
        for indices in _batches(requests):
            streamed = on_text is not None and len(indices) == 1
            emit = loop_emitter(loop, on_text, indices[0]) if streamed and on_text else None
            # A cancelled caller stops generation at its next token, releasing the model.
            cancelled = threading.Event()
            batch = [requests[i] for i in indices]
            try:
                done = await asyncio.to_thread(self._complete, batch, emit, cancelled)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            for index, completion in zip(indices, done, strict=True):
                completions[index] = completion
                if on_text is not None and not streamed and completion.text:
                    on_text(index, completion.text)
        return [completion for completion in completions if completion is not None]

    async def aclose(self) -> None:
        """Drop the model from memory unless another open backend shares its folder."""
        if not self._open:
            return
        self._open = False
        folder = str(self.model_path)
        with _models_lock:
            _users[folder] -= 1
            if _users[folder] == 0:
                del _users[folder]
                for key in [key for key in _models if key[0] == folder]:
                    del _models[key]

    def _complete(
        self,
        requests: Sequence[GenerationRequest],
        emit: Callable[[str], None] | None,
        cancelled: threading.Event,
    ) -> list[Completion]:
        model, tokenizer, lock = _load(self.model_path, self.device, self.threads)
        with lock:
            if cancelled.is_set():
                return [Completion("", Usage(0, 0, 1), "cancelled") for _ in requests]
            try:
                return _generate(model, tokenizer, requests, emit, cancelled)
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(
                    f"transformers failed on {self.model_path.name}: {type(exc).__name__}: {exc}"
                ) from exc


def _batches(requests: Sequence[GenerationRequest]) -> list[list[int]]:
    """Indices of the requests that can share one generate call, each list in request order."""
    open_batches: dict[tuple[Any, ...], list[int]] = {}
    batches: list[list[int]] = []
    for index, request in enumerate(requests):
        sampled = request.temperature > 0
        key = (
            request.max_tokens,
            tuple(request.stop),
            request.logprobs,
            (request.temperature, request.top_p, request.seed is None) if sampled else None,
        )
        batch = open_batches.get(key)
        seeds = {requests[i].seed for i in batch} if batch and sampled else set()
        if (
            batch is None
            or len(batch) >= MAX_BATCH
            or (request.seed is not None and request.seed in seeds)
        ):
            batch = open_batches[key] = []
            batches.append(batch)
        batch.append(index)
    return batches


def _generate(
    model: Any,
    tokenizer: Any,
    requests: Sequence[GenerationRequest],
    emit: Callable[[str], None] | None,
    cancelled: threading.Event,
) -> list[Completion]:
    """One batched `model.generate` call for requests that share their sampling settings."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancelled.is_set(), device=input_ids.device)

    class Streamer(TextStreamer):
        """Hands finished text to `emit`, holding back what may begin a stop string."""

        text = ""
        sent = 0

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            assert emit is not None
            self.text += text
            ready = _cut(self.text, first.stop)
            if not stream_end and len(ready) == len(self.text):
                ready = ready[: len(ready) - _partial_stop(ready, first.stop)]
            if len(ready) > self.sent:
                emit(ready[self.sent :])
                self.sent = len(ready)

    first = requests[0]
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError("the model's tokenizer has no chat template (tokenizer_config.json)")
    prompts = [
        tokenizer.apply_chat_template(
            [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=False
        )
        + request.prefill
        for request in requests
    ]
    # Chat templates write their own BOS token where the model wants one.
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    inputs = inputs.to(model.device)
    options: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
    if first.temperature > 0:
        # top_k=0 turns off transformers' default top-50, as the other backends sample.
        options = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
        options["top_k"] = 0
    if first.stop:
        options.update(stop_strings=list(first.stop), tokenizer=tokenizer)
    streamer = None
    if emit is not None:
        streamer = Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    seeded = first.temperature > 0 and first.seed is not None
    # A seeded batch must not reset the process's own random state (a trainer's, say).
    cuda = [model.device] if model.device.type == "cuda" else []
    rng = torch.random.fork_rng(devices=cuda) if seeded else contextlib.nullcontext()
    with rng, torch.inference_mode():
        if seeded:
            torch.manual_seed(first.seed)
        output = model.generate(
            **inputs,
            **options,
            max_new_tokens=first.max_tokens,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([Cancelled()]),
            streamer=streamer,
            return_dict_in_generate=True,
            output_logits=first.logprobs,
        )
    generated = output.sequences[:, inputs["input_ids"].shape[1] :]
    ends = {tokenizer.pad_token_id, *_eos_ids(model, tokenizer)}
    completions = []
    for row, request in enumerate(requests):
        tokens = generated[row].tolist()
        # Generation ends at EOS; a row that finished early is padded (pad may equal EOS).
        length = next((i for i, token in enumerate(tokens) if token in ends), len(tokens))
        full = (
            streamer.text
            if streamer is not None
            else tokenizer.decode(tokens[:length], skip_special_tokens=True)
        )
        text = _cut(full, request.stop)
        if len(text) < len(full) or length < len(tokens):
            reason = "stop"
        elif cancelled.is_set():
            reason = "cancelled"
        else:
            reason = "length" if length >= request.max_tokens else "stop"
        mean = None
        if request.logprobs and tokens:
            counted = max(length, 1)  # an immediate EOS is still the model's choice
            steps = torch.stack([step[row] for step in output.logits[:counted]]).float()
            chosen = torch.tensor(tokens[:counted], device=steps.device)
            picked = steps.log_softmax(-1).gather(1, chosen[:, None])
            mean = float(picked.mean())
        prompt_tokens = int(inputs["attention_mask"][row].sum())
        completions.append(Completion(text, Usage(prompt_tokens, length, 1), reason, mean))
    return completions


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return {i for i in [*ids, tokenizer.eos_token_id] if i is not None}


def _cut(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    positions = [text.find(s) for s in stop if s and s in text]
    return text[: min(positions)] if positions else text


def _partial_stop(text: str, stop: Sequence[str]) -> int:
    """Length of the longest end of `text` that begins some stop string."""
    return max((n for s in stop for n in range(1, len(s)) if text.endswith(s[:n])), default=0)


def _load(path: Path, device: str | None, threads: int | None) -> tuple[Any, Any, threading.Lock]:
    """The process-wide (model, tokenizer, lock) for this folder and device, loaded on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    resolved = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(path), resolved)
    with _models_lock:
        if key not in _models:
            if threads is not None:
                torch.set_num_threads(threads)
            # Loading prints a "Loading weights" bar on every CLI call; hide only that.
            bars_were_on = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()
            try:
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model: Any = AutoModelForCausalLM.from_pretrained(
                    path, dtype=torch.float32, local_files_only=True
                )
                model.to(resolved).eval()
            except Exception as exc:
                raise BackendError(
                    f"transformers cannot load {path}: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                if bars_were_on:
                    transformers_logging.enable_progress_bar()
            tokenizer.padding_side = "left"  # generation continues the right end of each row
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            _models[key] = (model, tokenizer, threading.Lock())
        return _models[key]
