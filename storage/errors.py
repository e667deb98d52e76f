"""One error hierarchy for shiti, and the exit code of a process that refuses to start."""

from __future__ import annotations

EXIT_CONFIG = 78  # EX_CONFIG (sysexits.h): refused to start because of the configuration


class ShitiError(Exception):
    """Root of every error shiti raises on purpose."""


class TransientError(ShitiError):
    """Infrastructure hiccup (database busy, broker unreachable): retrying may help."""


class PermanentError(ShitiError):
    """Bad input or configuration: retrying cannot help."""


class NotFound(ShitiError):
    """An unknown job or document id."""


class InvalidTransition(ShitiError):
    """A state change the job or document state machine does not allow."""


class SchemaOutOfDate(PermanentError):
    """The database's schema revision is not the one this code needs (``shiti db upgrade``)."""
