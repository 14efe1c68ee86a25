"""Exceptions shared by the engine and its hosts.

Bad values raise ``ValueError`` and bad types ``TypeError`` (hosts map these to "calling
errors"); the classes here cover the remaining cases. Every message says what was expected,
what arrived and how to fix it.
"""

from __future__ import annotations

__all__ = ["ClearshotError", "MissingDependencyError", "OperationCancelled", "ImageReadError"]


class ClearshotError(Exception):
    """Base class for Clearshot failures that are neither bad values nor bad types."""


class MissingDependencyError(ImportError):
    """An optional package is needed; the message carries the install hint."""


class OperationCancelled(ClearshotError):
    """The user cancelled a long operation through its progress callback."""


class ImageReadError(ClearshotError, OSError):
    """A file could not be read as an image (missing, unreadable or of an unknown format)."""
