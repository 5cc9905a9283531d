"""API errors by class, so callers act on the class and never parse HTTP codes or messages.

``egw.k8s.client`` raises only these (the Kubernetes library's exceptions never escape it). Each error
says whether retrying later can help (``temporary``) and, when the server said so, after how long
(``retry_after``). Messages carry the server's text; request bodies (which may hold secrets) are never
included.
"""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """An API call failed. ``status`` is the HTTP code (0 when no response arrived)."""

    temporary = False

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")


class NotFound(ApiError):
    """404: the object (or its namespace, or the resource type) does not exist."""


class Conflict(ApiError):
    """409 Conflict: a write carried a stale resourceVersion; re-read, recompute, retry."""

    temporary = True


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create hit an existing object."""


class Gone(ApiError):
    """410: the resourceVersion of a watch or continue token is too old; re-list."""

    temporary = True


class Invalid(ApiError):
    """422 (or 400): the server rejected the object; retrying the same request cannot help."""


class Forbidden(ApiError):
    """401/403: missing credentials or RBAC."""


class TooManyRequests(ApiError):
    """429: throttled (priority and fairness); honour ``retry_after``."""

    temporary = True


class ServerError(ApiError):
    """5xx: the server failed; retry with backoff."""

    temporary = True


class Unavailable(ApiError):
    """No usable response: connection refused, reset, TLS failure or timeout. Retry with backoff."""

    temporary = True


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def from_response(status: int, body: bytes | str | None, headers: Any = None) -> ApiError:
    """Build the error for an HTTP answer; the body is the API's Status object when it is JSON."""
    reason = ""
    message = ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            doc = json.loads(body)
        except ValueError:
            message = body[:500]
        else:
            if isinstance(doc, dict):
                reason = str(doc.get("reason") or "")
                message = str(doc.get("message") or "")
    retry_after: float | None = None
    if headers is not None:
        raw = headers.get("Retry-After") if hasattr(headers, "get") else None
        if raw:
            try:
                retry_after = float(raw)
            except ValueError:
                retry_after = None
    return status_error(status, reason, message, retry_after)


def status_error(status: int, reason: str, message: str, retry_after: float | None = None) -> ApiError:
    """The error class for an HTTP status (as in a watch ERROR event's Status object)."""
    if status == 409:
        cls: type[ApiError] = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(status, reason or cls.__name__, message, retry_after)
