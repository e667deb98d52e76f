"""Downloading a RaNER checkpoint from the ModelScope hub.

The hub client retries for minutes when there is no route out; a short TCP probe
first (one HTTP request) turns "no network" into an immediate, readable error.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from worker.model.checkpoint import REQUIRED
from worker.tagger.errors import FetchError

DEFAULT_MODEL_ID = "damo/nlp_raner_named-entity-recognition_chinese-base-news"
DEFAULT_ENDPOINT = "https://www.modelscope.cn"


def _probe(endpoint: str, timeout: float) -> None:
    """One HTTP(S) request to the hub, or raise ``OSError``.

    A bare TCP connect is not enough: sandboxes with a transparent proxy accept any
    connection and only fail at the TLS/HTTP layer. Any HTTP status means reachable.
    """
    try:
        urllib.request.urlopen(endpoint, timeout=timeout).close()
    except urllib.error.HTTPError:
        return


def _download(model_id: str, out: Path, endpoint: str) -> str:
    from modelscope.hub.snapshot_download import snapshot_download

    return snapshot_download(model_id, local_dir=str(out), endpoint=endpoint)


def fetch(
    model_id: str = DEFAULT_MODEL_ID,
    out: str | Path = "models/raner",
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    timeout: float = 5.0,
) -> Path:
    """Download ``model_id`` into ``out`` and check it has the RaNER files.

    Raises:
        FetchError: the hub is unreachable within ``timeout`` seconds, the download
            failed, or the result lacks a required file.
    """
    out = Path(out)
    try:
        _probe(endpoint, timeout)
    except OSError as exc:
        raise FetchError(
            f"cannot reach the ModelScope hub at {endpoint} within {timeout:g}s ({exc}); "
            f"no network? Copy a checkpoint directory for {model_id} here by hand instead."
        ) from exc
    out.mkdir(parents=True, exist_ok=True)
    try:
        got = Path(_download(model_id, out, endpoint))
    except Exception as exc:  # the hub client raises many unrelated types
        raise FetchError(f"downloading {model_id} from {endpoint} failed: {exc}") from exc
    missing = [name for name in REQUIRED if not (got / name).exists()]
    if missing:
        raise FetchError(f"{model_id} downloaded to {got} but lacks {', '.join(missing)}")
    return got
