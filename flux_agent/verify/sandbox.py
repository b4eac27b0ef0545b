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
import json
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
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


_JOBS: dict[str, Callable[..., Any]] = {"evaluate": _evaluate, "equivalent": _equivalent}


def serve() -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    import logging

    import sympy  # noqa: F401  - warm the import before the first deadline starts

    # The timeout is ours (the caller's deadline), so Math-Verify's warning about it is noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the reply channel
    out.write(json.dumps({"status": "ready"}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            payload = _JOBS[request["job"]](*request["args"])
            if isinstance(payload, Evaluation):
                payload = {"text": payload.text, "latex": payload.latex}
            reply = {"status": "ok", "payload": payload}
        except MemoryError:
            reply = {"status": "error", "payload": "ran out of memory"}
        except RecursionError:
            reply = {"status": "error", "payload": "expression nests too deeply"}
        except Exception as exc:  # the worker must answer, whatever the input did
            reply = {"status": "error", "payload": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Sandbox:
    """Runs jobs in one long-lived worker process; thread-safe."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def evaluate(self, expression: str, timeout_s: float | None = None) -> Evaluation:
        """Evaluate a restricted expression. Raises SandboxError or SandboxTimeout."""
        payload = self._call("evaluate", (expression,), timeout_s)
        return Evaluation(text=payload["text"], latex=payload["latex"])

    def equivalent(self, candidate: str, reference: str, timeout_s: float | None = None) -> bool:
        """Math-Verify equivalence of two answers (LaTeX or plain)."""
        return bool(self._call("equivalent", (candidate, reference), timeout_s))

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _call(self, job: str, args: tuple[Any, ...], timeout_s: float | None) -> Any:
        deadline = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            process = self._ensure_worker()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps({"job": job, "args": list(args)}) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._stop()
                raise SandboxError(f"{job}: the math worker is gone") from None
            line = _read_line(process, deadline)
            if line is None:
                self._stop()
                raise SandboxTimeout(f"{job} took longer than {deadline:g} s")
            if not line:
                self._stop()
                raise SandboxError(f"{job}: the math worker died (memory limit?)")
        reply = json.loads(line)
        if reply["status"] == "error":
            raise SandboxError(reply["payload"])
        return reply["payload"]

    def _ensure_worker(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "flux_agent.verify.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        if _read_line(process, _STARTUP_GRACE_S) is None:
            process.kill()
            raise SandboxError("the math worker did not start")
        self._process = process
        return process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
        self._process = None


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str | None:
    """One reply line, '' if the worker died, None if the deadline passed first."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    if not ready:
        return None
    return process.stdout.readline()


@functools.cache
def default_sandbox() -> Sandbox:
    """The process-wide sandbox, started on first use and stopped at exit."""
    sandbox = Sandbox()
    atexit.register(sandbox.close)
    return sandbox


if __name__ == "__main__":
    serve()
