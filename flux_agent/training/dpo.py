"""One DPO update of the navigator on a round's preference pairs (TRL's `DPOTrainer`).

The policy is loaded from a Hugging Face folder (the previous round's merged model) and
trained through a LoRA adapter; with peft, the reference model is the same weights with
the adapter switched off, so no second copy is held. The result is saved as `adapter/`
and `merged/` (the next round's policy) in the round's folder, with `dpo.json`.

The update runs in the calling process (`train_dpo`), or as its own program so that a
launcher can spread it over several GPUs (`launch_dpo`, which runs `LAUNCHER -m
flux_agent.training.dpo ARGS`; `accelerate launch` starts one process per GPU, and the
trainer shards the batch across them). On GPUs the rollouts' vLLM engine has been shut
down by then, so the training processes get the memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flux_agent.training.models import load_folder
from flux_agent.training.recipe import DPOSpec
from flux_agent.training.trainer_parts import (
    finite_loss,
    lora_config,
    metrics_callback,
    save_trained,
    schedule_args,
    trainer_args,
)

REPORT_FILE = "dpo.json"


@dataclass(frozen=True)
class DPOReport:
    pairs: int
    steps: int
    loss: float
    output: str


def train_dpo(
    policy: Path,
    pairs: Sequence[dict[str, Any]],
    out: Path,
    spec: DPOSpec,
    *,
    metrics_path: Path,
    seed: int = 0,
    report_to: Sequence[str] = (),
    round_number: int = 0,
    bf16: bool = False,
) -> DPOReport:
    """Train `policy` on `pairs` (`PreferencePair.record()` dicts); write `out/adapter`,
    `out/merged` and `out/dpo.json`.

    Raises:
        RuntimeError: the train extra is missing.
        ValueError: no pairs, or the loss was not finite (nothing is saved).
    """
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = load_folder(policy, bf16=bf16)
    columns = ("prompt", "chosen", "rejected")  # `margin` is ours, not DPO's
    records = [{key: pair[key] for key in columns} for pair in pairs]
    config = DPOConfig(
        **trainer_args(
            out,
            report_to=report_to,
            seed=seed,
            bf16=bf16,
            beta=spec.beta,
            **schedule_args(spec),
        )
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
    report = DPOReport(len(records), int(result.global_step), loss, str(out))
    if trainer.is_world_process_zero():
        (out / REPORT_FILE).write_text(json.dumps(asdict(report)), encoding="utf-8")
    return report


async def launch_dpo(
    launcher: Sequence[str],
    policy: Path,
    pairs_file: Path,
    out: Path,
    spec: DPOSpec,
    *,
    metrics_path: Path,
    seed: int,
    report_to: Sequence[str],
    round_number: int,
    bf16: bool,
) -> DPOReport:
    """`train_dpo` as its own program under `launcher` (e.g. `accelerate launch ...`).

    Raises:
        RuntimeError: the program failed; the message has the end of its output.
    """
    (out / REPORT_FILE).unlink(missing_ok=True)
    command = [
        *launcher,
        "-m",
        "flux_agent.training.dpo",
        f"--policy={policy}",
        f"--pairs={pairs_file}",
        f"--out={out}",
        f"--spec={spec.model_dump_json()}",
        f"--metrics={metrics_path}",
        f"--seed={seed}",
        f"--round={round_number}",
        *(f"--report-to={name}" for name in report_to),
        *(["--bf16"] if bf16 else []),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0 or not (out / REPORT_FILE).exists():
        tail = output.decode(errors="replace")[-2000:]
        raise RuntimeError(
            f"the DPO update failed (exit {process.returncode}): {' '.join(command[:4])} ...\n"
            f"{tail}"
        )
    return DPOReport(**json.loads((out / REPORT_FILE).read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m flux_agent.training.dpo`: one DPO update from files (see `launch_dpo`)."""
    parser = argparse.ArgumentParser(prog="python -m flux_agent.training.dpo")
    parser.add_argument("--policy", type=Path, required=True, help="HF folder to start from")
    parser.add_argument("--pairs", type=Path, required=True, help="pairs.jsonl of a round")
    parser.add_argument("--out", type=Path, required=True, help="writes adapter/, merged/")
    parser.add_argument("--spec", required=True, help="the recipe's rl.dpo section as JSON")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics.jsonl to append to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--round", type=int, default=0)
    parser.add_argument("--report-to", action="append", default=[])
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args(argv)
    with args.pairs.open(encoding="utf-8") as lines:
        pairs = [json.loads(line) for line in lines if line.strip()]
    train_dpo(
        args.policy,
        pairs,
        args.out,
        DPOSpec.model_validate_json(args.spec),
        metrics_path=args.metrics,
        seed=args.seed,
        report_to=args.report_to,
        round_number=args.round,
        bf16=args.bf16,
    )


if __name__ == "__main__":
    main()
