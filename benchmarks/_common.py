"""Shared helpers for the benchmarks: locating ../shared data, timing, memory and metrics.

The benchmarks run on demand (never in CI) and print ratios against a peer measured in the
same run. They read evaluation data from ../shared when it is present.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("CLEARSHOT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEBLUR_DATA = SHARED / "data" / "deblur"
LEVIN = DEBLUR_DATA / "levin09"


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def _shift(img: np.ndarray, dy: float, dx: float, crop: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear sample of img at (y + crop + dy, x + crop + dx) over ``shape`` (edge clamped)."""
    h, w = shape
    yy = np.clip(np.arange(h) + crop + dy, 0, img.shape[0] - 1)
    xx = np.clip(np.arange(w) + crop + dx, 0, img.shape[1] - 1)
    y0 = np.minimum(np.floor(yy).astype(int), img.shape[0] - 2)
    x0 = np.minimum(np.floor(xx).astype(int), img.shape[1] - 2)
    fy = (yy - y0)[:, None]
    fx = (xx - x0)[None, :]
    a = img[np.ix_(y0, x0)]
    b = img[np.ix_(y0, x0 + 1)]
    c = img[np.ix_(y0 + 1, x0)]
    d = img[np.ix_(y0 + 1, x0 + 1)]
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)


def psnr_upto_shift(
    est: np.ndarray, gt: np.ndarray, *, max_shift: int = 10, crop: int = 15
) -> float:
    """Levin et al.'s protocol: crop ``crop`` px, best integer then 0.25-px shift, PSNR.

    Our own implementation of the scoring in Levin et al. (CVPR 2009), comp_upto_shift.m.
    """
    est = np.clip(np.asarray(est, np.float64), 0, 1)
    g = np.asarray(gt, np.float64)[crop:-crop, crop:-crop]
    h, w = g.shape
    best = (np.inf, 0.0, 0.0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            e = np.sum((est[crop + dy : crop + dy + h, crop + dx : crop + dx + w] - g) ** 2)
            if e < best[0]:
                best = (e, float(dy), float(dx))
    _, by, bx = best
    for dy in np.arange(by - 1, by + 1.001, 0.25):
        for dx in np.arange(bx - 1, bx + 1.001, 0.25):
            e = np.sum((_shift(est, dy, dx, crop, (h, w)) - g) ** 2)
            if e < best[0]:
                best = (e, dy, dx)
    return psnr(_shift(est, best[1], best[2], crop, (h, w)), g)


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
