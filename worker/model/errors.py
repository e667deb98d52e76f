"""Errors raised by the model package.

``storage/errors.py`` (the project's one root error) did not exist when this was
written, so the model package roots its errors at ``ModelError``; once the root
exists, ``ModelError`` should subclass it.
"""

from __future__ import annotations


class ModelError(Exception):
    """Root of every error raised under ``worker.model``."""


class ModelLoadError(ModelError):
    """A directory is not a loadable RaNER checkpoint or shiti artifact."""


class DeadlineExceeded(ModelError):
    """Tagging did not finish before the caller's deadline."""


class FetchError(ModelError):
    """A checkpoint could not be downloaded."""
