"""The Celery app of the worker: ``celery -A worker.app worker -P prefork -c 1``.

The model is loaded in each pool child at ``worker_process_init`` (threads set first), never
in the parent, never per task. The parent only runs the startup reconcile.
"""

from __future__ import annotations

import logging
import os
import sys

from celery.signals import (
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from storage.sql.db import schema_problems
from storage.core.errors import EXIT_CONFIG, TransientError
from storage.catalog import resolve
from storage.broker.queue import make_celery, queue_for, startup_problems
from storage.broker.redis_server import broker_url
from storage.core.settings import Settings

log = logging.getLogger("shiti.worker")


def _refuse(problems: list[str]) -> None:
    for problem in problems:
        print(f"shiti worker: refusing to start: {problem}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CONFIG)


try:
    SETTINGS = Settings.from_env()
except ValueError as _exc:  # e.g. lease >= visibility timeout
    _refuse([f"bad settings: {_exc}"])

# The model this worker serves (SHITI_MODEL / `shiti worker --model NAME`) decides its queue.
MODEL_NAME = SETTINGS.model_name
QUEUE = queue_for(SETTINGS, MODEL_NAME)


def _broker() -> str:
    try:
        return broker_url(SETTINGS)
    except TransientError:
        # Importable without a broker (task bodies are called directly in tests); a real
        # worker started this way fails to connect and says so. `shiti worker` always sets it.
        log.warning("no SHITI_REDIS_URL and no embedded redis running; using redis://127.0.0.1:6379/0")
        return "redis://127.0.0.1:6379/0"


app = make_celery(SETTINGS, _broker(), queue=QUEUE)
app.conf.include = ["worker.tasks"]


@worker_process_init.connect
def _init_child(**_: object) -> None:
    from worker import runtime

    runtime.init_child(SETTINGS)


@worker_init.connect
def _startup_checks(sender: object = None, **_: object) -> None:
    # In the parent, before the pool starts: refuse a broker or settings that lose messages.
    import redis

    client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        problems = startup_problems(SETTINGS, app.conf, client)
    finally:
        client.close()
    problems += _model_problems(SETTINGS)
    problems += schema_problems(SETTINGS)
    if problems:
        _refuse(problems)


def _model_problems(settings: Settings) -> list[str]:
    """A model that cannot load must stop the worker before it takes a task (its pool child
    would fail on every start): an unknown name, a broken or unservable entry (not an ONNX
    artifact), an artifact whose files do not match its manifest."""
    from storage.core.errors import PermanentError
    from worker.tagger.errors import ModelLoadError
    from worker.tagger.onnx_model import is_onnx_artifact, verify_files

    try:
        model = resolve(settings).path  # compares every file its manifest lists with its sha256
    except PermanentError as exc:
        return [str(exc)]
    if settings.model.startswith("py:"):
        return []
    if not is_onnx_artifact(model):  # a path given directly (the catalogue checks its entries)
        return [f"model: {model} is not an ONNX artifact, the one format workers serve: quantize it first: "
                f"shiti model quantize {model} --out <dir>"]
    try:
        verify_files(model, hashes_checked=True)
    except ModelLoadError as exc:
        return [f"model: {exc}"]
    return []


_THREADS: list[object] = []


@worker_ready.connect
def _start_threads(sender: object = None, **_: object) -> None:
    # Reconcile now (documents left pending by a submit that could not reach Redis, or stuck
    # by a crash, are sent again when any worker comes up), then every reconcile_interval;
    # announce the model served; send due completion webhooks.
    from worker.notifier import Notifier
    from worker.announcer import Announcer
    from worker.reconciler import Reconciler

    # Node name plus pid: two workers started without -n on one host share Celery's default name.
    node = f"{getattr(sender, 'hostname', '') or 'celery'}/{os.getpid()}"
    for thread in (Reconciler(SETTINGS, app.conf.broker_url),
                   Announcer(SETTINGS, app.conf.broker_url, node=node, model=resolve(SETTINGS)),
                   Notifier(SETTINGS, app.conf.broker_url)):
        thread.start()
        _THREADS.append(thread)


@worker_shutting_down.connect
def _stop_batches(**_: object) -> None:
    # Warm shutdown waits for the running batch however long it is; tell the pool child to save
    # what is done and release the rest (worker/shutdown.py), so the worker leaves within seconds.
    from worker.shutdown import forward_to_children

    pids = forward_to_children()
    if pids:
        log.warning("shutting down: asked pool child(ren) %s to stop after the current document", pids)


@worker_shutdown.connect
def _stop_threads(**_: object) -> None:
    for thread in _THREADS:
        thread.stop()  # type: ignore[attr-defined]
