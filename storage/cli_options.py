"""Click options shared by every command that takes settings (the producer's and the worker's)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from storage.settings import Settings


def with_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --data-dir/--database-url/--redis-url/--model and pass ``settings``."""

    @click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory [SHITI_DATA_DIR].")
    @click.option("--database-url", help="SQLAlchemy URL [SHITI_DATABASE_URL]; default SQLite in the data dir.")
    @click.option("--redis-url", help="Broker URL [SHITI_REDIS_URL]; default the embedded redis-server.")
    @click.option("--model", "model_path", help="Model directory [SHITI_MODEL].")
    @functools.wraps(fn)
    def wrapper(*args: Any, data_dir: Path | None, database_url: str | None, redis_url: str | None,
                model_path: str | None, **kwargs: Any) -> Any:
        try:
            settings = Settings.from_env(data_dir=data_dir, database_url=database_url, redis_url=redis_url,
                                         model=model_path)
        except (ValueError, TypeError) as exc:
            raise click.ClickException(f"bad settings: {exc}") from exc
        return fn(*args, settings=settings, **kwargs)

    return wrapper
