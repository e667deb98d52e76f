"""``shiti worker``: run one worker (declared beside the worker; ``producer/cli/main.py`` loads it lazily)."""

from __future__ import annotations

import os

import click

from storage.core.cli_options import with_settings
from storage.processes.launch import worker_command
from storage.broker.redis_server import broker_url
from storage.core.settings import Settings


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--hostname", "-n", help="Celery node name.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option("--threads", type=int, help="torch threads for the model [SHITI_THREADS].")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_settings
def worker(hostname: str | None, loglevel: str, threads: int | None, celery_args: tuple[str, ...],
           settings: Settings) -> None:
    """Run one worker (prefork, one child holding the model); extra args go to celery."""
    settings = settings.replace(redis_url=broker_url(settings))
    if threads:
        settings = settings.replace(threads=threads)
    argv, env = worker_command(settings, hostname=hostname, loglevel=loglevel, extra=celery_args)
    os.execve(argv[0], argv, env)
