"""A solve admitted by the service, as a stream of events with a deadline.

`SolveJob.events()` runs the solve in a producer task that feeds a queue, so a
deadline or a vanished client cancels the graph cleanly (between nodes or
mid-generation) and the job's slot is always given back. `baseline_events` runs
one of the eval baselines as the same kind of event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import ClassVar

from flux_agent.agent import RoleUsage, RunNotFound, SolveResult, validate_problem
from flux_agent.agent.runner import Event
from flux_agent.api.errors import (
    NotFound,
    ServiceError,
    SolveTimeout,
    Unavailable,
    error_event,
    raise_error_event,
)
from flux_agent.backends import BackendError
from flux_agent.eval.outcome import Strategy
from flux_agent.templates import StoreError
from flux_agent.verify.sandbox import Sandbox

logger = logging.getLogger(__name__)


class SolveJob:
    """One admitted solve: iterate `events()` (streaming) or await `result()`, once.

    A `keepalive` event is yielded after `keepalive_s` seconds without another, so a
    stream stays visibly alive through a long silent generation.
    """

    keepalive_s: ClassVar[float] = 15.0

    def __init__(
        self,
        run_id: str,
        events: Callable[[], AsyncIterator[Event]],
        timeout_s: float,
        release: Callable[[], None],
    ) -> None:
        self.run_id = run_id
        self._make_events = events
        self._timeout_s = timeout_s
        self._release = release
        self._released = False

    def release(self) -> None:
        """Give the solve slot back (idempotent; `events()` does it when it ends)."""
        if not self._released:
            self._released = True
            self._release()

    async def events(self) -> AsyncGenerator[Event, None]:
        """The graph's events; the last is `result`, or `error` (a timeout or a failure)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(queue))
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.keepalive_s)
                except TimeoutError:
                    yield {"type": "keepalive"}
                    continue
                if event is None:
                    break
                yield event
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            self.release()

    async def result(self) -> SolveResult:
        async with contextlib.aclosing(self.events()) as events:
            async for event in events:
                if event["type"] == "result":
                    result: SolveResult = event["result"]
                    return result
                if event["type"] == "error":
                    raise_error_event(event)
        raise ServiceError("the solve ended without a result", run_id=self.run_id)

    async def _produce(self, queue: asyncio.Queue[Event | None]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                async for event in self._make_events():
                    queue.put_nowait(event)
        except TimeoutError:
            message = (
                f"the solve took longer than {self._timeout_s:g} s and was stopped; "
                f"its progress is saved: POST /v1/runs/{self.run_id}/resume continues it"
            )
            queue.put_nowait(error_event(SolveTimeout(message, run_id=self.run_id)))
        except RunNotFound:
            queue.put_nowait(error_event(NotFound(f"no run with id {self.run_id!r}")))
        except (BackendError, StoreError) as exc:
            queue.put_nowait(error_event(Unavailable(str(exc), run_id=self.run_id)))
        except Exception:
            logger.exception("solve %s failed", self.run_id)
            message = "the solve failed with an internal error (details are in the server log)"
            queue.put_nowait(error_event(ServiceError(message, run_id=self.run_id)))
        finally:
            queue.put_nowait(None)


async def baseline_events(
    strategy: Strategy, run_id: str, problem: str, expected: str | None, sandbox: Sandbox
) -> AsyncIterator[Event]:
    """A baseline's answer as the agent's event sequence: `run`, `answer`, `result`."""
    yield {"type": "run", "run_id": run_id, "resumed": False, "strategy": strategy.name}
    began = time.perf_counter()
    outcome = await strategy(validate_problem(problem))
    correct = None
    if expected is not None:
        correct = outcome.answer is not None and await asyncio.to_thread(
            sandbox.equivalent, outcome.answer, expected
        )
    verification = f"not checked: the {strategy.name} baseline checks no steps"
    yield {
        "type": "answer",
        "answer": outcome.answer,
        "verified": False,
        "verification": verification,
        "correct": correct,
    }
    usage = {
        role: RoleUsage(
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, calls=u.calls
        )
        for role, u in outcome.usage.items()
    }
    result = SolveResult(
        run_id=run_id,
        problem=problem,
        status="answered" if outcome.answer else "failed",
        answer=outcome.answer,
        verified=False,
        verification=verification,
        expected=expected,
        correct=correct,
        plan=None,
        steps=[],
        revisions=[],
        usage=usage,
        llm_calls=sum(u.calls for u in usage.values()),
        timings={"total": round(time.perf_counter() - began, 4)},
        failures=[outcome.error] if outcome.error else [],
    )
    yield {"type": "result", "result": result}
