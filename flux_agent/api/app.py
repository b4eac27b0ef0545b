"""Building the FastAPI app: routes, guards, error bodies, and the web page at `/`.

    service = open_service(Settings(), ServiceLimits(api_key="..."))
    app = create_app(service)          # uvicorn.run(app) or `flux serve`

Every error leaves as `{"error": {"type", "message", ...}}` with a fitting status;
an unexpected exception is logged with its traceback and answered with a plain
500 message, never the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from flux_agent import __version__
from flux_agent.api.errors import ServiceError, field_errors
from flux_agent.api.middleware import APIKeyGuard, BodyLimit
from flux_agent.api.routes import router
from flux_agent.api.service import FluxService, ServiceLimits
from flux_agent.config import BackendSettings, Settings

logger = logging.getLogger(__name__)

STATUS = {
    "invalid_request_error": 422,
    "not_found": 404,
    "conflict": 409,
    "rate_limit": 429,
    "timeout": 504,
    "unavailable": 503,
    "server_error": 500,
}
_HTTP_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found",
    405: "invalid_request_error",
    413: "request_too_large",
}


def default_app_path() -> Path:
    """The web page's folder: `app/` next to the package (a source checkout or editable install)."""
    return Path(__file__).resolve().parents[2] / "app"


def create_app(service: FluxService, *, app_dir: Path | None = None) -> FastAPI:
    """The API around `service`, with the web page from `app_dir` (default: `app/`) at `/`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await service.aclose()

    app = FastAPI(
        title="flux-agent",
        version=__version__,
        summary="Template-guided math reasoning as a service.",
        description="Solve problems (streamed as server-sent events), read and resume "
        "runs, search and add thought templates, or use the agent as an OpenAI-compatible "
        "model named `flux`. When the server has an API key, every `/v1` route needs "
        "`Authorization: Bearer <key>`.",
        lifespan=lifespan,
        docs_url=None,
    )
    app.state.service = service
    app.include_router(router)
    _add_error_handlers(app)
    folder = app_dir or default_app_path()
    _add_docs(app, folder / "vendor" / "swagger-ui")
    if (folder / "index.html").is_file():
        app.mount("/", StaticFiles(directory=folder, html=True), name="web")
    else:
        logger.warning("no web page in %s; serving the API only", folder)
    # Added last, so they run first: a wrong key or a huge body never reaches a route.
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)
    app.add_middleware(APIKeyGuard, api_key=service.limits.api_key)
    return app


def _add_docs(app: FastAPI, swagger: Path) -> None:
    """Swagger UI at /docs, from the copy `app/build.sh` vendors (FastAPI's default is a CDN)."""
    local = (swagger / "swagger-ui-bundle.js").is_file()
    if local:
        app.mount("/docs-assets", StaticFiles(directory=swagger), name="docs-assets")
    else:
        logger.warning("Swagger UI is not vendored (run app/build.sh); /docs loads it from a CDN")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not local:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="flux-agent API")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="flux-agent API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def error_response(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    detail = {"type": kind, "message": message, **{k: v for k, v in extra.items() if v}}
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        fields = [f.model_dump() for f in exc.fields] if exc.fields else None
        headers = {"Retry-After": "5"} if exc.kind == "rate_limit" else None
        status = STATUS.get(exc.kind, 500)
        return error_response(
            status, exc.kind, exc.message, headers, fields=fields, run_id=exc.run_id
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response(400, "invalid_request_error", "the body is not valid JSON")
        fields = [f.model_dump() for f in field_errors(exc)]
        first = fields[0] if fields else {"field": "<body>", "message": "invalid"}
        message = f"invalid request: {first['field']}: {first['message']}"
        return error_response(422, "invalid_request_error", message, fields=fields)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        kind = _HTTP_KINDS.get(exc.status_code, "invalid_request_error")
        message = exc.detail if isinstance(exc.detail, str) else "the request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route"
        return error_response(exc.status_code, kind, message, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        message = "internal error (details are in the server log)"
        return error_response(500, "server_error", message)


def open_service(
    settings: Settings,
    limits: ServiceLimits | None = None,
    extra_backends: Mapping[str, BackendSettings] | None = None,
) -> FluxService:
    """The service for a real server: the store (caught up with the library) and named backends.

    The backends named `navigator` and `solver` are the settings' two roles;
    `extra_backends` adds names a request can pick. Models load on first use.
    """
    from flux_agent.factory import catch_up_index
    from flux_agent.templates.chroma_store import open_store
    from flux_agent.templates.embeddings import load_embedder
    from flux_agent.verify import default_sandbox

    embedder = load_embedder(settings.store.embedding_model)
    store = open_store(settings, embedder)
    catch_up_index(settings, store)
    backends = {"navigator": settings.navigator, "solver": settings.solver}
    for name, backend in (extra_backends or {}).items():
        if name in backends:
            raise ValueError(f"backend name {name!r} is taken by the default {name}")
        backends[name] = backend
    return FluxService(
        settings,
        store=store,
        sandbox=default_sandbox(),
        backends=backends,
        embedder=embedder,
        limits=limits,
    )
