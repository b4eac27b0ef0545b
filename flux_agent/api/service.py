"""What the API does, with no HTTP in it: solves, runs, templates, health.

`FluxService` holds the long-lived parts (named backends, the template store,
the sandbox, the run store) and enforces the limits: at most
`max_concurrent_solves` solves at once (`Busy` past that, never a queue that
grows without bound) and a deadline per solve (`SolveTimeout`, the run's
checkpoint kept so it can be resumed). Failures are `ServiceError`s with a
`kind`; the routes turn kinds into status codes.

A solve is a `SolveJob`: its events come from a producer task feeding a queue,
so a deadline or a vanished client cancels the graph cleanly, between nodes or
mid-generation, and the job's slot is always given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from flux_agent.agent import (
    AgentContext,
    FluxAgent,
    RoleUsage,
    RunNotFound,
    SolveResult,
    validate_problem,
)
from flux_agent.agent.runner import Event, list_runs, load_run
from flux_agent.api.protocol import (
    CHAT_MODEL,
    Budgets,
    ChatCompletionRequest,
    FieldError,
    Health,
    ResumeRequest,
    RunList,
    SolveRequest,
    TemplateCreated,
    TemplateHit,
    TemplateSearch,
    chat_chunk,
    chat_usage,
)
from flux_agent.backends import BackendError, LLMBackend, build_backend
from flux_agent.config import AgentSettings, BackendSettings, Settings
from flux_agent.eval.outcome import Strategy
from flux_agent.templates import StoreError, TemplateStore, ThoughtTemplate
from flux_agent.templates.admission import Admission
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.model import DOMAINS
from flux_agent.verify.sandbox import Sandbox

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request the service cannot carry out; `kind` says which kind of failure."""

    kind: ClassVar[str] = "server_error"

    def __init__(
        self, message: str, *, fields: list[FieldError] | None = None, run_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.run_id = run_id


class InvalidRequest(ServiceError):
    kind = "invalid_request_error"


class NotFound(ServiceError):
    kind = "not_found"


class Conflict(ServiceError):
    kind = "conflict"


class Busy(ServiceError):
    kind = "rate_limit"


class SolveTimeout(ServiceError):
    kind = "timeout"


class Unavailable(ServiceError):
    kind = "unavailable"


_ERRORS: dict[str, type[ServiceError]] = {
    cls.kind: cls
    for cls in (ServiceError, InvalidRequest, NotFound, Conflict, Busy, SolveTimeout, Unavailable)
}


class ServiceLimits(BaseModel):
    """What one server allows."""

    api_key: str | None = Field(default=None, description="Bearer key for /v1; None = open.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_concurrent_solves: int = Field(default=2, ge=1)
    solve_timeout_s: float = Field(default=600.0, gt=0, description="Also the cap per request.")


def error_event(error: ServiceError) -> Event:
    detail: dict[str, Any] = {"type": error.kind, "message": error.message}
    if error.run_id:
        detail["run_id"] = error.run_id
    return {"type": "error", "error": detail}


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
                    detail = event["error"]
                    error = _ERRORS[detail["type"]]
                    raise error(detail["message"], run_id=detail.get("run_id"))
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


class FluxService:
    """The agent as a service: named backends, one store, one run store, limits.

    Args:
        settings: paths, default budgets, store settings.
        backends: name -> a live backend or the settings to build one on first use.
        store, sandbox, embedder: shared by every request (the embedder judges new
            templates against the library's techniques).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: TemplateStore,
        sandbox: Sandbox,
        backends: Mapping[str, LLMBackend | BackendSettings],
        embedder: TextEmbedder | None = None,
        limits: ServiceLimits | None = None,
        default_navigator: str = "navigator",
        default_solver: str = "solver",
    ) -> None:
        for name in (default_navigator, default_solver):
            if name not in backends:
                raise ValueError(f"no backend named {name!r}")
        self.settings = settings
        self.limits = limits or ServiceLimits()
        self.store = store
        self.sandbox = sandbox
        self.embedder = embedder
        self.default_navigator = default_navigator
        self.default_solver = default_solver
        self.started = int(time.time())
        self._configured = dict(backends)
        self._live: dict[str, LLMBackend] = {}
        self._active = 0
        self._admission: Admission | None = None
        self._admission_lock = asyncio.Lock()

    # Solving -----------------------------------------------------------------------

    async def start_solve(self, request: SolveRequest) -> SolveJob:
        """Admit a solve (or raise `Busy`, `InvalidRequest`, `Conflict`)."""
        agent = self._agent(request.navigator, request.solver, request.budgets)
        if request.run_id is not None and await self._run_exists(request.run_id):
            raise Conflict(
                f"run {request.run_id!r} exists; resume it or choose another id",
                fields=[FieldError(field="run_id", message="already used")],
            )
        run_id = request.run_id or uuid.uuid4().hex[:12]
        problem, expected = request.problem, request.expected
        if request.strategy != "flux":
            baseline = self._baseline(request, agent)
            return self._admit(
                run_id,
                lambda: baseline_events(baseline, run_id, problem, expected, self.sandbox),
                request.timeout_s,
            )

        def events() -> AsyncIterator[Event]:
            return agent.stream(problem, run_id=run_id, expected=expected)

        return self._admit(run_id, events, request.timeout_s)

    async def start_resume(self, run_id: str, request: ResumeRequest) -> SolveJob:
        if not await self._run_exists(run_id):
            raise NotFound(f"no run with id {run_id!r}")
        agent = self._agent(None, None, None)
        return self._admit(run_id, lambda: agent.resume(run_id), request.timeout_s)

    def start_chat(self, request: ChatCompletionRequest) -> SolveJob:
        """A solve for the chat facade: the last user message is the problem."""
        if request.model != CHAT_MODEL:
            raise NotFound(f"model {request.model!r} does not exist; this server serves 'flux'")
        users = [m for m in request.messages if m.role == "user"]
        problem = users[-1].text().strip() if users else ""
        if not problem:
            raise InvalidRequest(
                "the last user message is empty: it must hold the problem",
                fields=[FieldError(field="messages", message="no user message with text")],
            )
        try:
            solve = SolveRequest(problem=problem, budgets=_chat_budgets(request))
        except ValidationError as exc:
            raise InvalidRequest(_first_message(exc), fields=field_errors(exc)) from None
        agent = self._agent(None, None, solve.budgets)
        run_id = uuid.uuid4().hex[:12]
        return self._admit(run_id, lambda: agent.stream(problem, run_id=run_id), None)

    def _baseline(self, request: SolveRequest, agent: FluxAgent) -> Strategy:
        from flux_agent.eval.strategies import StrategyOptions, build_strategies

        budget = request.budgets.max_total_tokens if request.budgets else None
        options = StrategyOptions(max_tokens=budget or StrategyOptions.max_tokens)
        try:
            strategies = build_strategies(
                [request.strategy],
                solver=agent.context.solver,
                sandbox=self.sandbox,
                agent=agent,
                options=options,
            )
        except ValueError as exc:
            field = [FieldError(field="strategy", message=str(exc))]
            raise InvalidRequest(str(exc), fields=field) from None
        return strategies[request.strategy]

    def _admit(
        self,
        run_id: str,
        events: Callable[[], AsyncIterator[Event]],
        timeout_s: float | None,
    ) -> SolveJob:
        if self._active >= self.limits.max_concurrent_solves:
            raise Busy(
                f"the server is already running {self._active} solves, its limit; "
                "try again when one finishes"
            )
        self._active += 1
        deadline = min(timeout_s or self.limits.solve_timeout_s, self.limits.solve_timeout_s)
        return SolveJob(run_id, events, deadline, self._released)

    def _released(self) -> None:
        self._active -= 1

    @property
    def active_solves(self) -> int:
        return self._active

    def _agent(self, navigator: str | None, solver: str | None, budgets: Any) -> FluxAgent:
        overrides = budgets.model_dump(exclude_none=True) if budgets is not None else {}
        try:
            agent_settings = AgentSettings(**{**self.settings.agent.model_dump(), **overrides})
        except ValidationError as exc:
            raise InvalidRequest(_first_message(exc), fields=field_errors(exc, "budgets")) from None
        context = AgentContext(
            navigator=self._backend(navigator or self.default_navigator, "navigator"),
            solver=self._backend(solver or self.default_solver, "solver"),
            store=self.store,
            settings=agent_settings,
            sandbox=self.sandbox,
        )
        return FluxAgent(context, self.settings.runs_path)

    def _backend(self, name: str, role: str) -> LLMBackend:
        if name in self._live:
            return self._live[name]
        configured = self._configured.get(name)
        if configured is None:
            known = ", ".join(sorted(self._configured))
            raise InvalidRequest(
                f"no backend named {name!r} (this server has: {known})",
                fields=[FieldError(field=role, message=f"unknown backend {name!r}")],
            )
        if isinstance(configured, BackendSettings):
            # Two names for the same endpoint share one backend (and one loaded model).
            same = [n for n, s in self._configured.items() if s == configured and n in self._live]
            try:
                backend = self._live[same[0]] if same else build_backend(configured)
            except BackendError as exc:
                raise Unavailable(f"backend {name!r} cannot start: {exc}") from None
        else:
            backend = configured
        self._live[name] = backend
        return backend

    async def _run_exists(self, run_id: str) -> bool:
        try:
            await load_run(self.settings.runs_path, run_id)
        except RunNotFound:
            return False
        return True

    # Runs --------------------------------------------------------------------------

    async def runs(self, limit: int, offset: int) -> RunList:
        summaries = await list_runs(self.settings.runs_path, limit=limit, offset=offset)
        return RunList(runs=summaries, limit=limit, offset=offset)

    async def run(self, run_id: str) -> SolveResult:
        try:
            return await load_run(self.settings.runs_path, run_id)
        except RunNotFound:
            raise NotFound(f"no run with id {run_id!r}") from None

    # Templates ---------------------------------------------------------------------

    async def search_templates(self, query: str, k: int, domain: str | None) -> TemplateSearch:
        query = query.strip()
        if not query:
            raise InvalidRequest(
                "the search query is empty", fields=[FieldError(field="q", message="empty")]
            )
        if domain is not None and domain not in DOMAINS:
            raise InvalidRequest(
                f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}",
                fields=[FieldError(field="domain", message="unknown domain")],
            )
        hits = await asyncio.to_thread(self.store.search, query, k, domain)
        results = [TemplateHit(score=round(hit.score, 4), template=hit.template) for hit in hits]
        return TemplateSearch(query=query, results=results)

    async def template(self, template_id: str) -> ThoughtTemplate:
        template = await asyncio.to_thread(self.store.get, template_id)
        if template is None:
            raise NotFound(f"no template with id {template_id!r}")
        return template

    async def add_template(self, payload: Any) -> TemplateCreated:
        """Validate a template (schema, tags, check, id, near-duplicates), write it, index it."""
        if not isinstance(payload, dict):
            raise InvalidRequest("the body must be a JSON object (a template)")
        payload = {**payload}
        payload.setdefault(
            "provenance", {"kind": "authored", "source": "api", "date": dt.date.today()}
        )
        try:
            template = ThoughtTemplate.model_validate(payload)
        except ValidationError as exc:
            raise InvalidRequest(
                f"the template is not valid: {_first_message(exc)}", fields=field_errors(exc)
            ) from None
        admission = await self._admission_for_library()
        rejections = await asyncio.to_thread(admission.judge, template, self.sandbox)
        if rejections:
            fields = [FieldError(field=r.field, message=r.message) for r in rejections]
            error = Conflict if any(r.kind == "conflict" for r in rejections) else InvalidRequest
            raise error(f"the template was not added: {rejections[0].message}", fields=fields)
        try:
            path = await asyncio.to_thread(admission.add, template)
        except FileExistsError as exc:
            raise Conflict(str(exc), fields=[FieldError(field="id", message="taken")]) from None
        await asyncio.to_thread(self.store.index, [template], prune=False)
        return TemplateCreated(template=template, path=str(path.relative_to(admission.folder)))

    async def _admission_for_library(self) -> Admission:
        async with self._admission_lock:
            if self._admission is None:
                if self.embedder is None:
                    raise Unavailable("this server was started without an embedding model")
                from flux_agent.templates import default_library_path

                folder = Path(self.settings.library_path or default_library_path())
                self._admission = await asyncio.to_thread(Admission.load, folder, self.embedder)
            return self._admission

    # Health ------------------------------------------------------------------------

    async def readiness(self) -> Health:
        checks: dict[str, str] = {}
        ok = True
        try:
            count = await asyncio.to_thread(self.store.count)
            checks["store"] = f"ok: {count} templates"
            ok = ok and count > 0
            if count == 0:
                checks["store"] = "empty: run `flux library build`"
        except Exception as exc:
            checks["store"] = f"unreachable: {exc}"
            ok = False
        for name, configured in self._configured.items():
            passed, text = await _backend_check(self._live.get(name), configured)
            checks[f"backend {name}"] = text
            ok = ok and passed
        return Health(status="ready" if ok else "unavailable", checks=checks)

    async def aclose(self) -> None:
        for backend in {id(b): b for b in self._live.values()}.values():
            await backend.aclose()


async def chat_chunks(job: SolveJob, include_usage: bool) -> AsyncIterator[dict[str, Any]]:
    """A solve as `chat.completion.chunk`s: step text as reasoning, the answer as content.

    Every chunk also carries the graph event it came from in `flux_event`; the last
    content chunk carries the whole `SolveResult` in `flux`. An error becomes an
    OpenAI-style `{"error": ...}` object, which OpenAI clients raise as an exception.
    """
    created = int(time.time())
    yield chat_chunk(job.run_id, created, {"role": "assistant", "content": ""})
    async with contextlib.aclosing(job.events()) as events:
        async for event in events:
            kind = event["type"]
            if kind == "keepalive":
                yield event
            elif kind == "error":
                yield {"error": event["error"]}
                return
            elif kind == "result":
                result: SolveResult = event["result"]
                answer = {"content": result.answer or ""}
                flux = result.model_dump(mode="json")
                yield chat_chunk(job.run_id, created, answer, finish_reason="stop", flux=flux)
                if include_usage:
                    usage = chat_usage(result).model_dump()
                    yield {**chat_chunk(job.run_id, created, {}, usage=usage), "choices": []}
                return
            else:
                delta = {"reasoning_content": event["delta"]} if kind == "step_text" else {}
                yield chat_chunk(job.run_id, created, delta, flux_event=event)


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


async def _backend_check(
    live: LLMBackend | None, configured: LLMBackend | BackendSettings
) -> tuple[bool, str]:
    if not isinstance(configured, BackendSettings):
        return True, f"ok: {configured.name}"
    described = configured.describe()
    if configured.kind == "llama_cpp":
        from flux_agent.backends import embedded_model_path

        try:
            path = Path(configured.model) if configured.model else embedded_model_path()
        except BackendError as exc:
            return False, f"missing: {exc}"
        if not path.is_file():
            return False, f"missing model file: {path}"
        return True, f"ok: {described}" + (" (loaded)" if live is not None else "")
    if configured.kind == "openai":
        import httpx

        headers = {"Authorization": f"Bearer {configured.api_key}"} if configured.api_key else {}
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                response = await client.get(f"{configured.base_url}/models", headers=headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return False, f"unreachable: {described}: {type(exc).__name__}: {exc}"
        return True, f"ok: {described}"
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (pip install 'flux-agent[vllm]', needs a GPU)"
    return True, f"ok: {described}"


def field_errors(exc: Any, prefix: str = "") -> list[FieldError]:
    """Pydantic's (or FastAPI's) errors as `field: message` pairs (`steps.2`, `example.answer`)."""
    fields = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"] if part not in _PLACES)
        name = ".".join(part for part in (prefix, location) if part) or "<body>"
        fields.append(FieldError(field=name, message=error["msg"]))
    return fields


_PLACES = ("body", "query", "path", "header")


def _first_message(exc: ValidationError) -> str:
    first = field_errors(exc)[0]
    return f"{first.field}: {first.message}"


def _chat_budgets(request: ChatCompletionRequest) -> Budgets | None:
    limit = request.max_completion_tokens or request.max_tokens
    return Budgets(max_total_tokens=limit) if limit else None
