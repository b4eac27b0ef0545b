"""What the HTTP API adds to a solve: latency to the first streamed event, and per-solve
overhead against the same solve from the CLI.

    .venv/bin/python benchmarks/api_overhead.py [--model embedded] [--runs 5]

It starts a real `flux serve` on 127.0.0.1, solves one problem `--runs` times through
`POST /v1/solve` (streamed), then the same number of times with `flux solve --json`,
all greedy with the same budgets, so each solve decodes the same tokens. Reported
per solve (medians):
- API: time to the first event and to the first generated text, wall time, and
  wall time minus the agent's own `timings.total` (= HTTP, service and SSE cost);
- CLI: wall time of the whole process (start-up, loading models) and the same
  difference.
The data folder (`--data-dir`, default bench-runs/api-data) keeps the index between
runs; the first run builds it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "flux_agent.cli", "serve", "--port", str(port),
        "--navigator", model, "--solver", model, "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "FLUX_DATA_DIR": str(data_dir)}
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"flux serve exited; see {data_dir / 'server.log'}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    sys.exit("flux serve did not start within 600 s")


def api_solve(base: str, budgets: dict[str, int]) -> dict[str, float]:
    body = {"problem": PROBLEM, "stream": True, "budgets": budgets}
    start = time.perf_counter()
    first_event = first_text = None
    result = None
    with httpx.stream("POST", f"{base}/v1/solve", json=body, timeout=900) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter() - start
            event = json.loads(line.removeprefix("data: "))
            first_event = first_event if first_event is not None else now
            if event["type"] == "step_text" and first_text is None:
                first_text = now
            if event["type"] == "result":
                result = event["result"]
    wall = time.perf_counter() - start
    assert result is not None, "the stream ended without a result"
    return {
        "first_event": first_event or 0.0,
        "first_text": first_text or 0.0,
        "wall": wall,
        "agent": result["timings"]["total"],
        "tokens": sum(u["completion_tokens"] for u in result["usage"].values()),
    }


def cli_solve(model: str, data_dir: Path, budgets: dict[str, int]) -> dict[str, float]:
    command = [
        sys.executable, "-m", "flux_agent.cli", "solve", "--json",
        "--navigator", model, "--solver", model,
        "--max-steps", str(budgets["max_steps"]), PROBLEM,
    ]  # fmt: skip
    env = {**os.environ, "FLUX_DATA_DIR": str(data_dir)}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"flux solve failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {
        "wall": wall,
        "agent": result["timings"]["total"],
        "tokens": sum(u["completion_tokens"] for u in result["usage"].values()),
    }


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="backend spec for both roles")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench-runs" / "api-data")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    budgets = {"max_steps": args.max_steps}

    process, base = start_server(args.model, args.data_dir)
    try:
        api_solve(base, budgets)  # warm-up: loads the model
        api = []
        for i in range(args.runs):
            api.append(api_solve(base, budgets))
            print(f"api {i + 1}/{args.runs}: {api[-1]}", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=60)
    cli = []
    for i in range(args.runs):
        cli.append(cli_solve(args.model, args.data_dir, budgets))
        print(f"cli {i + 1}/{args.runs}: {cli[-1]}", flush=True)

    api_overhead = [row["wall"] - row["agent"] for row in api]
    cli_overhead = [row["wall"] - row["agent"] for row in cli]
    print(f"\nmedians over {args.runs} solves each (model: {args.model}):")
    print(f"  API first event       {median(api, 'first_event') * 1000:8.1f} ms")
    print(f"  API first step text   {median(api, 'first_text'):8.2f} s")
    api_agent, cli_agent = median(api, "agent"), median(cli, "agent")
    print(f"  API wall per solve    {median(api, 'wall'):8.2f} s  (agent {api_agent:.2f} s)")
    print(f"  API overhead          {statistics.median(api_overhead) * 1000:8.1f} ms per solve")
    print(f"  CLI wall per solve    {median(cli, 'wall'):8.2f} s  (agent {cli_agent:.2f} s)")
    print(f"  CLI overhead          {statistics.median(cli_overhead):8.2f} s per solve (start-up)")
    print(f"  API / CLI wall        {median(api, 'wall') / median(cli, 'wall'):8.3f}")
    tokens = {row["tokens"] for row in api + cli}
    print(f"  generated tokens per solve: {sorted(tokens)} (equal = the same greedy solve)")


if __name__ == "__main__":
    main()
