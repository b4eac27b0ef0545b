"""The service's failures: each a `ServiceError` with a `kind` the routes map to a status.

The service raises them; inside an event stream they travel as `error` events
(`error_event`) and `raise_error_event` turns one back into the exception.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

from flux_agent.agent.runner import Event
from flux_agent.api.protocol import FieldError


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


def error_event(error: ServiceError) -> Event:
    detail: dict[str, Any] = {"type": error.kind, "message": error.message}
    if error.run_id:
        detail["run_id"] = error.run_id
    return {"type": "error", "error": detail}


def raise_error_event(event: Event) -> None:
    """Raise the `ServiceError` an `error` event describes."""
    detail = event["error"]
    raise _ERRORS[detail["type"]](detail["message"], run_id=detail.get("run_id"))


def field_errors(exc: Any, prefix: str = "") -> list[FieldError]:
    """Pydantic's (or FastAPI's) errors as `field: message` pairs (`steps.2`, `example.answer`)."""
    fields = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"] if part not in _PLACES)
        name = ".".join(part for part in (prefix, location) if part) or "<body>"
        fields.append(FieldError(field=name, message=error["msg"]))
    return fields


_PLACES = ("body", "query", "path", "header")


def first_message(exc: ValidationError) -> str:
    first = field_errors(exc)[0]
    return f"{first.field}: {first.message}"
