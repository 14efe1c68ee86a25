"""Shared helpers for the benchmarks: locating ../shared data, timing, memory and metrics.

The benchmarks run on demand (never in CI) and print ratios against a peer measured in the
same run. They read evaluation data from ../shared when it is present.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.compare import psnr_aligned_db as psnr_upto_shift  # noqa: F401  (re-export)

SHARED = Path(os.environ.get("CLEARSHOT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEBLUR_DATA = SHARED / "data" / "deblur"
LEVIN = DEBLUR_DATA / "levin09"


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def require_shared(path: Path) -> None:
    if not path.exists():
        msg = f"needs {path} (the ../shared evaluation data beside the project)"
        raise SystemExit(msg)
