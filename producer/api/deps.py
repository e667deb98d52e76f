"""What every route module shares: the app's settings and key checks (``app.state``), the caller
dependencies, job ownership, and the query parameters several routes take.

The routers (``jobs``, ``entities``, ``ops``) hold no state of their own: ``create_app`` puts one
:class:`ApiState` on the app and the dependencies here read it from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Query, Request

from producer import fields, service
from producer.api.auth import Auth, Caller
from producer.api.errors import ApiError
from storage.core.errors import NotFound
from storage.core.settings import Settings


@dataclass(frozen=True)
class ApiState:
    """One app's settings and key checks."""

    settings: Settings
    auth: Auth
    extract_timeout: float


def api_state(request: Request) -> ApiState:
    """The :class:`ApiState` of the app serving ``request``."""
    state: ApiState = request.app.state.api
    return state


def _caller(scope: str) -> Any:
    def caller(request: Request) -> Caller:
        return api_state(request).auth.caller(request, scope)

    return Depends(caller)


STATE: Any = Depends(api_state)
READ: Any = _caller("read")
SUBMIT: Any = _caller("submit")


def own(api: ApiState, job_id: str, caller: Caller) -> None:
    """Raise NotFound unless ``job_id`` names a job ``caller`` may see."""
    if not fields.is_job_id(job_id):  # no job has such an id: answered without a query
        raise NotFound(f"no job {job_id[:40]!r}")
    api.auth.visible(caller, job_id)


def filter_query(description: str) -> Any:
    """A free-text filter query parameter (bounded, no NUL)."""
    return Query(None, max_length=fields.MAX_FILTER, pattern=fields.NO_NUL_PATTERN, description=description)


TOKEN: Any = Query(None, max_length=fields.MAX_CLIENT_TOKEN, pattern=fields.SINGLE_LINE_PATTERN,
                   description="idempotency key (also the Idempotency-Key header)")
NAME: Any = Query(None, max_length=fields.MAX_NAME, pattern=fields.NO_NUL_PATTERN, description="job name")
MODEL: Any = Query(None, max_length=fields.MAX_MODEL, pattern=fields.SINGLE_LINE_PATTERN,
                   description="model name (`GET /models`); default the server's SHITI_MODEL")
NOTIFY: Any = Query(None, max_length=fields.MAX_URL, pattern=fields.SINGLE_LINE_PATTERN,
                    description="completion webhook URL (docs/webhooks.md)")
CURSOR: Any = Query(None, pattern=fields.CURSOR_PATTERN, description="`next_cursor` of the previous page")


def cursor_value(value: str | None) -> str | None:
    """A page cursor as the store takes it; 422 for one this API never returned."""
    if value in (None, ""):
        return None
    # ASCII digits only (str.isdigit() accepts "²" and other digits int() refuses), below 2^63
    # (the largest id either database holds).
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 2**63):
        raise ApiError("invalid_input", f"cursor {value[:40]!r} is not one this API returned")
    return value


def filter_value(name: str, value: str | None) -> str | None:
    """A filter's value, checked (PermanentError: 422 like any bad input)."""
    return fields.filter_value(name, value or None)


def job_options(settings: Settings, options: dict[str, Any], caller: Caller) -> service.JobOptions:
    """The per-job options (model, priority, webhook, fold, dictionary) of a request, checked; the
    dictionary must be one ``caller`` may use."""
    priority = options.get("priority")
    try:
        priority = 1 if priority in (None, "") else int(priority)
    except (TypeError, ValueError):
        raise ApiError("invalid_input", f"priority must be an integer from 1 to 100, not {priority!r}") from None
    return service.job_options(settings, model=options.get("model") or None, priority=priority,
                               notify_url=options.get("notify") or None, fold=_flag("fold", options.get("fold")),
                               dictionary=_text_option("dict", options.get("dict")), owner=caller.owner,
                               sees_all=caller.sees_all,
                               incremental=_flag("incremental", options.get("incremental"), default=False))


def _text_option(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError("invalid_input", f"{name} must be a string")
    return value


def _flag(name: str, value: Any, default: bool = True) -> bool:
    """A yes/no option: a JSON boolean, or ``true``/``false`` as a form field says it (a query
    parameter arrives parsed)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ApiError("invalid_input", f"{name} must be true or false, not {str(value)[:40]!r}")
