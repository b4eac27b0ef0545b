"""RL rounds end to end on a tiny random model: real Chroma index, real embeddings, real DPO.

The navigator's samples and the solver's answers are scripted (a random model writes no
plans), so every round has preference pairs; the policy trained is the real tiny model.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys

import pytest

from flux_agent.backends import GenerationRequest, ScriptedBackend, build_backend
from flux_agent.config import BackendSettings
from flux_agent.training.compare import compare_navigators, trained_navigators
from flux_agent.training.dpo import launch_dpo, train_dpo
from flux_agent.training.grpo import train_grpo
from flux_agent.training.models import load_base, load_folder
from flux_agent.training.recipe import DPOSpec, GRPOSpec, ModelSpec, Recipe, RLSpec
from flux_agent.training.rewards import PreferencePair
from flux_agent.training.rl import run_rl
from tests.unit.training.test_rollouts import navigator_reply, solver_reply

pytestmark = [pytest.mark.integration, pytest.mark.slow]
torch = pytest.importorskip("torch")
pytest.importorskip("trl")


def _changed(before, after) -> list[str]:
    after_state = after.state_dict()
    return [n for n, t in before.state_dict().items() if not torch.equal(t, after_state[n])]


def _dataset(path):
    with path.open("w") as out:
        for n in range(14):
            a, b = n + 2, 3 * n + 1
            record = {"problem": f"Add the roots: compute {a} + {b}.", "answer": str(a + b)}
            out.write(json.dumps(record) + "\n")
    return path


def _recipe(tmp_path) -> Recipe:
    return Recipe(
        name="tiny-rl",
        seed=1,
        output_dir=tmp_path / "run",
        model=ModelSpec(source="tiny-random"),
        rl=RLSpec(
            dataset=str(_dataset(tmp_path / "problems.jsonl")),
            start="base",
            rounds=2,
            problems=2,
            samples=3,
            neighbours=1,
            heldout=2,
            pool=10,
            dpo=DPOSpec(max_steps=2, batch_size=2, max_length=512),
        ),
    )


class Navigators:
    """Scripted samples, whatever the policy folder; remembers which folders were asked for."""

    def __init__(self):
        self.policies = []

    def __call__(self, recipe, policy):
        self.policies.append(policy)
        return ScriptedBackend(navigator_reply)


PROMPT = [{"role": "user", "content": "Plan: add 2 and 3."}]
PAIRS = [
    PreferencePair(PROMPT, '{"steps": [1]}', "no plan", 1.2).record(),
    PreferencePair(PROMPT, '{"steps": [2]}', "still no plan", 1.0).record(),
]
SPEC = DPOSpec(max_steps=2, batch_size=2, max_length=256)


def _check_dpo(tmp_path, start_model, report):
    assert report.steps == 2 and math.isfinite(report.loss)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    steps = [line for line in logged if "loss" in line]
    assert len(steps) == 2 and all(math.isfinite(line["loss"]) for line in steps)
    assert all("rewards/margins" in line and line["round"] == 3 for line in steps)
    merged, _ = load_folder(tmp_path / "out" / "merged")
    changed = _changed(start_model, merged)
    assert changed and all("self_attn" in name for name in changed)  # LoRA on attention only
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()


def test_two_dpo_steps_change_the_lora_weights_with_a_finite_loss(tmp_path):
    model = _save_tiny_model(tmp_path / "start")
    report = train_dpo(
        tmp_path / "start",
        PAIRS,
        tmp_path / "out",
        SPEC,
        metrics_path=tmp_path / "metrics.jsonl",
        round_number=3,
    )
    _check_dpo(tmp_path, model, report)


def test_dpo_runs_as_its_own_program_under_a_launcher(tmp_path):
    """The multi-GPU path (accelerate launch), here with one CPU process."""
    model = _save_tiny_model(tmp_path / "start")
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(pair) + "\n" for pair in PAIRS))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes=1", "--cpu"]
    options = {"seed": 0, "report_to": [], "round_number": 3, "bf16": False}
    metrics = tmp_path / "metrics.jsonl"
    report = asyncio.run(
        launch_dpo(
            launcher,
            tmp_path / "start",
            pairs_file,
            tmp_path / "out",
            SPEC,
            metrics_path=metrics,
            **options,
        )
    )
    _check_dpo(tmp_path, model, report)
    with pytest.raises(RuntimeError, match="the DPO update failed"):
        asyncio.run(
            launch_dpo(
                launcher,
                tmp_path / "missing",
                pairs_file,
                tmp_path / "out2",
                SPEC,
                metrics_path=metrics,
                **options,
            )
        )


def _save_tiny_model(folder):
    model, tokenizer = load_base(ModelSpec(source="tiny-random"), seed=5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def test_rounds_train_on_their_pairs_chain_policies_and_resume_as_done(tmp_path):
    recipe = _recipe(tmp_path)
    navigators, events = Navigators(), []
    solver = ScriptedBackend(solver_reply)
    summaries = run_rl(
        recipe, lambda kind, fields: events.append(kind), solver=solver, navigator_for=navigators
    )

    out = recipe.output_dir / "rl"
    assert [s.round for s in summaries] == [1, 2]
    assert all(
        s.pairs == 2 and s.train_steps == 2 and math.isfinite(s.train_loss) for s in summaries
    )
    assert all(math.isclose(s.valid_share, 2 / 3, abs_tol=1e-3) for s in summaries)
    # Round 2 samples from round 1's trained model.
    assert navigators.policies == [out / "start", out / "round-1" / "merged"]
    assert summaries[1].policy == str(out / "round-1" / "merged")
    split = json.loads((out / "split.json").read_text())
    assert not set(split["split"]["heldout"]) & set(
        split["split"]["round-1"] + split["split"]["round-2"]
    )
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert [m["round"] for m in metrics if m["phase"] == "round"] == [1, 2]
    assert sum(1 for m in metrics if m["phase"] == "dpo" and "loss" in m) == 4
    pairs = [json.loads(line) for line in (out / "round-1" / "pairs.jsonl").open()]
    assert pairs[0]["chosen"][0]["content"].startswith('{"analysis"')
    assert events.count("problem") == 4 and events.count("round_done") == 2

    # The trained navigator works as `--navigator hf:PATH`.
    merged = out / "round-2" / "merged"
    navigator = build_backend(BackendSettings.from_spec(f"hf:{merged}"))
    (reply,) = asyncio.run(
        navigator.generate([GenerationRequest(messages=pairs[0]["prompt"], max_tokens=5)])
    )
    asyncio.run(navigator.aclose())
    assert reply.usage.completion_tokens > 0

    # Run again: every round is done, nothing is sampled or solved.
    again = run_rl(recipe, solver=ScriptedBackend([]), navigator_for=Navigators())
    assert again == summaries
    longer = recipe.model_copy(update={"rl": recipe.rl.model_copy(update={"rounds": 3})})
    with pytest.raises(ValueError, match=r"other rl\.heldout/rounds/problems counts"):
        run_rl(longer, solver=ScriptedBackend([]), navigator_for=Navigators())

    # Before/after on the held-out problems, with the same scripted models.
    scores = compare_navigators(
        recipe,
        trained_navigators(recipe, every_round=True),
        solver=solver,
        navigator_for=navigators,
    )
    assert [s.label for s in scores] == ["start", "round-1", "round-2"]
    assert all(s.problems == 2 for s in scores)
    assert (out / "compare.md").read_text().startswith("| navigator |")


def test_two_grpo_steps_change_the_lora_weights_with_a_finite_loss(tmp_path):
    model = _save_tiny_model(tmp_path / "start")
    asked = []

    def reward(problem_ids, texts):
        asked.append((problem_ids, texts))
        return [float(len(text) % 5) for text in texts]  # any spread gives an advantage

    report = train_grpo(
        tmp_path / "start",
        [("p1", PROMPT), ("p2", PROMPT)],
        reward,
        tmp_path / "out",
        GRPOSpec(max_steps=2, learning_rate=1e-3),
        samples=2,
        plan_tokens=12,
        temperature=1.0,
        top_p=1.0,
        metrics_path=tmp_path / "metrics.jsonl",
        round_number=3,
    )
    assert report.steps == 2 and math.isfinite(report.loss)
    # Each step rewards one problem's group of 2 plans, with the problem's id.
    assert all(len(texts) == 2 and len(set(ids)) == 1 for ids, texts in asked)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert sum(1 for line in logged if "loss" in line and line["phase"] == "grpo") == 2
    merged, _ = load_folder(tmp_path / "out" / "merged")
    changed = _changed(model, merged)
    assert changed and all("self_attn" in name for name in changed)


def test_a_grpo_round_rewards_the_plans_it_samples_and_saves_the_policy(tmp_path):
    recipe = _recipe(tmp_path)
    recipe.rl.algorithm = "grpo"
    recipe.rl.rounds, recipe.rl.samples, recipe.rl.plan_tokens = 1, 2, 16
    recipe.rl.grpo = GRPOSpec(max_steps=2)
    solver = ScriptedBackend(solver_reply)
    (summary,) = run_rl(recipe, solver=solver, navigator_for=Navigators())

    out = recipe.output_dir / "rl" / "round-1"
    samples = [json.loads(line) for line in (out / "grpo_samples.jsonl").open()]
    assert len(samples) == summary.samples == 4  # 2 steps x 2 generated plans
    # A random model writes no valid plan: rewards are 0 and nothing reaches the solver.
    assert summary.valid_share == 0.0 and summary.reward_mean == 0.0 and solver.calls == []
    assert summary.train_steps == 2 and (out / "merged" / "config.json").is_file()
