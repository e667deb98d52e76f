"""Click options shared by every command that takes settings (the producer's and the worker's)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from storage.core.settings import Settings


def with_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --data-dir/--database-url/--redis-url/--model/--models-dir and pass ``settings``."""

    @click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory [SHITI_DATA_DIR].")
    @click.option("--database-url", help="SQLAlchemy URL [SHITI_DATABASE_URL]; default SQLite in the data dir.")
    @click.option("--redis-url", help="Broker URL [SHITI_REDIS_URL]; default the embedded redis-server.")
    @click.option("--model", "model_path", metavar="NAME",
                  help="Model: a name in the models directory (`shiti model list`) or a model directory's "
                       "path [SHITI_MODEL, default shiti-zh-small]. A job is tagged by it; a worker serves it.")
    @click.option("--models-dir", type=click.Path(path_type=Path),
                  help="Directory of models by name [SHITI_MODELS_DIR, default the repo's models/].")
    @functools.wraps(fn)
    def wrapper(*args: Any, data_dir: Path | None, database_url: str | None, redis_url: str | None,
                model_path: str | None, models_dir: Path | None, **kwargs: Any) -> Any:
        try:
            settings = Settings.from_env(data_dir=data_dir, database_url=database_url, redis_url=redis_url,
                                         model=model_path, models_dir=models_dir)
        except (ValueError, TypeError) as exc:
            raise click.ClickException(f"bad settings: {exc}") from exc
        return fn(*args, settings=settings, **kwargs)

    return wrapper
