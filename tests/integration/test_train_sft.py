"""Two-step structure SFT on a tiny random model: LoRA and full fine-tuning really train."""

from __future__ import annotations

import json
import math

import pytest

from flux_agent.training.models import load_base
from flux_agent.training.recipe import ModelSpec, Recipe, SFTSpec
from flux_agent.training.sft import run_sft

pytestmark = [pytest.mark.integration, pytest.mark.slow]
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _recipe(tmp_path, **sft) -> Recipe:
    settings = {"max_steps": 2, "limit": 8, "batch_size": 2, "max_length": 512, **sft}
    return Recipe(
        name="tiny",
        seed=3,
        output_dir=tmp_path,
        model=ModelSpec(source="tiny-random"),
        sft=SFTSpec(**settings),
    )


def _changed(before, after) -> list[str]:
    after_state = after.state_dict()
    return [
        name
        for name, tensor in before.state_dict().items()
        if not torch.equal(tensor, after_state[name])
    ]


@pytest.mark.parametrize("full", [False, True], ids=["lora", "full"])
def test_two_sft_steps_change_the_weights_with_a_finite_loss(tmp_path, full):
    recipe = _recipe(tmp_path, full_finetune=full)
    report = run_sft(recipe)

    assert report.steps == 2 and report.examples == 8 and math.isfinite(report.final_loss)
    logged = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").open()]
    losses = [line["loss"] for line in logged if "loss" in line]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert len((tmp_path / "sft" / "data.jsonl").read_text().splitlines()) == 8
    assert (tmp_path / "sft" / "adapter" / "adapter_config.json").exists() is not full

    base, _ = load_base(recipe.model, seed=recipe.seed)  # the same random start
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "sft" / "merged")
    changed = _changed(base, merged)
    if full:
        assert any("mlp" in name for name in changed)  # every weight trains
    else:
        # LoRA on attention only: merged attention projections moved, nothing else did.
        assert changed and all("self_attn" in name for name in changed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "sft" / "merged")
    ids = tokenizer("Plan:", return_tensors="pt")
    assert (
        merged.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] > ids.input_ids.shape[1]
    )


def test_sft_can_keep_only_some_example_kinds(tmp_path):
    report = run_sft(_recipe(tmp_path, kinds=["plan"], max_steps=1))
    records = [json.loads(line) for line in (tmp_path / "sft" / "data.jsonl").open()]
    assert report.examples == len(records) == 8
    assert {record["kind"] for record in records} == {"plan"}
