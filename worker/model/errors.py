"""Errors raised by the model package, under the project's one root (``storage.errors.ShitiError``)."""

from __future__ import annotations

from storage.errors import ShitiError


class ModelError(ShitiError):
    """Root of every error raised under ``worker.model``."""


class ModelLoadError(ModelError):
    """A directory is not a loadable RaNER checkpoint or shiti artifact."""


class DeadlineExceeded(ModelError):
    """Tagging did not finish before the caller's deadline."""


class FetchError(ModelError):
    """A checkpoint could not be downloaded."""
