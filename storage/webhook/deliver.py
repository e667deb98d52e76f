"""Completion webhooks, the delivery loop: at least once, with backoff, never inside a transaction.

When a job with a ``notify_url`` becomes terminal, the transaction that finishes it inserts one
``notification`` row (``storage.sql.repo._queue_notification``) holding the exact JSON body. The
workers' notifier thread (``worker/notifier.py``) calls :func:`deliver_due` every
``notify_interval`` seconds; it POSTs each due row (:mod:`storage.webhook.http`) until the
receiver answers 2xx, reading and recording through the outbox (:mod:`storage.sql.outbox`).

Any 2xx is delivered. Anything else (another status, a redirect, which is never followed, a
connection error, a timeout of ``webhook_timeout`` seconds for the whole attempt) is a failure,
tried again after :func:`retry_after`: about 5 s, 10 s, 20 s, ... doubling up to
``webhook_max_delay`` (600 s), each ±20 %. Attempts stop ``webhook_give_up_seconds`` (6 h)
after the event: the row becomes ``given_up``. The job's own state never depends on delivery.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from storage.core.backoff import backoff
from storage.core.settings import Settings
from storage.sql import outbox
from storage.sql.db import Database
from storage.webhook.http import MAX_ERROR, WebhookRefused, WebhookUnresolvable, headers_for, post, reason

__all__ = ["deliver_due", "retry_after"]

log = logging.getLogger("shiti.webhooks")

_FIRST_DELAY = 5.0  # seconds before the 2nd attempt; doubles per failed attempt
_JITTER = (0.8, 1.2)  # ±20 %: receivers coming back after an outage are not hit by every event at once
_CLAIM_SLACK = 30.0  # a claim outlives one attempt by this much (DNS lookup, slow database write)


def retry_after(attempts: int, *, cap: float) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 5 s × 2^(attempts-1), ±20 % jitter,
    never more than ``cap``."""
    return backoff(max(attempts, 1) - 1, first=_FIRST_DELAY, cap=cap, jitter=_JITTER)


def _clock(now: float | None) -> float:
    # With no fixed clock, read it at each step: one call may spend minutes on slow receivers,
    # and a claim stamped with the call's start would already be expired.
    return time.time() if now is None else now


def deliver_due(settings: Settings, db: Database, *, now: float | None = None, limit: int = 20) -> dict[str, int]:
    """Make one attempt for each pending notification that is due (most overdue first).

    Each row is first claimed (:func:`storage.sql.outbox.claim`), so two notifiers never send the
    same attempt; a row claimed by another is skipped. Past ``webhook_give_up_seconds`` after
    the event a row is ``given_up`` without sending; so is one whose URL is now refused (SSRF
    re-check). No HTTP happens inside a database transaction.

    Args:
        now: the scheduling clock (tests); the signature's timestamp is always the real time,
            since receivers compare it with theirs.
        limit: rows looked at per call.

    Returns:
        ``{"delivered": n, "failed": n, "given_up": n}`` for this call. A receiver's failure is
        counted, never raised; a database error is raised (the caller tries again later).
    """
    counts = {"delivered": 0, "failed": 0, "given_up": 0}
    rows = outbox.due(db, _clock(now), limit=limit)
    if not rows:
        return counts
    if not settings.webhook_secret:
        # Unsigned events would be unverifiable: keep them until a secret is configured.
        log.warning("%d completion webhook(s) due but SHITI_WEBHOOK_SECRET is not set: not sending; they "
                    "stay pending until it is set (then those older than %g h are given up unsent)",
                    len(rows), settings.webhook_give_up_seconds / 3600)
        return counts
    for row in rows:
        t = _clock(now)
        if t - row.created_at > settings.webhook_give_up_seconds:
            hours = settings.webhook_give_up_seconds / 3600
            why = (f"gave up: no 2xx within {hours:g} h of the event after {row.attempts} attempt(s)"
                   + (f"; last error: {row.last_error}" if row.last_error else ""))
            counts["given_up"] += int(outbox.give_up(db, row, why[:MAX_ERROR]))
            continue
        if not outbox.claim(db, row, until=t + settings.webhook_timeout + _CLAIM_SLACK):
            continue  # another notifier took this attempt
        counts[_attempt(settings, db, row, now)] += 1
    return counts


def _attempt(settings: Settings, db: Database, row: Any, now: float | None) -> str:
    """Send one claimed row and record the outcome; returns the count it adds to."""
    attempt = int(row.attempts) + 1
    body = row.body.encode("utf-8")  # the stored text, byte for byte what was signed
    headers = headers_for(settings.webhook_secret, event_id=row.event_id, attempt=attempt, body=body)
    error: str | None = None
    refused = False
    try:
        status = post(row.url, body, headers, timeout=settings.webhook_timeout,
                      allow_private=settings.webhook_allow_private)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except WebhookUnresolvable as exc:  # DNS may come back: retry like a connection error
        error = reason(exc)
    except WebhookRefused as exc:  # the URL itself is refused now: no attempt can succeed
        error, refused = reason(exc), True
    except Exception as exc:  # noqa: BLE001 - the receiver's failure, whatever it is, is recorded
        error = reason(exc)
    t = _clock(now)
    if error is None:
        outbox.record(db, row.id, at=t, error=None, state="delivered")
        outcome = "delivered"
    elif refused:
        outbox.record(db, row.id, at=t, error=error, state="given_up")
        outcome = "given_up"
    else:
        outbox.record(db, row.id, at=t, error=error,
                      next_attempt_at=t + retry_after(attempt, cap=settings.webhook_max_delay))
        outcome = "failed"
    if error is not None:
        log.info("webhook %s for event %s attempt %d: %s", row.url, row.event_id, attempt, error)
    return outcome
