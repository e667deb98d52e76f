"""Errors raised by the model package, under the project's one root (``storage.core.errors.ShitiError``)."""

from __future__ import annotations

from storage.core.errors import ShitiError


class ModelError(ShitiError):
    """Root of every error raised under ``worker.model``."""


class ModelLoadError(ModelError):
    """A directory is not a loadable RaNER checkpoint or shiti artifact."""


class DeadlineExceeded(ModelError):
    """Tagging did not finish before the caller's deadline."""


class Stopped(ModelError):
    """Tagging was asked to stop (the caller's ``stop`` returned true) before all windows ran."""


class FetchError(ModelError):
    """A checkpoint could not be downloaded."""
