"""Colour transfer functions and luminance (pure numpy).

Blur happens in linear light, so deconvolution runs on linear values; unsharp masking by default
runs on the encoded (gamma) values, as Photoshop and GIMP users expect. This module owns the sRGB
EOTF/OETF and the luminance/chroma split used to deconvolve "luminance only" without colour fringes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["srgb_to_linear", "linear_to_srgb", "REC709_LUMA", "split_luminance", "merge_luminance"]

REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values -> linear light (IEC 61966-2-1), float32. Extends oddly past [0, 1]."""
    x = np.asarray(x, np.float32)
    a = np.abs(x)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return (np.sign(x) * lin).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB-encoded values, float32 (odd extension for negatives, HDR kept)."""
    x = np.asarray(x, np.float32)
    a = np.abs(x)
    enc = np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)
    return (np.sign(x) * enc).astype(np.float32)


def split_luminance(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split linear RGB (H, W, 3) into luminance Y (H, W) and colour ratios (H, W, 3).

    Ratios ``rgb / Y`` are what a luminance-only filter keeps, so sharpening Y and multiplying
    back changes detail without shifting hue or adding colour fringes.
    """
    y = rgb @ REC709_LUMA
    ratio = rgb / np.maximum(y, 1e-6)[..., None]
    return y.astype(np.float32), ratio.astype(np.float32)


def merge_luminance(y: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_luminance`."""
    return (y[..., None] * ratio).astype(np.float32)
