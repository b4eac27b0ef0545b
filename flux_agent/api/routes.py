"""The HTTP routes: parse the request, call the service on `app.state`, send the reply.

Nothing here decides anything: limits, validation beyond the request models, and
every error live in `FluxService`. Streams are server-sent events (`sse.py`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from flux_agent.agent import SolveResult
from flux_agent.api.chat import chat_chunks
from flux_agent.api.jobs import SolveJob
from flux_agent.api.protocol import (
    CHAT_MODEL,
    RUN_ID_PATTERN,
    ChatCompletionRequest,
    ErrorBody,
    Health,
    ModelCard,
    ModelList,
    ResumeRequest,
    RunList,
    SolveRequest,
    TemplateCreated,
    TemplateSearch,
    chat_completion,
)
from flux_agent.api.service import FluxService
from flux_agent.api.sse import event_stream, openai_stream
from flux_agent.templates import ThoughtTemplate

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "Missing or wrong API key.",
        404: "No such run, template or model.",
        409: "The id is taken, or the template repeats an existing technique.",
        413: "The request body is too large.",
        422: "Invalid input; `error.fields` names each field at fault.",
        429: "The server is running its maximum number of solves.",
        503: "A backend or the template store is unavailable.",
        504: "The solve ran past its deadline; `error.run_id` can be resumed.",
    }.items()
}
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The SolveResult, or with `stream: true` a `text/event-stream` of the "
        "graph's events (`run`, `plan`, `template`, `step_started`, `step_text`, "
        "`step_result`, `check`, `revision`, `answer`, `result` or `error`).",
    }
}
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN)]


def get_service(request: Request) -> FluxService:
    service: FluxService = request.app.state.service
    return service


Service = Annotated[FluxService, Depends(get_service)]


def _events_response(stream: AsyncIterator[bytes], job: SolveJob) -> StreamingResponse:
    # Under uvicorn (ASGI 2.3) Starlette watches for the client leaving and cancels the
    # stream at once, which cancels the solve; the job's slot is then given back.
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(job.release),
    )


async def _reply(job: SolveJob, stream: bool) -> Any:
    """The job's events as SSE, or its `SolveResult` once it is done."""
    if stream:
        return _events_response(event_stream(job.events()), job)
    return await job.result()


@router.get("/healthz", tags=["health"])
async def healthz() -> Health:
    """The process is up (no backend or store is touched)."""
    return Health(status="ok")


@router.get("/readyz", tags=["health"], responses={503: {"model": Health}})
async def readyz(service: Service) -> JSONResponse:
    """The template store answers and every configured backend is reachable."""
    health = await service.readiness()
    status = 200 if health.status == "ready" else 503
    return JSONResponse(health.model_dump(), status_code=status)


@router.post(
    "/v1/solve",
    tags=["solve"],
    response_model=SolveResult,
    responses={**_ERRORS, **_STREAM_DOC},
)
async def solve(request: SolveRequest, service: Service) -> Any:
    """Solve a problem; with `stream: true`, watch it as server-sent events."""
    return await _reply(await service.start_solve(request), request.stream)


@router.get("/v1/runs", tags=["runs"], responses=_ERRORS)
async def runs(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunList:
    """Stored runs, most recent first."""
    return await service.runs(limit, offset)


@router.get("/v1/runs/{run_id}", tags=["runs"], responses=_ERRORS)
async def run(run_id: RunId, service: Service) -> SolveResult:
    """A stored run (status `interrupted` if it did not finish)."""
    return await service.run(run_id)


@router.post(
    "/v1/runs/{run_id}/resume",
    tags=["runs"],
    response_model=SolveResult,
    responses={**_ERRORS, **_STREAM_DOC},
)
async def resume(
    run_id: RunId, service: Service, request: Annotated[ResumeRequest | None, Body()] = None
) -> Any:
    """Continue an interrupted run from its last checkpoint."""
    request = request or ResumeRequest()
    return await _reply(await service.start_resume(run_id, request), request.stream)


@router.get("/v1/templates/search", tags=["templates"], responses=_ERRORS)
async def search_templates(
    service: Service,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="Text to match.")],
    k: Annotated[int, Query(ge=1, le=50)] = 8,
    domain: Annotated[str | None, Query(description="Only this domain.")] = None,
) -> TemplateSearch:
    """Templates closest to the query (cosine similarity of embeddings)."""
    return await service.search_templates(q, k, domain)


@router.get("/v1/templates/{template_id}", tags=["templates"], responses=_ERRORS)
async def template(
    template_id: Annotated[str, Path(max_length=200)], service: Service
) -> ThoughtTemplate:
    return await service.template(template_id)


@router.post("/v1/templates", tags=["templates"], status_code=201, responses=_ERRORS)
async def add_template(
    service: Service,
    payload: Annotated[
        dict[str, Any],
        Body(
            description="A ThoughtTemplate (see `GET /v1/templates/{id}`); `provenance` "
            "may be left out. It must pass the library's rules: schema, tag vocabulary, "
            "a `check` equal to the example's answer, a new id, no near-duplicate."
        ),
    ],
) -> TemplateCreated:
    """Add a template to the library and the index."""
    return await service.add_template(payload)


@router.get("/v1/models", tags=["openai"])
async def models(service: Service) -> ModelList:
    """The one model this server answers to: `flux`."""
    return ModelList(data=[ModelCard(id=CHAT_MODEL, created=service.started)])


@router.post("/v1/chat/completions", tags=["openai"], responses=_ERRORS)
async def chat_completions(request: ChatCompletionRequest, service: Service) -> Any:
    """OpenAI-compatible: the last user message is the problem, the answer is the content.

    The whole run (plan, steps, checks) is in the response's `flux` field. Streamed,
    the step text arrives as `delta.reasoning_content`, every chunk carries its graph
    event in `flux_event`, and the last chunk carries `flux`.
    """
    job = service.start_chat(request)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return _events_response(openai_stream(chat_chunks(job, include_usage)), job)
    return chat_completion(await job.result(), int(time.time()))
