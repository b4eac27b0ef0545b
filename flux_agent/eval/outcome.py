"""What every strategy returns, and the signature that makes strategies interchangeable.

A strategy is an async callable `(problem, *, seed) -> Outcome`: a final answer
(or None) plus the tokens and calls it spent per role, and details worth keeping
(votes, scores, the sample's text, the agent's run id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from flux_agent.backends.base import Usage

SOLVER = "solver"

TEXT_KEPT = 4000
"""Characters of a sample's text kept in the details (enough to read what went wrong)."""


@dataclass
class Outcome:
    """What a strategy produced for one problem."""

    answer: str | None
    usage: dict[str, Usage] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def total(self) -> Usage:
        return sum(self.usage.values(), Usage())


class Strategy(Protocol):
    """Anything that answers a problem. `seed` makes sampled strategies repeatable."""

    name: str

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome: ...
