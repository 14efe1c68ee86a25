"""Before/after pictures and simple quality figures (pure numpy/OpenCV).

Used by the demo and by hosts that show a comparison; no file access.
"""

from __future__ import annotations

import cv2
import numpy as np

from .dtype import as_hwc, to_float32

__all__ = ["side_by_side", "psnr_db", "sharpness"]


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
