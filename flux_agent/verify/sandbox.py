"""A worker process that does untrusted math with a deadline and a memory cap.

Two jobs run here, never in the caller's process:
- evaluating a restricted sympy expression (`expressions.parse_expression`), and
- answer equivalence with Math-Verify, whose own SIGALRM timeout only works in a
  main thread and is not thread-safe, so it is called with that timeout off and
  bounded from outside instead.

One worker serves calls one at a time (a lock). A call that overruns its
deadline kills the worker; the next call starts a fresh one. Starting a worker
costs about a second (importing sympy); after that a call costs milliseconds.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

DEFAULT_TIMEOUT_S = 5.0
_MEMORY_LIMIT_BYTES = 3 * 1024**3
_STARTUP_GRACE_S = 30.0


class SandboxTimeout(TimeoutError):
    """The job did not finish before its deadline; the worker was killed."""


class SandboxError(RuntimeError):
    """The job failed inside the worker; the message says why (never a traceback)."""


@dataclass(frozen=True)
class Evaluation:
    """An evaluated expression: sympy's plain text form and an answer-style LaTeX form."""

    text: str
    latex: str


def _evaluate(expression: str) -> Evaluation:
    from flux_agent.verify.expressions import parse_expression, to_answer_latex

    value = parse_expression(expression)
    if hasattr(value, "doit"):
        value = value.doit()
    return Evaluation(text=str(value), latex=to_answer_latex(value))


def _equivalent(candidate: str, reference: str) -> bool:
    from math_verify import parse, verify

    gold = parse(_as_math(reference), parsing_timeout=None)
    answer = parse(_as_math(candidate), parsing_timeout=None)
    if not gold or not answer:
        return candidate.strip() == reference.strip()
    return bool(verify(gold, answer, timeout_seconds=None))


def _as_math(text: str) -> str:
    text = text.strip()
    if "\\boxed" in text or text.startswith("$"):
        return text
    return f"${text}$"


_JOBS = {"evaluate": _evaluate, "equivalent": _equivalent}


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    import logging

    import sympy  # noqa: F401  - warm the import before the first deadline starts

    # The timeout is ours (the caller's deadline), so Math-Verify's warning about it is noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    conn.send(("ready", None))
    while True:
        try:
            job, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", _JOBS[job](*args)))
        except MemoryError:
            conn.send(("error", "ran out of memory"))
        except RecursionError:
            conn.send(("error", "expression nests too deeply"))
        except Exception as exc:  # the worker must answer, whatever the input did
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Sandbox:
    """Runs jobs in one long-lived worker process; thread-safe."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def evaluate(self, expression: str, timeout_s: float | None = None) -> Evaluation:
        """Evaluate a restricted expression. Raises SandboxError or SandboxTimeout."""
        return self._call("evaluate", (expression,), timeout_s)

    def equivalent(self, candidate: str, reference: str, timeout_s: float | None = None) -> bool:
        """Math-Verify equivalence of two answers (LaTeX or plain)."""
        return self._call("equivalent", (candidate, reference), timeout_s)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _call(self, job: str, args: tuple[Any, ...], timeout_s: float | None) -> Any:
        deadline = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            conn = self._ensure_worker()
            conn.send((job, args))
            if not conn.poll(deadline):
                self._stop()
                raise SandboxTimeout(f"{job} took longer than {deadline:g} s")
            try:
                status, payload = conn.recv()
            except EOFError:
                self._stop()
                raise SandboxError(f"{job}: the worker died (memory limit?)") from None
        if status == "error":
            raise SandboxError(payload)
        return payload

    def _ensure_worker(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), daemon=True, name="flux-sandbox")
        process.start()
        child.close()
        if not parent.poll(_STARTUP_GRACE_S):
            process.kill()
            raise SandboxError("the math worker did not start")
        parent.recv()
        self._process, self._conn = process, parent
        return parent

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


@functools.cache
def default_sandbox() -> Sandbox:
    """The process-wide sandbox, started on first use and stopped at exit."""
    sandbox = Sandbox()
    atexit.register(sandbox.close)
    return sandbox
