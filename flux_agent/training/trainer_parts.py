"""Pieces every TRL run here shares: the LoRA config, the metrics file, saving the result."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flux_agent.training.recipe import DPOSpec, LoraSpec, SFTSpec


def lora_config(spec: LoraSpec) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        task_type="CAUSAL_LM",
    )


def trainer_args(
    out: Path, *, report_to: Sequence[str], seed: int, bf16: bool, **specific: Any
) -> dict[str, Any]:
    """Arguments every TRL config here shares, plus the trainer's own (`specific`)."""
    return {
        "output_dir": str(out / "checkpoints"),
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": list(report_to) or "none",
        "seed": seed,
        "bf16": bf16,
        # Small navigators on a CPU: recomputing activations costs more than it saves.
        "gradient_checkpointing": False,
        **specific,
    }


def schedule_args(spec: SFTSpec | DPOSpec) -> dict[str, Any]:
    """Steps, epochs, batch, learning rate and length, as TRL names them."""
    return {
        "max_steps": spec.max_steps,
        "num_train_epochs": spec.epochs,
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation,
        "learning_rate": spec.learning_rate,
        "max_length": spec.max_length,
    }


def metrics_callback(path: Path, **fields: Any) -> Any:
    """A trainer callback appending each log line to `path` as JSON, with `fields` added."""
    from transformers import TrainerCallback

    class WriteMetrics(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs:
                line = {**fields, "step": state.global_step, **logs}
                with path.open("a", encoding="utf-8") as metrics:
                    metrics.write(json.dumps(line) + "\n")

    return WriteMetrics()


def finite_loss(result: Any) -> float:
    """The mean training loss of `trainer.train()`'s result.

    Raises:
        ValueError: it is not finite; the caller must not save the model.
    """
    loss = float(result.training_loss)
    if not math.isfinite(loss):
        raise ValueError(f"the training loss is {loss}; nothing was saved as a model")
    return loss


def save_trained(trainer: Any, tokenizer: Any, out: Path, *, lora: bool) -> None:
    """Write `out/adapter` (LoRA only) and `out/merged`, the model with the adapter merged in,
    in Hugging Face format with its tokenizer. Under several processes only the first saves."""
    if not trainer.is_world_process_zero():
        return
    trained: Any = trainer.model
    if lora:
        trained.save_pretrained(out / "adapter")
        trained = trained.merge_and_unload()
    trained.save_pretrained(out / "merged")
    tokenizer.save_pretrained(out / "merged")
