"""Colour transfer functions and luminance (pure numpy).

Blur happens in linear light, so deconvolution runs on linear values; unsharp masking by default
runs on the encoded (gamma) values, as Photoshop and GIMP users expect. This module owns the sRGB
EOTF/OETF and the luminance/chroma split used to deconvolve "luminance only" without colour fringes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "srgb_to_linear",
    "linear_to_srgb",
    "REC709_LUMA",
    "decode_to_linear",
    "encode_from_linear",
    "gray_linear",
]

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


_DECODE_LUT: dict[np.dtype, np.ndarray] = {}
_ENCODE_LUT: dict[np.dtype, np.ndarray] = {}
_ENCODE_STEPS = {np.dtype(np.uint8): 1 << 16, np.dtype(np.uint16): 1 << 20}


def decode_to_linear(pixels: np.ndarray, *, encoded: bool = True) -> np.ndarray:
    """Storage values (uint8/uint16/float) -> float32 linear light, as a new array.

    Integer data goes through a lookup table (one gather per value instead of a power
    function: 12 MP RGB in ~0.1 s). ``encoded=False`` only rescales (data already linear).
    """
    dt = pixels.dtype
    if dt.kind == "u" and dt.itemsize <= 2:
        if dt not in _DECODE_LUT:
            full = float(np.iinfo(dt).max)
            levels = np.arange(int(full) + 1, dtype=np.float32) / np.float32(full)
            _DECODE_LUT[dt] = srgb_to_linear(levels)
        if not encoded:
            return pixels.astype(np.float32) * np.float32(1.0 / np.iinfo(dt).max)
        return _DECODE_LUT[dt][pixels]
    x = np.array(pixels, dtype=np.float32, copy=True)
    return srgb_to_linear(x) if encoded else x


def encode_from_linear(
    linear: np.ndarray, dtype: np.dtype | type, *, encoded: bool = True
) -> np.ndarray:
    """float32 linear light -> storage ``dtype`` (sRGB-encoded unless ``encoded=False``).

    Integer outputs are clipped to the range and rounded to nearest through a fine lookup
    table (2^16 steps for 8-bit, 2^20 for 16-bit: finer than one output level everywhere).
    Float outputs keep values outside [0, 1].
    """
    dt = np.dtype(dtype)
    if dt.kind == "f":
        out = linear_to_srgb(linear) if encoded else linear
        return out.astype(dt, copy=False)
    full = np.iinfo(dt).max
    if not encoded:
        x = np.clip(linear, 0.0, 1.0) * np.float32(full)
        return np.rint(x).astype(dt)
    steps = _ENCODE_STEPS[dt]
    if dt not in _ENCODE_LUT:
        grid = np.arange(steps + 1, dtype=np.float64) / steps
        enc = 1.055 * grid ** (1 / 2.4) - 0.055
        enc = np.where(grid <= 0.0031308, grid * 12.92, enc)
        _ENCODE_LUT[dt] = np.clip(np.rint(enc * full), 0, full).astype(dt)
    idx = np.clip(linear, 0.0, 1.0) * np.float32(steps)
    idx += np.float32(0.5)
    return _ENCODE_LUT[dt][idx.astype(np.int32)]


def gray_linear(pixels: np.ndarray, *, encoded: bool = True) -> np.ndarray:
    """Linear-light luminance (H, W) float32 of gray/RGB(A) storage values (alpha ignored)."""
    arr = pixels if pixels.ndim == 3 else pixels[:, :, None]
    colour = arr[:, :, :-1] if arr.shape[2] in (2, 4) else arr
    lin = decode_to_linear(colour, encoded=encoded)
    return lin @ REC709_LUMA if lin.shape[2] == 3 else lin[:, :, 0]
