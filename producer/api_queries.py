"""Read-only queries the web page needs that ``producer.service`` does not offer.

Kept here (not in ``storage.queries``) because only the dashboard uses them.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import Integer, cast, func, select

from storage import queries
from storage.db import get_database
from storage.domain import DocumentStatus as D
from storage.schema import document
from storage.settings import Settings


def throughput(settings: Settings, job_id: str, *, buckets: int = 40,
               now: float | None = None) -> dict[str, Any]:
    """Documents and characters completed per second, in equal time buckets over the job's run.

    A document's completion time is its last status change (``updated_at``) into ``done`` or
    ``failed``; the aggregation happens in SQL, so the cost does not grow with the answer.

    Returns:
        ``{"bucket_seconds": w, "points": [{"t": epoch_mid, "seconds": span, "docs": per_s,
        "chars": per_s}]}`` (every span is ``w`` but the last, which ends now or at the finish),
        with empty buckets as zeros; no points before the job started.

    Raises:
        NotFound: unknown ``job_id``.
    """
    db = get_database(settings)
    row = queries.get_job(db, job_id)
    start = row["started_at"] or row["submitted_at"]
    end = row["finished_at"] or (now if now is not None else time.time())
    if not start or end <= start:
        return {"bucket_seconds": 0, "points": []}
    # Whole seconds for long runs, half seconds for short ones: a worker commits a whole batch
    # at one instant, so much narrower buckets would only draw batch boundaries as spikes.
    raw = (end - start) / buckets
    width = math.ceil(raw) if raw >= 1 else 0.5
    n = max(1, math.ceil((end - start) / width - 1e-9))
    # CAST truncates on SQLite and rounds on PostgreSQL; either way each row lands in a
    # neighbouring bucket, and the index is clamped below.
    index = cast((document.c.updated_at - start) / width, Integer).label("i")
    stmt = (select(index, func.count(), func.coalesce(func.sum(document.c.n_chars), 0))
            .where(document.c.job_id == job_id, document.c.status.in_([D.DONE, D.FAILED]),
                   document.c.updated_at >= start)
            .group_by(index))
    docs = [0] * n
    chars = [0] * n
    with db.read() as conn:
        for i, count, n_chars in conn.execute(stmt):
            k = min(max(int(i), 0), n - 1)
            docs[k] += int(count)
            chars[k] += int(n_chars)
    # The last bucket may be partial (a running job): divide by the time it really covers.
    spans = [width] * (n - 1) + [max(end - (start + (n - 1) * width), 1e-3)]
    points = [{"t": start + k * width + spans[k] / 2, "seconds": spans[k], "docs": docs[k] / spans[k],
               "chars": chars[k] / spans[k]} for k in range(n)]
    return {"bucket_seconds": width, "points": points}
