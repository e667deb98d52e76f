"""The Celery app of the worker: ``celery -A worker.app worker -P prefork -c 1``.

The model is loaded in each pool child at ``worker_process_init`` (threads set first), never
in the parent, never per task. The parent only runs the startup reconcile.
"""

from __future__ import annotations

import logging

from celery.signals import worker_process_init, worker_ready

from storage.errors import TransientError
from storage.queue import make_celery
from storage.redis_server import broker_url
from storage.settings import Settings

log = logging.getLogger("shiti.worker")

SETTINGS = Settings.from_env()


def _broker() -> str:
    try:
        return broker_url(SETTINGS)
    except TransientError:
        # Importable without a broker (task bodies are called directly in tests); a real
        # worker started this way fails to connect and says so. `shiti worker` always sets it.
        log.warning("no SHITI_REDIS_URL and no embedded redis running; using redis://127.0.0.1:6379/0")
        return "redis://127.0.0.1:6379/0"


app = make_celery(SETTINGS, _broker())
app.conf.include = ["worker.tasks"]


@worker_process_init.connect
def _init_child(**_: object) -> None:
    from worker import tasks

    tasks.init_child(SETTINGS)


@worker_ready.connect
def _reconcile_on_start(**_: object) -> None:
    # Documents left pending by a submit that could not reach Redis, or stuck by a crash,
    # are sent again when any worker comes up (duplicates are fenced in SQL).
    from producer.dispatch import reconcile

    try:
        log.info("startup reconcile: %s", reconcile(SETTINGS))
    except Exception:
        log.exception("startup reconcile failed; documents will be retried by the next one")
