"""What an evaluation reads and writes: dataset items, per-item results, run metadata.

A run directory holds `run.json` (an `EvalRunInfo`: what was run, on which
backends, with which settings) and `results.jsonl` (one `EvalRecord` per
strategy and item, appended as each finishes, so an interrupted run resumes by
skipping the pairs already there). The report reads only these two files.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RESULTS_FILE = "results.jsonl"
RUN_INFO_FILE = "run.json"


class EvalItem(BaseModel):
    """One problem of a dataset, with its reference answer."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Stable within the dataset, e.g. 'math_train.jsonl:17'.")
    problem: str
    answer: str = Field(description="The reference final answer (already extracted).")
    subject: str | None = None
    level: int | None = None
    solution: str | None = Field(
        default=None, description="A worked solution, when the source has one (library growth)."
    )


class TokenCount(BaseModel):
    """Tokens and calls spent by one role (navigator, solver) on one item."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


class EvalRecord(BaseModel):
    """The outcome of one strategy on one item."""

    strategy: str
    item_id: str
    subject: str | None = None
    level: int | None = None
    expected: str
    answer: str | None = Field(description="The strategy's final answer; None when it gave none.")
    correct: bool = Field(description="Math-Verify equivalence of `answer` and `expected`.")
    usage: dict[str, TokenCount] = Field(default_factory=dict, description="Per role.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    wall_s: float = 0.0
    error: str | None = Field(default=None, description="Why the strategy failed, if it did.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Strategy-specific: votes, scores, run id, ..."
    )


class EvalRunInfo(BaseModel):
    """What a run directory was produced by; written once, checked on resume."""

    dataset: str
    items: int
    strategies: list[str]
    navigator: str
    solver: str
    samples: int = Field(description="N for self-consistency and best-of-n.")
    settings: dict[str, Any] = Field(default_factory=dict)
    started: str = Field(description="ISO 8601 time the run was first started.")
    flux_version: str
