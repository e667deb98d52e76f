"""Broker names, the message shape, and the Celery app factory (reliability.md settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from storage.settings import Settings

TASK_ANNOTATE = "shiti.annotate_batch"


@dataclass(frozen=True, slots=True)
class BatchMessage:
    """The only payload on the broker: ids, never text (DESIGN.md "messages carry ids")."""

    job_id: str
    doc_ids: tuple[int, ...]

    def as_kwargs(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "doc_ids": list(self.doc_ids)}


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    """The reliability.md "recommended settings", parametrised by ``settings``."""
    vt = settings.visibility_timeout
    return {
        "broker_url": broker_url,
        # The visibility timeout in all three places (shortest wins when apps share a broker).
        "broker_transport_options": {
            "visibility_timeout": vt,
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": settings.unacked_restore_throttle,
        },
        "result_backend_transport_options": {"visibility_timeout": vt},
        "visibility_timeout": vt,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,  # safe only with the SQL attempt counter
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
        "task_default_queue": settings.queue,
        "task_routes": {TASK_ANNOTATE: {"queue": settings.queue}},
        "worker_hijack_root_logger": False,
    }


def make_celery(settings: Settings, broker_url: str | None = None) -> Celery:
    """A Celery app configured for shiti. ``broker_url`` defaults to ``settings.redis_url``."""
    url = broker_url or settings.redis_url
    if not url:
        raise ValueError("no broker URL: start the embedded redis (storage.redis_server) first")
    app = Celery("shiti", set_as_current=False)
    app.conf.update(celery_config(settings, url))
    return app


def publish(app: Celery, message: BatchMessage, *, queue: str) -> None:
    """Send one batch by task name (the producer never imports the worker)."""
    app.send_task(TASK_ANNOTATE, kwargs=message.as_kwargs(), queue=queue)
