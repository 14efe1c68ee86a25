"""Shared fixtures: small generated images, and the optional ../shared evaluation data."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(os.environ.get("CLEARSHOT_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def make_scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A small photo-like float32 RGB scene in [0, 1]: gradient, disks (dead leaves), edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([0.3 + 0.4 * xx / w, 0.5 + 0.2 * yy / h, 0.6 - 0.3 * xx / w], axis=2)
    for _ in range(int(h * w / 150)):
        r = int(2 + 12 * rng.random() ** 3)
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, c, r, (rng.random(3) * 0.8 + 0.1).tolist(), -1, lineType=cv2.LINE_AA)
    return np.clip(img, 0, 1).astype(np.float32)


def blur_valid(sharp: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur with a true image edge: returns (blurred, matching sharp crop), no wrap-around."""
    kh, kw = psf.shape
    k = psf[::-1, ::-1].astype(np.float32).copy()  # filter2D correlates
    full = cv2.filter2D(sharp, -1, k, borderType=cv2.BORDER_REFLECT).reshape(sharp.shape)
    oy, ox = kh // 2, kw // 2
    return full[oy : -oy or None, ox : -ox or None].copy(), sharp[
        oy : -oy or None, ox : -ox or None
    ].copy()


def night_scene(seed: int = 0, side: int = 320) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shaken night-like photo: :func:`make_scene` with a dozen small lights 8-30x full
    scale, blurred in linear light by a bent 15 px path (true image edge), 0.5 % noise, 8-bit
    sRGB, so the lights' streaks are clipped. Returns (photo uint8, kernel, sharp linear light
    crop matching the photo, lights unclipped)."""
    from core.color import linear_to_srgb, srgb_to_linear

    kernel = np.zeros((21, 21), np.float32)
    path = np.array([[3, 15], [9, 12], [14, 13], [17, 6]], np.int32)
    cv2.polylines(kernel, [path], False, 1.0, 1, cv2.LINE_AA)
    kernel /= kernel.sum()
    rng = np.random.default_rng(seed)
    lin = srgb_to_linear(make_scene(side, side, seed=seed))
    for _ in range(12):
        c = (int(rng.integers(10, side - 10)), int(rng.integers(10, side - 10)))
        cv2.circle(lin, c, int(rng.integers(1, 4)), (float(rng.uniform(8, 30)),) * 3, -1)
    blurred, sharp = blur_valid(lin, kernel)
    blurred = np.clip(blurred + 0.005 * rng.standard_normal(blurred.shape).astype(np.float32), 0, 1)
    return np.rint(linear_to_srgb(blurred) * 255).astype(np.uint8), kernel, sharp


def blurred_pair8(
    sharp_srgb: np.ndarray, psf: np.ndarray, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred, sharp) 8-bit sRGB: ``sharp_srgb`` (float [0, 1]) blurred in linear light with a
    true image edge (:func:`blur_valid`), Gaussian noise of ``noise`` (linear) added, seeded."""
    from core.color import linear_to_srgb, srgb_to_linear

    blurred, gt = blur_valid(srgb_to_linear(sharp_srgb), psf)
    rng = np.random.default_rng(seed)
    blurred = blurred + rng.normal(0, noise, blurred.shape).astype(np.float32)

    def to8(x: np.ndarray) -> np.ndarray:
        return np.rint(np.clip(linear_to_srgb(np.clip(x, 0, 1)), 0, 1) * 255).astype(np.uint8)

    return to8(blurred), to8(gt)


@pytest.fixture
def scene() -> np.ndarray:
    return make_scene()


@pytest.fixture
def shared_deblur() -> Path:
    path = SHARED / "data" / "deblur"
    if not path.exists():
        pytest.skip("../shared/data/deblur is not present")
    return path
