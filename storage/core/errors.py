"""One error hierarchy for shiti, and the exit code of a process that refuses to start."""

from __future__ import annotations

EXIT_CONFIG = 78  # EX_CONFIG (sysexits.h): refused to start because of the configuration


class ShitiError(Exception):
    """Root of every error shiti raises on purpose."""


class TransientError(ShitiError):
    """Infrastructure hiccup (database busy, broker unreachable): retrying may help."""


class DatabaseUnavailable(TransientError):
    """The database is down, restarting or locked (an SQLAlchemy ``OperationalError`` or
    ``InterfaceError``, wrapped by ``storage.sql.db``): nothing was lost; try again shortly."""


class PermanentError(ShitiError):
    """Bad input or configuration: retrying cannot help."""


class NotFound(ShitiError):
    """An unknown job or document id."""


class InvalidTransition(ShitiError):
    """A state change the job or document state machine does not allow."""


class SchemaOutOfDate(PermanentError):
    """The database's schema revision is not the one this code needs (``shiti db upgrade``)."""


class JobWaitTimeout(ShitiError):
    """A job was not finished within the time a caller was willing to wait (it keeps running)."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(f"job {job_id} not finished after {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout
