"""Working format: float32 (H, W, C), C in 1..4, alpha last.

This module owns conversion between storage dtypes (uint8, uint16, float16, float32/64) and the
float32 working format, shape normalisation, validation of pixel data, and splitting/joining the
alpha channel. It never filters pixels.

Rules
-----
* uint8 maps by /255 and uint16 by /65535; floats pass through as float32 (float16 and float64
  are converted). bool, complex and other integer types are refused with an explanation.
* Back-conversion rounds to nearest (``np.rint``) and clips, so a uint8 -> float32 -> uint8 round
  trip is exact.
* Alpha is carried separately and returned bit-identical by every operation.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SUPPORTED_DTYPES",
    "to_float32",
    "from_float32",
    "as_hwc",
    "check_image",
    "split_alpha",
    "join_alpha",
    "has_alpha",
]

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _check_dtype(dtype: np.dtype) -> None:
    if dtype not in [np.dtype(d) for d in SUPPORTED_DTYPES]:
        msg = (
            f"image dtype must be one of uint8, uint16, float16, float32 or float64, got {dtype}; "
            "convert the data first (e.g. array.astype(np.float32) / full_scale)"
        )
        raise TypeError(msg)


def as_hwc(image: np.ndarray) -> np.ndarray:
    """Return ``image`` viewed as (H, W, C); a 2-D array gains a channel axis (no copy).

    >>> as_hwc(np.zeros((4, 5))).shape
    (4, 5, 1)
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3 and 1 <= arr.shape[2] <= 4:
        return arr
    msg = (
        f"image must be (H, W) or (H, W, C) with C in 1..4 (gray, gray+alpha, RGB, RGBA), "
        f"got shape {arr.shape}; for channel-first data use np.moveaxis(a, 0, -1)"
    )
    raise ValueError(msg)


def check_image(image: np.ndarray, *, name: str = "image", allow_nonfinite: bool = False) -> None:
    """Raise a clear error unless ``image`` is usable pixel data.

    Checks type, dtype, shape, non-zero size and (for floats) finiteness.
    """
    if not isinstance(image, np.ndarray):
        msg = f"{name} must be a numpy array, got {type(image).__name__}"
        raise TypeError(msg)
    _check_dtype(image.dtype)
    as_hwc(image)
    if image.shape[0] == 0 or image.shape[1] == 0:
        msg = f"{name} is empty (shape {image.shape}); it needs at least 1x1 pixels"
        raise ValueError(msg)
    if not allow_nonfinite and image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = int(np.count_nonzero(~np.isfinite(image)))
        msg = (
            f"{name} contains {bad} NaN or infinite values; replace them first, "
            "e.g. np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)"
        )
        raise ValueError(msg)


def to_float32(image: np.ndarray) -> np.ndarray:
    """Convert pixel data to the float32 (H, W, C) working format.

    Parameters
    ----------
    image : ndarray, uint8 | uint16 | float16 | float32 | float64, (H, W) or (H, W, C)
        Integer data is scaled to [0, 1]; float data is taken as is (may exceed [0, 1]).

    Returns
    -------
    ndarray, float32, (H, W, C)
        A new array (the input is never modified).

    Examples
    --------
    >>> to_float32(np.array([[0, 255]], np.uint8))[..., 0].tolist()
    [[0.0, 1.0]]
    """
    check_image(image)
    arr = as_hwc(image)
    scale = _SCALE.get(arr.dtype)
    if scale is not None:
        return arr.astype(np.float32) * np.float32(1.0 / scale)
    return arr.astype(np.float32, copy=True)


def from_float32(image: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Convert float32 working data back to ``dtype`` (rounding to nearest and clipping ints).

    Parameters
    ----------
    image : ndarray, float, (H, W, C)
    dtype : uint8 | uint16 | float16 | float32 | float64

    Returns
    -------
    ndarray of ``dtype``, same shape. Integers are ``clip(rint(x * full_scale))``; floats are
    cast unchanged (no clipping: HDR values survive).
    """
    dt = np.dtype(dtype)
    _check_dtype(dt)
    scale = _SCALE.get(dt)
    if scale is None:
        return np.asarray(image).astype(dt)
    x = np.rint(np.asarray(image, np.float32) * np.float32(scale))
    np.clip(x, 0.0, scale, out=x)
    return x.astype(dt)


def has_alpha(image: np.ndarray) -> bool:
    """True for (H, W, 2) gray+alpha and (H, W, 4) RGBA data."""
    return as_hwc(image).shape[2] in (2, 4)


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split (H, W, C) into colour channels and alpha (or None). Views, no copies."""
    arr = as_hwc(image)
    if arr.shape[2] in (2, 4):
        return arr[:, :, :-1], arr[:, :, -1:]
    return arr, None


def join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`split_alpha`; alpha is copied bit-identically."""
    if alpha is None:
        return colour
    return np.concatenate([colour, alpha.astype(colour.dtype, copy=False)], axis=2)
