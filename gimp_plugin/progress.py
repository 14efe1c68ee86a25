"""Engine progress -> GIMP's progress bar, and how a cancel reaches the engine (pure Python).

How cancelling works in GIMP 3.0
--------------------------------
GIMP gives a plug-in no way to ask "did the user press cancel?": ``Gimp.progress_update``
returns only whether the call reached GIMP, and the PDB's ``gimp-progress-cancel`` is meant for
plug-ins that *provide* a progress (it is a stub returning FALSE in 3.0.4). When the user
cancels the progress of a running plug-in, GIMP's core
(``app/plug-in/gimpplugin-progress.c``, ``gimp_plug_in_progress_cancel_callback``) sets the
procedure's return values to ``CANCEL`` ("Cancelled") itself and closes the plug-in with
``kill_it``: a quit message, then ``SIGKILL`` 10 ms later. No Python ``finally`` runs; GIMP's
cleanup ends an undo group the plug-in left open and drops its shadow buffers. So:

* every result is computed before the first pixel is written, and the host ends the progress
  (``Gimp.progress_end``, which disconnects GIMP's cancel handler) *before* it opens the undo
  group and writes: a cancel either comes before any write (the image is as it was) or not at
  all; there is no half-written state;
* an out-of-process worker notices the plug-in is gone at its next progress line (broken pipe),
  stops and deletes its exchange folder;
* a progress callback that answers ``False`` (the engine then raises ``OperationCancelled`` at
  its next checkpoint, the host returns ``CANCEL``, the worker is killed) is the path GIMP's
  API would use if it ever reported cancels, and the one the test hook below drives.

Test hook
---------
``CLEARSHOT_TEST_CANCEL_FILE=PATH`` (set in GIMP's environment): while ``PATH`` exists and holds
an integer N, the progress answers ``False`` ("cancelled") from its N-th report on, as if the
user had pressed cancel. The real-GIMP test uses it to check that a cancel leaves the pixels as
they were and returns ``CANCEL``. Without the variable nothing is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["ProgressBar", "CANCEL_HOOK_ENV", "cancel_after_from_hook"]

CANCEL_HOOK_ENV = "CLEARSHOT_TEST_CANCEL_FILE"


def cancel_after_from_hook(environ: dict[str, str] | None = None) -> int | None:
    """The test hook's N (cancel at the N-th progress report), or None when it is not set."""
    env = os.environ if environ is None else environ
    path = env.get(CANCEL_HOOK_ENV)
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
        return max(1, int(text))
    except (OSError, ValueError):
        return None


class _Shared:
    def __init__(self, cancel_after: int | None) -> None:
        self.reports = 0
        self.cancel_after = cancel_after
        self.cancelled = False
        self.last = -1.0


class ProgressBar:
    """A ``progress(fraction, stage) -> bool`` callback for the engine, drawn with ``update``.

    ``update`` is ``Gimp.progress_update`` in the plug-in (a fake in tests); it is called at most
    every 1 % of the bar. ``part(a, b)`` maps the engine's 0..1 onto a..b of the whole bar (one
    drawable of several) and shares the cancel state. Returns ``False`` once cancelled.
    """

    def __init__(
        self,
        update: Callable[[float], object],
        *,
        start: float = 0.0,
        stop: float = 1.0,
        cancel_after: int | None = None,
        _shared: _Shared | None = None,
    ) -> None:
        self._update = update
        self.start, self.stop = float(start), float(stop)
        self._shared = _shared if _shared is not None else _Shared(cancel_after)

    @classmethod
    def for_gimp(cls, update: Callable[[float], object]) -> ProgressBar:
        """A bar that honours the test hook (:data:`CANCEL_HOOK_ENV`)."""
        return cls(update, cancel_after=cancel_after_from_hook())

    @property
    def cancelled(self) -> bool:
        """True once a report was answered with ``False``."""
        return self._shared.cancelled

    def part(self, start: float, stop: float) -> ProgressBar:
        """A progress for the share ``start..stop`` of this bar."""
        span = self.stop - self.start
        return ProgressBar(self._update, start=self.start + span * start,
                           stop=self.start + span * stop, _shared=self._shared)

    def __call__(self, fraction: float, stage: str = "") -> bool:
        s = self._shared
        if s.cancelled:
            return False
        s.reports += 1
        if s.cancel_after is not None and s.reports >= s.cancel_after:
            s.cancelled = True
            return False
        f = self.start + (self.stop - self.start) * min(max(float(fraction), 0.0), 1.0)
        if f - s.last >= 0.01 or (f >= 1.0 > s.last):
            s.last = f
            self._update(f)
        return True
