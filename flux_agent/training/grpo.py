"""The online alternative to DPO: TRL's `GRPOTrainer` with the plan reward computed live.

Per optimizer step the trainer samples K plans for one training problem from the policy
itself (the group), asks `reward(problem_ids, texts)` for their rewards, the same reward
DPO rounds use (the solver follows each plan on the problem and its neighbours), and
moves the policy towards the plans that beat their group's mean. LoRA as for DPO; the
result is saved as `adapter/` and `merged/` in the round's folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flux_agent.backends.base import Message
from flux_agent.training.models import load_folder
from flux_agent.training.recipe import GRPOSpec
from flux_agent.training.trainer_parts import (
    finite_loss,
    lora_config,
    metrics_callback,
    save_trained,
    trainer_args,
)

PlanRewards = Callable[[list[str], list[str]], list[float]]
"""(problem ids, generated plan texts) -> rewards, one per text."""


@dataclass(frozen=True)
class GRPOReport:
    steps: int
    loss: float
    output: Path


def train_grpo(
    policy: Path,
    prompts: Sequence[tuple[str, list[Message]]],
    reward: PlanRewards,
    out: Path,
    spec: GRPOSpec,
    *,
    samples: int,
    plan_tokens: int,
    temperature: float,
    top_p: float,
    metrics_path: Path,
    seed: int = 0,
    report_to: Sequence[str] = (),
    round_number: int = 0,
    bf16: bool = False,
) -> GRPOReport:
    """Train `policy` online on `prompts` (problem id, plan prompt); write adapter/, merged/.

    Raises:
        RuntimeError: the train extra is missing.
        ValueError: no prompts, or the loss was not finite (nothing is saved).
    """
    if not prompts:
        raise ValueError("GRPO needs at least one training problem")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    def plan_reward(
        prompts: list[Any], completions: list[Any], problem_id: list[str], **_: Any
    ) -> list[float | None]:
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        return list(reward(list(problem_id), texts))

    model, tokenizer = load_folder(policy, bf16=bf16)
    config = GRPOConfig(
        **trainer_args(
            out,
            report_to=report_to,
            seed=seed,
            bf16=bf16,
            num_generations=samples,
            per_device_train_batch_size=samples,  # one problem's group per step
            max_completion_length=plan_tokens,
            temperature=temperature,
            top_p=top_p,
            beta=spec.beta,
            learning_rate=spec.learning_rate,
            num_train_epochs=spec.epochs,
            max_steps=spec.max_steps,
        )
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=plan_reward,
        args=config,
        train_dataset=Dataset.from_list(
            [{"prompt": prompt, "problem_id": problem_id} for problem_id, prompt in prompts]
        ),
        processing_class=tokenizer,
        peft_config=lora_config(spec.lora),
        callbacks=[metrics_callback(metrics_path, round=round_number, phase="grpo")],
    )
    result = trainer.train()
    loss = finite_loss(result)
    save_trained(trainer, tokenizer, out, lora=True)
    return GRPOReport(steps=int(result.global_step), loss=loss, output=out)
