"""Errors of the service that are not the client's fault: files in the data root that cannot be read or loaded."""

from __future__ import annotations


class DataError(RuntimeError):
    """A bank, checkpoint, archive or manifest inside the data root is corrupt or unreadable (answered with 500)."""
