"""Broker names, the message shape, and the Celery app factory (docs/reliability.md settings)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery

from storage.core.settings import Settings

log = logging.getLogger(__name__)

TASK_ANNOTATE = "shiti.annotate_batch"

# Two priority lanes of one queue (kombu's Redis priorities: 0 is served first). Batches go to the
# normal lane; a batch whose pool child died, or that waits out a database outage, is sent again
# in the recovery lane, so it runs next instead of behind every batch queued meanwhile (a
# requeued message goes to the back of the list).
PRIORITY_RECOVERY = 0
PRIORITY_NORMAL = 6
_PRIORITY_SEP = ":"


def queue_for(settings: Settings, model: str) -> str:
    """The Celery queue of a model's batches: workers serving ``model`` consume only this one."""
    return f"{settings.queue}.{_QUEUE_UNSAFE.sub('-', model)}"


_QUEUE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def queue_keys(queue: str) -> list[str]:
    """The Redis lists holding ``queue``'s waiting messages, recovery lane first."""
    return [queue, f"{queue}{_PRIORITY_SEP}{PRIORITY_NORMAL}"]


def waiting_by_queue(client: Any, settings: Settings) -> dict[str, int]:
    """Messages waiting in every model's queue (both lanes), by queue name, from the broker's keys."""
    prefix = f"{settings.queue}."
    queues = {key.decode().split(_PRIORITY_SEP, 1)[0] for key in client.scan_iter(match=prefix + "*", count=500)}
    return {q: sum(int(client.llen(k)) for k in queue_keys(q)) for q in sorted(queues)}


@dataclass(frozen=True, slots=True)
class BatchMessage:
    """The only payload on the broker: ids, never text (docs/architecture.md: messages carry ids, SQL carries data)."""

    job_id: str
    doc_ids: tuple[int, ...]

    def as_kwargs(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "doc_ids": list(self.doc_ids)}


def celery_config(settings: Settings, broker_url: str, *, queue: str | None = None) -> dict[str, Any]:
    """The docs/reliability.md "recommended settings", parametrised by ``settings``; ``queue`` is the
    default queue (a worker's: its model's queue, so its re-sends stay there)."""
    vt = settings.visibility_timeout
    queue = queue or settings.queue
    return {
        "broker_url": broker_url,
        # The visibility timeout in all three places (shortest wins when apps share a broker).
        "broker_transport_options": {
            "visibility_timeout": vt,
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": settings.unacked_restore_throttle,
            # kombu guards each restore sweep with a Redis mutex (300 s by default); a worker
            # SIGKILLed while holding it blocks every sweep that long (the reconciler still recovers).
            "unacked_mutex_expire": settings.unacked_mutex_expire,
            "priority_steps": [PRIORITY_RECOVERY, PRIORITY_NORMAL],
            "sep": _PRIORITY_SEP,
        },
        "result_backend_transport_options": {"visibility_timeout": vt},
        "visibility_timeout": vt,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,  # safe only with the SQL attempt counter
        # A dead child's batch is sent again at once in the recovery lane (worker/tasks.py); the
        # requeue above remains the fallback when that publish fails.
        "task_retry_on_worker_lost": True,
        "task_default_priority": PRIORITY_NORMAL,
        "task_acks_on_failure": True,  # False would DROP failed messages on Redis
        "task_acks_on_timeout": False,  # requeue after a hard limit; attempts stop loops
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,
        "worker_pool_start_method": "fork",
        "worker_proc_alive_timeout": settings.proc_alive_timeout,
        "task_soft_time_limit": settings.soft_time_limit,
        "task_time_limit": settings.time_limit,
        "worker_max_memory_per_child": settings.max_memory_per_child,
        "worker_max_tasks_per_child": settings.max_tasks_per_child,
        "worker_soft_shutdown_timeout": 60,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_publish_retry": True,
        "broker_connection_retry_on_startup": True,
        "worker_send_task_events": False,
        "task_default_queue": queue,
        "worker_hijack_root_logger": False,
    }


def make_celery(settings: Settings, broker_url: str | None = None, *, queue: str | None = None) -> Celery:
    """A Celery app configured for shiti. ``broker_url`` defaults to ``settings.redis_url``;
    ``queue``: see :func:`celery_config`."""
    url = broker_url or settings.redis_url
    if not url:
        raise ValueError("no broker URL: start the embedded redis (storage.broker.redis_server) first")
    app = Celery("shiti", set_as_current=False)
    app.conf.update(celery_config(settings, url, queue=queue))
    return app


def publish(app: Celery, message: BatchMessage, *, queue: str) -> None:
    """Send one batch by task name (the producer never imports the worker)."""
    app.send_task(TASK_ANNOTATE, kwargs=message.as_kwargs(), queue=queue, priority=PRIORITY_NORMAL)


def startup_problems(settings: Settings, conf: Mapping[str, Any], client: Any) -> list[str]:
    """Reasons a worker must refuse to start (empty when all is well; docs/reliability.md §1, §7).

    Args:
        settings: shiti settings (lease, time limits).
        conf: the Celery configuration the worker will run with.
        client: a ``redis.Redis`` on the broker (``CONFIG GET`` is used when allowed).
    """
    problems = []
    vts = {
        "broker_transport_options": (conf.get("broker_transport_options") or {}).get("visibility_timeout"),
        "result_backend_transport_options":
            (conf.get("result_backend_transport_options") or {}).get("visibility_timeout"),
        "visibility_timeout": conf.get("visibility_timeout"),
    }
    missing = [k for k, v in vts.items() if v is None]
    if missing:
        problems.append(f"visibility timeout not set in {', '.join(missing)} (set it in all three places)")
    set_vts = [float(v) for v in vts.values() if v is not None]
    vt = min(set_vts) if set_vts else 3600.0
    if vt <= settings.lease_seconds:
        problems.append(f"visibility timeout {vt:g} s <= lease {settings.lease_seconds} s: a message of a "
                        "crashed worker would come back while its documents are still leased")
    if vt <= settings.time_limit:
        problems.append(f"visibility timeout {vt:g} s <= task_time_limit {settings.time_limit} s: a batch "
                        "still running would be delivered a second time")
    if not conf.get("task_acks_late") or not conf.get("task_reject_on_worker_lost"):
        problems.append("task_acks_late and task_reject_on_worker_lost must be on (else a crash loses the batch)")
    try:
        policy = str((client.config_get("maxmemory-policy") or {}).get("maxmemory-policy", ""))
    except Exception as exc:  # CONFIG disabled (managed Redis) or unreachable: cannot tell
        policy = ""
        log.warning("could not read the broker's maxmemory-policy (%s); make sure it is noeviction", exc)
    if policy and policy != "noeviction":
        problems.append(f"broker maxmemory-policy is {policy!r}: Redis may evict queued or unacked "
                        "messages; set maxmemory-policy noeviction on a dedicated instance")
    return problems
