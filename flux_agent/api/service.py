"""What the API does, with no HTTP in it: solves, runs, templates, health.

`FluxService` holds the long-lived parts (named backends, the template store,
the sandbox, the run store) and enforces the limits: at most
`max_concurrent_solves` solves at once (`Busy` past that, never a queue that
grows without bound) and a deadline per solve (`SolveTimeout`, the run's
checkpoint kept so it can be resumed). Failures are `ServiceError`s with a
`kind` (`errors.py`); the routes turn kinds into status codes. A solve is a
`SolveJob` (`jobs.py`), consumed as events or as one result.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from flux_agent.agent import (
    AgentContext,
    FluxAgent,
    RunNotFound,
    SolveResult,
)
from flux_agent.agent.runner import Event, list_runs, load_run
from flux_agent.api.chat import chat_budgets
from flux_agent.api.errors import (
    Busy,
    Conflict,
    InvalidRequest,
    NotFound,
    Unavailable,
    field_errors,
    first_message,
)
from flux_agent.api.jobs import SolveJob, baseline_events
from flux_agent.api.protocol import (
    CHAT_MODEL,
    ChatCompletionRequest,
    FieldError,
    Health,
    ResumeRequest,
    RunList,
    SolveRequest,
    TemplateCreated,
    TemplateHit,
    TemplateSearch,
)
from flux_agent.backends import BackendError, LLMBackend, build_backend
from flux_agent.config import AgentSettings, BackendSettings, Settings
from flux_agent.eval.outcome import Strategy
from flux_agent.templates import TemplateStore, ThoughtTemplate
from flux_agent.templates.admission import Admission
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.journal import IndexedStore
from flux_agent.templates.model import DOMAINS
from flux_agent.templates.writer import LibraryWriter, Origin
from flux_agent.verify.sandbox import Sandbox

logger = logging.getLogger(__name__)


class ServiceLimits(BaseModel):
    """What one server allows."""

    api_key: str | None = Field(default=None, description="Bearer key for /v1; None = open.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_concurrent_solves: int = Field(default=2, ge=1)
    solve_timeout_s: float = Field(default=600.0, gt=0, description="Also the cap per request.")


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
            solve = SolveRequest(problem=problem, budgets=chat_budgets(request))
        except ValidationError as exc:
            raise InvalidRequest(first_message(exc), fields=field_errors(exc)) from None
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
            raise InvalidRequest(first_message(exc), fields=field_errors(exc, "budgets")) from None
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
                f"the template is not valid: {first_message(exc)}", fields=field_errors(exc)
            ) from None
        admission = await self._admission_for_library()
        store = self.store if isinstance(self.store, IndexedStore) else None
        # No merging or renaming here: a person sent this template and gets a clear answer.
        writer = LibraryWriter(
            admission, self.sandbox, store, merge=False, rename=False, resume=False
        )
        origin = Origin(by="api", source=template.provenance.source)
        try:
            decision = await asyncio.to_thread(writer.submit, template, origin)
        except FileExistsError as exc:
            raise Conflict(str(exc), fields=[FieldError(field="id", message="taken")]) from None
        rejections = decision.rejections
        if decision.outcome == "rejected":
            fields = [FieldError(field=r.field, message=r.message) for r in rejections]
            error = Conflict if any(r.kind == "conflict" for r in rejections) else InvalidRequest
            raise error(f"the template was not added: {rejections[0].message}", fields=fields)
        if store is None:  # a store that cannot record the library's state is indexed here
            await asyncio.to_thread(self.store.index, [template], prune=False)
        assert decision.path is not None
        return TemplateCreated(
            template=template, path=str(decision.path.relative_to(admission.folder))
        )

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

    if configured.kind == "transformers":
        folder = Path(configured.model or "")
        if not (folder / "config.json").is_file():
            return False, f"missing model folder (no config.json): {folder}"
        if importlib.util.find_spec("transformers") is None:
            return False, "transformers is not installed (pip install 'flux-agent[train]')"
        return True, f"ok: {described}" + (" (loaded)" if live is not None else "")
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (pip install 'flux-agent[vllm]', needs a GPU)"
    return True, f"ok: {described}"
