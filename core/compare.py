"""Before/after pictures and simple quality figures (pure numpy/OpenCV).

Used by the demo and by hosts that show a comparison; no file access.
"""

from __future__ import annotations

import cv2
import numpy as np

from .dtype import as_hwc, to_float32

__all__ = ["side_by_side", "psnr_db", "psnr_aligned_db", "sharpness", "psf_picture"]


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two images of the same shape, on the [0, 1] scale of their dtype."""
    x, y = to_float32(a), to_float32(b)
    if x.shape != y.shape:
        msg = f"images must have the same shape to compare, got {x.shape} and {y.shape}"
        raise ValueError(msg)
    mse = float(np.mean((x.astype(np.float64) - y) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def sharpness(image: np.ndarray) -> float:
    """Mean gradient magnitude of the luma (per cent of full scale per pixel): higher is crisper."""
    x = to_float32(image)
    y = x[:, :, :3].mean(axis=2) if x.shape[2] >= 3 else x[:, :, 0]
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3) / 8
    return float(np.mean(np.hypot(gx, gy)) * 100)


def psf_picture(psf: np.ndarray, min_side_px: int = 256) -> np.ndarray:
    """A blur kernel as a grayscale picture: uint8 (H, W), its peak white, enlarged by an
    integer factor (nearest neighbour, every kernel pixel a square) to at least ``min_side_px``
    on its shorter side."""
    k = np.asarray(psf, np.float64)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        msg = f"psf must be a finite, non-empty 2-D array, got shape {k.shape}"
        raise ValueError(msg)
    if min_side_px < 1:
        msg = f"min_side_px must be at least 1, got {min_side_px}"
        raise ValueError(msg)
    k = np.clip(k, 0, None)
    peak = float(k.max())
    scaled = k / peak if peak > 0 else k
    u8 = np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
    factor = max(1, -(-min_side_px // min(u8.shape)))
    return np.repeat(np.repeat(u8, factor, axis=0), factor, axis=1)


def side_by_side(
    before: np.ndarray,
    after: np.ndarray,
    labels: tuple[str, str] = ("before", "after"),
    gap_px: int = 8,
) -> np.ndarray:
    """Place two images of equal size next to each other with captions; returns uint8 RGB."""
    panels = []
    for img, label in zip((before, after), labels, strict=True):
        x = to_float32(as_hwc(img))
        x = x[:, :, :3] if x.shape[2] >= 3 else np.repeat(x[:, :, :1], 3, axis=2)
        u8 = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
        bar = np.full((28, u8.shape[1], 3), 24, np.uint8)
        cv2.putText(
            bar, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (240, 240, 240), 1, cv2.LINE_AA
        )
        panels.append(np.concatenate([bar, u8], axis=0))
    if panels[0].shape != panels[1].shape:
        msg = f"before and after must have the same size, got {before.shape} and {after.shape}"
        raise ValueError(msg)
    gap = np.full((panels[0].shape[0], gap_px, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


def _bilinear_shift(
    img: np.ndarray, dy: float, dx: float, crop: int, shape: tuple[int, int]
) -> np.ndarray:
    """Sample ``img`` at (y + crop + dy, x + crop + dx) over ``shape`` (bilinear, edge clamped)."""
    h, w = shape
    yy = np.clip(np.arange(h) + crop + dy, 0, img.shape[0] - 1)
    xx = np.clip(np.arange(w) + crop + dx, 0, img.shape[1] - 1)
    y0 = np.minimum(np.floor(yy).astype(int), img.shape[0] - 2)
    x0 = np.minimum(np.floor(xx).astype(int), img.shape[1] - 2)
    fy = (yy - y0)[:, None]
    fx = (xx - x0)[None, :]
    a, b = img[np.ix_(y0, x0)], img[np.ix_(y0, x0 + 1)]
    c, d = img[np.ix_(y0 + 1, x0)], img[np.ix_(y0 + 1, x0 + 1)]
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)


def psnr_aligned_db(
    estimate: np.ndarray, truth: np.ndarray, *, max_shift_px: int = 10, crop_px: int = 15
) -> float:
    """PSNR after the best shift, as in Levin et al.'s deblurring protocol (comp_upto_shift).

    Both are 2-D float arrays in [0, 1]. ``crop_px`` is removed from every border of ``truth``;
    the integer shift within +-``max_shift_px`` that minimises the squared error is refined on
    a 0.25-px grid (bilinear). Deblurring may shift the image by the kernel's offset, which
    this score forgives, as the literature does.
    """
    est = np.clip(np.asarray(estimate, np.float64), 0, 1)
    g = np.asarray(truth, np.float64)[crop_px:-crop_px, crop_px:-crop_px]
    h, w = g.shape
    best = (np.inf, 0.0, 0.0)
    for dy in range(-max_shift_px, max_shift_px + 1):
        for dx in range(-max_shift_px, max_shift_px + 1):
            y0, x0 = crop_px + dy, crop_px + dx
            e = float(np.sum((est[y0 : y0 + h, x0 : x0 + w] - g) ** 2))
            if e < best[0]:
                best = (e, float(dy), float(dx))
    _, by, bx = best
    for dy in np.arange(by - 1, by + 1.001, 0.25):
        for dx in np.arange(bx - 1, bx + 1.001, 0.25):
            e = float(np.sum((_bilinear_shift(est, dy, dx, crop_px, (h, w)) - g) ** 2))
            if e < best[0]:
                best = (e, float(dy), float(dx))
    mse = best[0] / g.size
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
