"""Plug-in exceptions and how each maps to a PDB status (pure Python, no ``gi``, no numpy).

``ValueError``/``TypeError`` are the caller's fault (``CALLING_ERROR``); a cancel is ``CANCEL``;
everything else is ``EXECUTION_ERROR``. The engine's ``OperationCancelled`` is recognised by
name so this module need not import :mod:`core` (which needs numpy).
"""

from __future__ import annotations

__all__ = [
    "AnalysisUnavailableError",
    "EngineUnavailableError",
    "WorkerError",
    "PluginCancelled",
    "status_for",
    "message_for",
]

class AnalysisUnavailableError(RuntimeError):
    """A mode needs an engine part that is not installed."""


class EngineUnavailableError(RuntimeError):
    """Neither numpy/OpenCV in GIMP's Python nor an installed engine runtime was found."""


class WorkerError(RuntimeError):
    """The out-of-process engine failed; ``kind`` is the exception class name it reported."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PluginCancelled(Exception):
    """The user cancelled (dialog or progress)."""


def status_for(exc: BaseException) -> str:
    """The PDB status name for an exception: CALLING_ERROR, CANCEL or EXECUTION_ERROR."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, PluginCancelled) or "OperationCancelled" in names:
        return "CANCEL"
    if isinstance(exc, (ValueError, TypeError)):
        return "CALLING_ERROR"
    return "EXECUTION_ERROR"


def message_for(exc: BaseException, procedure: str) -> str:
    """A one-paragraph message for the user and for PDB callers (never empty)."""
    text = str(exc).strip() or type(exc).__name__
    return f"{procedure}: {text}"
