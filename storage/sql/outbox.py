"""The webhook outbox: the ``notification`` table's reads and writes for delivery.

Rows are inserted by the transaction that finishes a job (``storage.sql.repo``); the delivery
loop (``storage.webhook.deliver``) reads the due ones, claims one before each attempt and
records the outcome here. No HTTP in this module: the SQL layer talks only to the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import desc, select, update

from storage.sql.db import Database
from storage.sql.schema import notification


def due(db: Database, now: float, *, limit: int) -> Sequence[Any]:
    """Pending rows whose next attempt is due at ``now``, most overdue first (at most ``limit``)."""
    n = notification.c
    with db.read() as conn:
        return conn.execute(
            select(n.id, n.event_id, n.url, n.body, n.attempts, n.created_at, n.next_attempt_at, n.last_error)
            .where((n.state == "pending") & (n.next_attempt_at <= now))
            .order_by(n.next_attempt_at, n.id).limit(limit)
        ).all()


def _unchanged(row: Any) -> Any:
    # Still pending and still due at the time we read it: nobody else claimed or finished it since.
    n = notification.c
    return (n.id == row.id) & (n.state == "pending") & (n.next_attempt_at == row.next_attempt_at)


def give_up(db: Database, row: Any, why: str) -> bool:
    """Mark ``row`` (as read by :func:`due`) ``given_up`` with ``why``; False if another notifier
    moved it first."""
    with db.write() as conn:
        return bool(conn.execute(update(notification).where(_unchanged(row)).values(
            state="given_up", last_error=why)).rowcount)


def claim(db: Database, row: Any, *, until: float) -> bool:
    """Claim ``row`` for one attempt by pushing its next attempt to ``until`` (so two notifiers
    never send the same attempt); False if another took it."""
    with db.write() as conn:
        return bool(conn.execute(update(notification).where(_unchanged(row)).values(
            next_attempt_at=until)).rowcount)


def record(db: Database, row_id: int, *, at: float, error: str | None, state: str | None = None,
           next_attempt_at: float | None = None) -> None:
    """Record one attempt of a claimed row: its time and error, and the new ``state``
    (``delivered`` / ``given_up``) or, for a failure to try again, ``next_attempt_at``."""
    values: dict[str, Any] = {"attempts": notification.c.attempts + 1, "last_attempt_at": at, "last_error": error}
    if state is not None:
        values["state"] = state
    if state == "delivered":
        values["delivered_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with db.write() as conn:
        # Fenced on the state only: if a late duplicate of this attempt already delivered it,
        # our failure must not reopen it.
        conn.execute(update(notification).where(
            notification.c.id == row_id, notification.c.state == "pending").values(**values))


def delivery_status(db: Database, job_id: str) -> dict[str, Any] | None:
    """The latest completion event of a job (a retried job may finish, and notify, again) as a
    JSON-able dict: ``url, state, attempts, last_error, last_attempt_at, delivered_at, event_id``
    (times as epoch seconds); None when the job has none (not finished, or no webhook)."""
    with db.read() as conn:
        row = conn.execute(
            select(notification.c.url, notification.c.state, notification.c.attempts,
                   notification.c.last_error, notification.c.last_attempt_at, notification.c.delivered_at,
                   notification.c.event_id)
            .where(notification.c.job_id == job_id).order_by(desc(notification.c.id)).limit(1)
        ).first()
    if row is None:
        return None

    def epoch(value: Any) -> float | None:
        return None if value is None else float(value)

    return {"url": row.url, "state": row.state, "attempts": int(row.attempts or 0), "last_error": row.last_error,
            "last_attempt_at": epoch(row.last_attempt_at), "delivered_at": epoch(row.delivered_at),
            "event_id": row.event_id}


