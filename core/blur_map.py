"""Blur map: how blurred each part of a photo is, and the in-focus mask derived from it.

The map measures, tile by tile, how far the steepest edges spread their step (local range
over the maximum slope, the same measure :func:`core.diagnose.edge_widths_px` uses for the
whole image). Tiles without edges (sky, bokeh discs, flat walls) carry no evidence: they are
filled from their neighbours. The result is smoothed and resized to the image, so later steps
can sharpen only the subject and leave intentional background blur alone.

Pure numpy/OpenCV; no file access.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import gray_linear, linear_to_srgb
from .dtype import check_image

__all__ = ["blur_map", "focus_mask"]

_SHARP_PX = 2.5  # what a perfectly sharp edge measures
_WINDOW_PX = 15


def _encoded_gray(image: np.ndarray, linear_input: bool) -> np.ndarray:
    return linear_to_srgb(np.clip(gray_linear(image, encoded=not linear_input), 0, 1))


def blur_map(image: np.ndarray, *, tile_px: int = 48, linear_input: bool = False) -> np.ndarray:
    """Local blur width in pixels, (H, W) float32 (about 2.5 where sharp, larger where blurred).

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    tile_px : int
        Size of the tiles the evidence is gathered in (finer maps need more edges per tile).
    linear_input : bool
        The data is already linear light.
    """
    check_image(image)
    if tile_px < 8:
        msg = f"tile_px must be at least 8 px, got {tile_px}"
        raise ValueError(msg)
    g = cv2.GaussianBlur(_encoded_gray(image, linear_input).astype(np.float32), (0, 0), 1.0)
    h, w = g.shape
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    slope = np.hypot(gx, gy)
    se = cv2.getStructuringElement(cv2.MORPH_RECT, (_WINDOW_PX, _WINDOW_PX))
    local_range = cv2.dilate(g, se) - cv2.erode(g, se)
    width = local_range / np.maximum(slope, 1e-6)
    ny, nx = max(1, h // tile_px), max(1, w // tile_px)
    tiles = np.full((ny, nx), np.nan, np.float32)
    for ty in range(ny):
        for tx in range(nx):
            ys = slice(ty * h // ny, (ty + 1) * h // ny)
            xs = slice(tx * w // nx, (tx + 1) * w // nx)
            r, s, wd = local_range[ys, xs], slope[ys, xs], width[ys, xs]
            edge = r > 0.08  # a visible step in this window
            if edge.sum() < 8:
                continue
            s_e = s[edge]
            top = s_e >= np.quantile(s_e, 0.9)  # the steepest part of each edge
            tiles[ty, tx] = float(np.median(wd[edge][top]))
    tiles = _fill_missing(tiles)
    tiles = cv2.GaussianBlur(tiles, (0, 0), 0.7)
    return cv2.resize(tiles, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _fill_missing(tiles: np.ndarray) -> np.ndarray:
    """Replace NaN tiles by the value of the nearest measured tile (all NaN: sharp)."""
    missing = ~np.isfinite(tiles)
    if not missing.any():
        return tiles
    if missing.all():
        return np.full_like(tiles, _SHARP_PX)
    _, labels = cv2.distanceTransformWithLabels(
        missing.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    known = ~missing
    values_by_label = np.zeros(labels.max() + 1, np.float32)
    values_by_label[labels[known]] = tiles[known]
    return values_by_label[labels].astype(np.float32)


def focus_mask(
    widths_px: np.ndarray, *, sharp_px: float = 4.0, blurred_px: float = 10.0
) -> np.ndarray:
    """In-focus mask from a blur map: 1 where edges are within ``sharp_px``, 0 beyond
    ``blurred_px``, linear between (float32 in [0, 1])."""
    if not blurred_px > sharp_px:
        msg = f"blurred_px ({blurred_px}) must exceed sharp_px ({sharp_px})"
        raise ValueError(msg)
    m = (blurred_px - np.asarray(widths_px, np.float32)) / np.float32(blurred_px - sharp_px)
    return np.clip(m, 0, 1).astype(np.float32)
