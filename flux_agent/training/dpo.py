"""One DPO update of the navigator on a round's preference pairs (TRL's `DPOTrainer`).

The policy is loaded from a Hugging Face folder (the previous round's merged model) and
trained through a LoRA adapter; with peft, the reference model is the same weights with
the adapter switched off, so no second copy is held. The result is saved as `adapter/`
and `merged/` (the next round's policy) in the round's folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flux_agent.training.models import load_folder
from flux_agent.training.recipe import DPOSpec
from flux_agent.training.rewards import PreferencePair
from flux_agent.training.trainer_parts import (
    finite_loss,
    lora_config,
    metrics_callback,
    save_trained,
)


@dataclass(frozen=True)
class DPOReport:
    pairs: int
    steps: int
    loss: float
    output: Path


def train_dpo(
    policy: Path,
    pairs: Sequence[PreferencePair],
    out: Path,
    spec: DPOSpec,
    *,
    metrics_path: Path,
    seed: int = 0,
    report_to: Sequence[str] = (),
    round_number: int = 0,
) -> DPOReport:
    """Train `policy` on `pairs`; write `out/adapter` and `out/merged`.

    Raises:
        RuntimeError: the train extra is missing.
        ValueError: no pairs, or the loss was not finite (nothing is saved).
    """
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = load_folder(policy)
    records = []
    for pair in pairs:
        record: dict[str, Any] = pair.record()
        record.pop("margin")  # ours, not a DPO column
        records.append(record)
    config = DPOConfig(
        output_dir=str(out / "checkpoints"),
        beta=spec.beta,
        max_steps=spec.max_steps,
        num_train_epochs=spec.epochs,
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation,
        learning_rate=spec.learning_rate,
        max_length=spec.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to=list(report_to) or "none",
        seed=seed,
        bf16=False,
        gradient_checkpointing=False,  # small navigators: recomputing costs more than it saves
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora_config(spec.lora),
        callbacks=[metrics_callback(metrics_path, round=round_number, phase="dpo")],
    )
    result = trainer.train()
    loss = finite_loss(result)
    save_trained(trainer, tokenizer, out, lora=True)
    return DPOReport(pairs=len(records), steps=int(result.global_step), loss=loss, output=out)
