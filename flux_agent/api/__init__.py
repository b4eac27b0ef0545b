"""The agent over HTTP: protocol models, a service with no HTTP in it, thin routes.

    from flux_agent.api import create_app, open_service
    app = create_app(open_service(settings))

`flux serve` runs it with uvicorn; the web page in `app/` is served at `/`.
"""

from flux_agent.api.app import create_app, default_app_path, open_service
from flux_agent.api.errors import ServiceError
from flux_agent.api.jobs import SolveJob
from flux_agent.api.service import FluxService, ServiceLimits

__all__ = [
    "FluxService",
    "ServiceError",
    "ServiceLimits",
    "SolveJob",
    "create_app",
    "default_app_path",
    "open_service",
]
