"""Overlapping tiles with feathered blending, to bound memory on large images.

``process_tiled(image, fn, tile_px=..., margin_px=...)`` cuts (H, W, C) float32 data into tiles
whose *cores* partition the image; each tile is handed to ``fn`` with ``margin_px`` of real
context on every side (clamped at the image edge), and the results are blended back with
weights that are 1 in the core, ramp down across the inner half of the margin and are 0 in its
outer half, so seams vanish. Works for any operation whose edge effects reach less than half
the margin (deconvolution: margin = a few PSF widths). Owns geometry and blending only; never
looks at pixel values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .progress import ProgressCallback, Reporter

__all__ = ["process_tiled", "tile_grid"]


def tile_grid(length: int, tile: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into near-equal cores of at most ``tile`` elements."""
    n = max(1, -(-length // max(tile, 1)))
    edges = np.linspace(0, length, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _ramp(length: int, lo_margin: int, hi_margin: int) -> np.ndarray:
    """1-D weight: 0 over the outer half of each margin (where the tile's own edge disturbs the
    result), then a linear ramp up to 1 over the inner half, 1 across the core."""
    w = np.ones(length, np.float32)
    for margin, side in ((lo_margin, slice(None)), (hi_margin, slice(None, None, -1))):
        if margin <= 0:
            continue
        band = max(1, margin // 2)
        dead = margin - band
        ramp = np.zeros(margin, np.float32)
        ramp[dead:] = (np.arange(band, dtype=np.float32) + 1) / (band + 1)
        w[side][:margin] = ramp
    return w


def process_tiled(
    image: np.ndarray,
    fn: Callable[[np.ndarray, Reporter], np.ndarray],
    *,
    tile_px: int,
    margin_px: int,
    progress: ProgressCallback | Reporter | None = None,
) -> np.ndarray:
    """Apply ``fn`` tile by tile and blend.

    Parameters
    ----------
    image : ndarray, float32, (H, W, C)
    fn : callable ``fn(tile, reporter) -> tile`` keeping shape
        Must not depend on the tile's absolute position.
    tile_px : int
        Side of the tile cores (the image is processed whole when it fits in one tile).
    margin_px : int
        Context on each side of a core; also the width of the blend.
    progress : callable or Reporter, optional

    Returns
    -------
    ndarray, float32, (H, W, C)
    """
    rep = progress if isinstance(progress, Reporter) else Reporter(progress)
    h, w, c = image.shape
    if h <= tile_px and w <= tile_px:
        return fn(image, rep)
    rows, cols = tile_grid(h, tile_px), tile_grid(w, tile_px)
    out = np.zeros((h, w, c), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    n = len(rows) * len(cols)
    i = 0
    for y0, y1 in rows:
        for x0, x1 in cols:
            ty0, ty1 = max(0, y0 - margin_px), min(h, y1 + margin_px)
            tx0, tx1 = max(0, x0 - margin_px), min(w, x1 + margin_px)
            res = fn(np.ascontiguousarray(image[ty0:ty1, tx0:tx1]), rep.sub(i / n, (i + 1) / n))
            wy = _ramp(ty1 - ty0, y0 - ty0, ty1 - y1)
            wx = _ramp(tx1 - tx0, x0 - tx0, tx1 - x1)
            wt = (wy[:, None] * wx[None, :])[:, :, None]
            out[ty0:ty1, tx0:tx1] += res * wt
            weight[ty0:ty1, tx0:tx1] += wt
            i += 1
    out /= weight
    return out
