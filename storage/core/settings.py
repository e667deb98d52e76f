"""The one settings object. Only this module reads ``os.environ`` (prefix ``SHITI_``)."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "SHITI_"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


def child_pythonpath() -> str:
    """``PYTHONPATH`` for a child interpreter that must import this code (this repository first)."""
    return os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p)
DEFAULT_MODEL_NAME = "shiti-zh-small"  # the shipped default, by name (storage/catalog.py)
DEFAULT_MODEL = str(DEFAULT_MODELS_DIR / DEFAULT_MODEL_NAME)  # its directory
PY_PREFIX = "py:"  # SHITI_MODEL=py:module:factory names a tagger factory (tests, experiments)
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # an entry of the models directory
# INT8 kernel libraries of torch's x86 CPU builds ("" = the default, fbgemm); checked here so a
# typo stops a worker at start-up (exit 78) instead of failing in every pool child.


@dataclass(frozen=True)
class Settings:
    """Every knob of shiti, immutable, passed explicitly.

    Timing knobs are seconds. Invariants checked in ``__post_init__``: lease < visibility
    timeout (a crashed message must come back only after its lease expired) and soft < hard
    time limit.
    """

    data_dir: Path = Path(".shiti")
    database_url: str = ""  # "" -> sqlite file in data_dir
    redis_url: str = ""  # "" -> embedded redis-server (storage.broker.redis_server)
    # Models (storage/catalog.py): a job names one; a worker serves one and consumes its queue.
    models_dir: Path = DEFAULT_MODELS_DIR
    # The default model of jobs and workers: a name in models_dir, a model directory's path (its
    # name is the directory's), or "py:module:factory" (a zero-arg tagger factory; tests).
    model: str = DEFAULT_MODEL_NAME
    presence_seconds: float = 5.0  # a worker announces the model it serves this often (TTL 3x)
    queue: str = "shiti"
    # Batching and backpressure.
    batch_chars: int = 100_000
    batch_docs: int = 1024  # per message: one claim and one write per batch, so fewer round trips per document
    # Batches waiting in a model's queue: one per live worker of the model plus one, at most this
    # (storage/broker/dispatch.py queue_target); a job submitted now waits behind these only.
    high_water: int = 8
    ingest_chunk: int = 1_000  # documents per INSERT transaction at submit
    # Leases, attempts, Celery timing.
    # A claim's lease, renewed every heartbeat_seconds while its batch runs (worker/heartbeat.py):
    # a dead claimant's documents come back within lease + reconcile_interval, however long the batch.
    lease_seconds: int = 20
    heartbeat_seconds: float = 5.0
    max_attempts: int = 3
    visibility_timeout: int = 3600
    unacked_restore_interval: float = 10.0
    unacked_restore_throttle: float = 1.0
    unacked_mutex_expire: int = 300  # kombu's restore-sweep mutex life (its default)
    # A database outage: a batch tries again after a jittered backoff of at most db_retry_max_delay
    # seconds, for up to db_outage_seconds (worker/tasks.py); then the reconciler takes over.
    db_retry_max_delay: float = 5.0
    db_outage_seconds: int = 900
    soft_time_limit: int = 1500
    time_limit: int = 1800
    stale_queued_seconds: int = 0  # 0 -> visibility_timeout + time_limit
    # A queued document older than this while the broker queue is empty has no message that could
    # still reach a worker (lost, or held by a dead one): the reconciler sends it again.
    lost_queued_seconds: int = 30
    reconcile_interval: float = 20.0  # worker parents reconcile this often (one at a time); 0 = off
    # Per-document deadline (layer 1 of the time limits): base + per 10k characters.
    doc_deadline_base: float = 30.0
    doc_deadline_per_10k: float = 1.0
    proc_alive_timeout: float = 120.0
    max_memory_per_child: int = 3_000_000  # KiB (peak RSS)
    max_tasks_per_child: int = 500
    # Inference.
    threads: int = 1
    max_length: int = 0  # 0 -> the model's own maximum
    overlap: int = 64
    # Input rules (docs/reliability.md §5).
    max_chars: int = 5_000_000
    # A worker reads its running batch's job state this often: a cancel abandons the document
    # being tagged at its next window (worker/heartbeat.py).
    cancel_poll_seconds: float = 1.0
    max_upload_bytes: int = 1 << 30  # REST uploads (multipart: streamed to a file, never held in memory)
    # A JSON body (POST /jobs as application/json) is parsed whole in memory, in a worker thread:
    # its own limit, far below the multipart one (send big corpora as a multipart file).
    max_json_bytes: int = 32 << 20
    # An unsealed job whose ingest stored nothing for this long was interrupted (its process died):
    # the reconciler fails it with the count of documents stored (repo.fail_stale_ingests).
    ingest_stale_seconds: int = 300
    busy_timeout_ms: int = 30_000
    # REST API access (producer/api/auth.py).
    admin_key: str = dataclasses.field(default="", repr=False)  # ensured as key "admin" when set
    metrics_public: bool = False  # /metrics without a key (a scraper inside a trusted network)
    max_queued_per_key: int = 0  # documents a key may have unfinished; over it submit -> 429 (0 = no limit)
    max_queued_chars_per_key: int = 0  # characters a key may have unfinished; the same rule (0 = no limit)
    # The longest document an API submit may hold (longer: failed / too_large), so one key's huge
    # document cannot hold a worker, and /extract or other jobs behind it, for minutes; 0 = max_chars.
    max_api_doc_chars: int = 200_000
    # Completion webhooks (storage/webhook/http.py), sent by the workers' notifier thread.
    notify_url: str = ""  # default webhook of jobs submitted without one ("" = none)
    webhook_secret: str = dataclasses.field(default="", repr=False)  # HMAC-SHA256 key; needed to send
    webhook_allow_private: bool = False  # allow loopback, private and link-local addresses
    webhook_timeout: float = 10.0  # seconds per attempt
    webhook_max_delay: float = 600.0  # the backoff between attempts grows to this
    webhook_give_up_seconds: int = 6 * 3600  # attempts stop this long after the event
    notify_interval: float = 2.0  # the notifier looks for due deliveries this often

    def __post_init__(self) -> None:
        if self.lease_seconds >= self.visibility_timeout:
            raise ValueError("lease_seconds must be below visibility_timeout")
        if not 0 < self.heartbeat_seconds * 2 <= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be positive and at most half of lease_seconds "
                             "(one late renewal must not lose the lease)")
        if not 0 < self.db_retry_max_delay < self.visibility_timeout:
            raise ValueError("db_retry_max_delay must be positive and below visibility_timeout "
                             "(a retry due after the visibility timeout is delivered twice)")
        if self.soft_time_limit >= self.time_limit:
            raise ValueError("soft_time_limit must be below time_limit")
        if min(self.presence_seconds, self.notify_interval, self.webhook_timeout, self.webhook_max_delay) <= 0:
            raise ValueError("presence_seconds, notify_interval, webhook_timeout and webhook_max_delay must be positive")
        if self.webhook_give_up_seconds < 3600:
            raise ValueError("webhook_give_up_seconds must be at least 3600 (receivers get an hour to come back)")
        if self.max_attempts < 1 or self.batch_docs < 1 or self.batch_chars < 1:
            raise ValueError("max_attempts, batch_docs and batch_chars must be positive")

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to ``<data_dir>/shiti.sqlite``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(Path(self.data_dir) / 'shiti.sqlite').resolve()}"

    @property
    def model_name(self) -> str:
        """The name ``model`` stands for: itself when it is a name or a ``py:`` spec, else the
        directory's name of the path it holds (jobs record names, never paths)."""
        if self.model.startswith(PY_PREFIX) or MODEL_NAME.match(self.model):
            return self.model
        return Path(self.model).name

    @property
    def stale_queued_after(self) -> int:
        """Seconds after which a ``queued`` document is assumed lost by the broker."""
        return self.stale_queued_seconds or self.visibility_timeout + self.time_limit

    def doc_deadline(self, n_chars: int) -> float:
        """Seconds one document of ``n_chars`` characters may take in the model."""
        return self.doc_deadline_base + self.doc_deadline_per_10k * n_chars / 10_000

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (values already typed)."""
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """``SHITI_*`` variables that reproduce these settings in a child process.

        Directories are exported absolute: a worker process runs from the repository root, so a
        relative ``.shiti`` would name another database there."""
        env = {}
        for f in dataclasses.fields(self):
            if f.name in _NOT_EXPORTED:
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "1" if value else "0"
            elif isinstance(value, Path):
                value = value.resolve()
            env[ENV_PREFIX + f.name.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``SHITI_*`` variables, then apply non-None ``overrides``.

        Args:
            environ: mapping to read instead of ``os.environ`` (tests).
            **overrides: field values (strings are coerced like environment values).
        """
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _coerce(hints[f.name], raw)
        for key, value in overrides.items():
            if key not in hints:
                raise TypeError(f"unknown setting {key!r}")
            if value is not None:
                values[key] = _coerce(hints[key], value) if isinstance(value, str) else value
        for key in ("data_dir", "models_dir"):
            if key in values:
                values[key] = Path(values[key])
        return cls(**values)


# Secrets a child process has no use for stay in the process that was given them (a worker needs
# the webhook secret: its notifier signs).
_NOT_EXPORTED = frozenset({"admin_key"})


def _coerce(hint: Any, raw: str) -> Any:
    if hint is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if hint is int:
        return int(raw)
    if hint is float:
        return float(raw)
    if hint is Path:
        return Path(raw)
    return raw
