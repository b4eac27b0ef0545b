"""Structure SFT with TRL's `SFTTrainer`: LoRA through peft by default, full by option.

Writes into `recipe.output_dir / "sft"`:
- `data.jsonl`: the examples trained on (kind, template id, prompt, completion);
- `metrics.jsonl`: one line per logged step (loss, learning rate, grad norm, epoch);
- `adapter/`: the LoRA adapter (peft format; absent for a full fine-tune);
- `merged/`: the model with the adapter merged in, and its tokenizer (Hugging Face format);
- `recipe.yaml`: the recipe as run, overrides applied.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from flux_agent.templates import load_library
from flux_agent.training.models import load_base
from flux_agent.training.recipe import Recipe
from flux_agent.training.sft_data import structure_examples
from flux_agent.training.trainer_parts import (
    finite_loss,
    lora_config,
    metrics_callback,
    save_trained,
    schedule_args,
    trainer_args,
)


@dataclass(frozen=True)
class SFTReport:
    examples: int
    steps: int
    final_loss: float
    seconds: float
    output: Path


def run_sft(recipe: Recipe) -> SFTReport:
    """Build the structure dataset from the library and fine-tune the navigator on it.

    Raises:
        RuntimeError: the train extra is missing.
        ValueError: the loss was not finite (the run is not saved as a model).
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    spec = recipe.sft
    out = recipe.output_dir / "sft"
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(
        yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    examples = structure_examples(
        load_library(recipe.library),
        candidates=spec.candidates,
        max_steps=spec.plan_steps,
        seed=recipe.seed,
    )
    examples = [example for example in examples if example.kind in spec.kinds][: spec.limit]
    records = [example.record() for example in examples]
    with (out / "data.jsonl").open("w", encoding="utf-8") as data:
        data.writelines(json.dumps(record) + "\n" for record in records)

    model, tokenizer = load_base(recipe.model, seed=recipe.seed, bf16=recipe.bf16)
    metrics_path = out / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)
    config = SFTConfig(
        **trainer_args(
            out,
            report_to=recipe.report_to,
            seed=recipe.seed,
            bf16=recipe.bf16,
            **schedule_args(spec),
        )
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=None if spec.full_finetune else lora_config(spec.lora),
        callbacks=[metrics_callback(metrics_path)],
    )
    result = trainer.train()
    loss = finite_loss(result)
    save_trained(trainer, tokenizer, out, lora=not spec.full_finetune)
    return SFTReport(
        examples=len(records),
        steps=int(result.global_step),
        final_loss=loss,
        seconds=time.perf_counter() - started,
        output=out,
    )
