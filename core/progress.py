"""Progress reporting and cancellation for long operations.

A *progress callback* is any callable ``progress(fraction, stage)`` with ``fraction`` in [0, 1]
and a short human-readable ``stage``. It may return ``False`` (or raise
:class:`core.errors.OperationCancelled`) to cancel; the engine then stops at the next checkpoint
and raises ``OperationCancelled``. Hosts turn it into a progress bar (CLI) or
``Gimp.progress_update`` (GIMP). Nothing here touches pixels.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import OperationCancelled

__all__ = ["ProgressCallback", "Reporter"]

ProgressCallback = Callable[[float, str], "bool | None"]


class Reporter:
    """Maps the progress of one step onto a sub-range of a parent callback.

    ``Reporter(cb).sub(0.2, 0.6)`` returns a reporter whose 0..1 covers the parent's 0.2..0.6,
    so nested operations (tiles, channels, iterations) report one monotone bar.
    """

    def __init__(self, callback: ProgressCallback | None, start: float = 0.0, stop: float = 1.0):
        self._callback = callback
        self._start = float(start)
        self._stop = float(stop)

    def __call__(self, fraction: float, stage: str = "") -> None:
        """Report ``fraction`` of this step; raise ``OperationCancelled`` if the user cancelled."""
        if self._callback is None:
            return
        f = min(max(float(fraction), 0.0), 1.0)
        answer = self._callback(self._start + (self._stop - self._start) * f, stage)
        if answer is False:
            msg = f"cancelled by the user during '{stage or 'processing'}'"
            raise OperationCancelled(msg)

    def sub(self, start: float, stop: float) -> Reporter:
        """A reporter for the part ``start..stop`` (fractions of this reporter's range)."""
        span = self._stop - self._start
        return Reporter(self._callback, self._start + span * start, self._start + span * stop)

    @property
    def active(self) -> bool:
        """True when somebody listens (lets callers skip costly progress bookkeeping)."""
        return self._callback is not None
