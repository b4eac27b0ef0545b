"""Budget forcing (s1, Muennighoff et al. 2025): control how long a model thinks.

The model thinks until it writes the end-of-thinking marker. If that happens
before `min_thinking` tokens, the marker is dropped, "Wait," is appended and the
model continues its own text; at `max_thinking` tokens it is cut off. Then
"Final Answer: \\boxed{" is appended and the model completes the answer. Both
moves continue a partial reply, so the backend must support prefill
(in-process llama.cpp, vLLM).
"""

from __future__ import annotations

from dataclasses import dataclass

from flux_agent.backends.base import BackendError, GenerationRequest, LLMBackend, Usage
from flux_agent.eval import prompts
from flux_agent.eval.outcome import SOLVER, TEXT_KEPT, Outcome
from flux_agent.verify import extract_answer


@dataclass
class BudgetForcing:
    """s1-style budget forcing: at least `min_thinking` and at most `max_thinking` tokens.

    Each time the model ends its thinking early (it writes the end marker or stops),
    the marker is dropped, "Wait," is appended and the model continues, at most
    `max_waits` times. Then "Final Answer: \\boxed{" is appended and the model
    completes the answer. Generated tokens are summed over every call.
    """

    backend: LLMBackend
    min_thinking: int = 256
    max_thinking: int = 768
    max_waits: int = 2
    answer_tokens: int = 48
    temperature: float = 0.0
    name: str = "budget-forcing"

    def __post_init__(self) -> None:
        if not 0 <= self.min_thinking <= self.max_thinking:
            raise ValueError("budget forcing needs 0 <= min_thinking <= max_thinking")

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        if not self.backend.supports_prefill:
            raise BackendError(
                f"budget forcing needs a backend that continues a partial reply; "
                f"{self.backend.name} cannot (use the in-process llama.cpp or a vLLM server)"
            )
        messages = prompts.thinking_messages(problem)
        thinking, thinking_tokens, waits, usage = "", 0, 0, Usage()
        while thinking_tokens < self.max_thinking:
            request = GenerationRequest(
                messages=messages,
                max_tokens=self.max_thinking - thinking_tokens,
                temperature=self.temperature,
                seed=seed,
                stop=(*prompts.THINKING_STOPS, "\\boxed"),
                prefill=thinking,
            )
            (completion,) = await self.backend.generate([request])
            usage = usage + completion.usage
            thinking += completion.text
            thinking_tokens += completion.usage.completion_tokens
            if completion.finish_reason == "length":
                break
            if thinking_tokens >= self.min_thinking or waits >= self.max_waits:
                break
            thinking = thinking.rstrip() + "\nWait,"
            waits += 1
        answer_prefix = f"\n\n{prompts.END_OF_THINKING} \\boxed{{"
        request = GenerationRequest(
            messages=messages,
            max_tokens=self.answer_tokens,
            temperature=0.0,
            stop=("\n",),
            prefill=thinking.rstrip() + answer_prefix,
        )
        (completion,) = await self.backend.generate([request])
        usage = usage + completion.usage
        answer = extract_answer("\\boxed{" + completion.text)
        details = {
            "thinking_tokens": thinking_tokens,
            "answer_tokens": completion.usage.completion_tokens,
            "waits": waits,
            "text": (thinking + answer_prefix + completion.text)[-TEXT_KEPT:],
        }
        return Outcome(answer, {SOLVER: usage}, details)
