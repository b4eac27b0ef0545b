"""Recipes: YAML in, checked settings out; overrides from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flux_agent.training.recipe import RecipeError, load_recipe

SMOKE = Path(__file__).resolve().parents[3] / "training" / "recipes" / "smoke.yaml"


def test_the_smoke_recipe_loads():
    recipe = load_recipe(SMOKE)
    assert recipe.name == "smoke" and recipe.model.source == "embedded"
    assert recipe.sft.max_steps > 0 and not recipe.sft.full_finetune


def test_every_shipped_recipe_loads_and_the_gpu_one_names_real_launch_files():
    recipes = sorted(SMOKE.parent.glob("*.yaml"))
    assert len(recipes) >= 2
    for path in recipes:
        load_recipe(path)
    gpu = load_recipe(SMOKE.parent / "gpu-qwen7b.yaml")
    assert gpu.bf16 and gpu.rl.navigator_backend == "vllm"
    assert gpu.rl.launcher[:2] == ["accelerate", "launch"]
    config = SMOKE.parents[2] / gpu.rl.launcher[gpu.rl.launcher.index("--config_file") + 1]
    assert yaml.safe_load(config.read_text())["num_processes"] == 6


def test_grpo_cannot_take_the_dpo_launcher():
    with pytest.raises(RecipeError, match=r"rl\.launcher runs the DPO update only"):
        load_recipe(SMOKE, ["rl.algorithm=grpo", "rl.launcher=[accelerate, launch]"])


def test_overrides_are_typed_and_nested(tmp_path):
    recipe = load_recipe(
        SMOKE,
        [
            "sft.max_steps=2",
            "sft.full_finetune=true",
            "sft.lora.target_modules=[q_proj]",
            f"output_dir={tmp_path}",
            "model.source=tiny-random",
        ],
    )
    assert recipe.sft.max_steps == 2 and recipe.sft.full_finetune is True
    assert recipe.sft.lora.target_modules == ["q_proj"]
    assert recipe.output_dir == tmp_path and recipe.model.source == "tiny-random"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sft.max_stepz=2"], "sft.max_stepz: Extra inputs are not permitted"),
        (["sft.learning_rate=-1"], "sft.learning_rate"),
        (["model.source=gpt"], "model.source"),
        (["no-equals"], "key.path=value"),
        (["name.deeper=1"], "name is not a section"),
    ],
)
def test_bad_overrides_say_what_is_wrong(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(SMOKE, overrides)


def test_a_missing_or_broken_file_is_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(broken)
