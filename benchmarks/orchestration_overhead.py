"""How much the agent costs around the model: orchestration time per solve vs decoding time.

Runs the full graph (retrieval from a real Chroma index with the real embedding
model, SQLite checkpoints, the math sandbox, structured-output parsing) with a
scripted backend that answers instantly, so every second measured is ours, not
the model's. Then times real solves on the embedded model for the ratio.

    python benchmarks/orchestration_overhead.py [--runs 20] [--model-runs 3]

Prints medians; machines here are noisy, so compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from flux_agent.agent import AgentContext, FluxAgent
from flux_agent.backends.base import GenerationRequest
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.config import Settings
from flux_agent.factory import build_index, create_agent
from flux_agent.templates.chroma_store import open_store
from flux_agent.verify import default_sandbox

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"


def _instant_reply(request: GenerationRequest) -> str:
    """A valid reply for whichever call this is, read off the request's schema."""
    if request.json_schema is None:
        return "b = -5 and a = 1, so the sum is -b/a = 5.\nResult: 5"
    schema = request.json_schema
    properties = schema.get("properties", {})
    if "steps" in properties:
        ids = schema["$defs"]["PlanStep"]["properties"]["template_id"]["enum"]
        steps = [
            {"template_id": ids[0], "goal": "Add the roots."},
            {"template_id": ids[1], "goal": "Check the result."},
        ]
        return json.dumps({"analysis": "sum of roots", "steps": steps})
    if "expression" in properties:
        return json.dumps({"result": "5", "expression": "-(-5)/1"})
    return json.dumps({"answer": "5"})


async def _time_solves(agent: FluxAgent, runs: int) -> tuple[list[float], int]:
    seconds, calls = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = await agent.solve(PROBLEM)
        seconds.append(time.perf_counter() - start)
        assert result.answer and result.verified, result.failures
        calls = result.llm_calls
    return seconds, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="scripted solves to time")
    parser.add_argument(
        "--model-runs", type=int, default=3, help="embedded-model solves to time (0 skips them)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        store = open_store(settings)
        built = build_index(settings, store)
        print(f"index build: {built.total} templates in {built.seconds:.2f} s")

        instant = ScriptedBackend(_instant_reply)
        context = AgentContext(instant, instant, store, settings.agent, default_sandbox())
        agent = FluxAgent(context, settings.runs_path)
        asyncio.run(_time_solves(agent, 1))  # warm the sandbox and the checkpointer
        overhead, calls = asyncio.run(_time_solves(agent, args.runs))
        median_overhead = statistics.median(overhead)
        print(
            f"orchestration per solve (2 steps, {calls} LLM calls, scripted): "
            f"median {median_overhead * 1000:.1f} ms over {args.runs} runs "
            f"(min {min(overhead) * 1000:.1f}, max {max(overhead) * 1000:.1f})"
        )

        if args.model_runs:
            real = create_agent(settings)
            timings = []
            for _ in range(args.model_runs):
                result = asyncio.run(real.solve(PROBLEM))
                timings.append(result.timings["total"])
                tokens = sum(u.completion_tokens for u in result.usage.values())
                print(
                    f"  embedded solve: {result.timings['total']:.1f} s, {tokens} generated "
                    f"tokens, {result.llm_calls} calls"
                )
            median_model = statistics.median(timings)
            print(f"embedded-model solve: median {median_model:.1f} s over {args.model_runs} runs")
            print(f"orchestration / model solve: {median_overhead / median_model:.2%}")


if __name__ == "__main__":
    main()
