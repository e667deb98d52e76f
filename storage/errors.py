"""One error hierarchy for shiti."""

from __future__ import annotations


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
