"""Point-spread functions (blur kernels): models, validation and normalisation.

Convention: ``blurred = convolve(sharp, psf)`` (true convolution, not correlation). Every PSF
returned here is float32, 2-D, with odd sides, non-negative, summing to 1 and with its centroid
on the centre pixel, so deconvolving with it introduces no global shift.

This module builds kernels from numbers and arrays; reading a kernel file lives in
:mod:`core.io` (``read_psf``), the only place that touches files.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "path_psf",
    "gaussian_psf",
    "defocus_psf",
    "motion_psf",
    "normalize_psf",
    "MAX_PSF_SIDE_PX",
]

MAX_PSF_SIDE_PX = 1025


def _finish(kernel: np.ndarray, *, trim: float = 0.0) -> np.ndarray:
    """Clip negatives, optionally trim near-zero margins, centre the centroid, normalise."""
    k = np.clip(np.asarray(kernel, np.float64), 0.0, None)
    if trim > 0:
        ys, xs = np.nonzero(k > trim * k.max())
        k = k[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    k = k / k.sum()
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    cy, cx = float((k * yy).sum()), float((k * xx).sum())
    r = int(math.ceil(max(cy, k.shape[0] - 1 - cy, cx, k.shape[1] - 1 - cx) - 1e-9))
    out = np.zeros((2 * r + 1, 2 * r + 1))
    oy, ox = round(r - cy), round(r - cx)
    out[oy : oy + k.shape[0], ox : ox + k.shape[1]] = k
    return (out / out.sum()).astype(np.float32)


def normalize_psf(psf: np.ndarray, *, name: str = "psf") -> np.ndarray:
    """Validate an arbitrary kernel and return it normalised and centred (float32, odd sides).

    Parameters
    ----------
    psf : ndarray, 2-D, real
        Any non-negative kernel (e.g. loaded from ``.npy`` or a grayscale PNG). Small negative
        values from estimation noise are clipped to 0.

    Returns
    -------
    ndarray, float32, (2r+1, 2r+1)
        Sum 1, centroid on the centre pixel.

    Raises
    ------
    ValueError
        Not 2-D, empty, non-finite, all zero, or larger than ``MAX_PSF_SIDE_PX``.
    """
    k = np.asarray(psf)
    if k.ndim == 3 and k.shape[2] == 1:
        k = k[:, :, 0]
    if k.ndim != 2 or k.size == 0:
        msg = f"{name} must be a non-empty 2-D array (a grayscale kernel), got shape {k.shape}"
        raise ValueError(msg)
    if k.dtype.kind not in "uif":
        msg = f"{name} must hold real numbers, got dtype {k.dtype}"
        raise TypeError(msg)
    k = k.astype(np.float64)
    if not np.isfinite(k).all():
        msg = f"{name} contains NaN or infinite values; a PSF must be finite and non-negative"
        raise ValueError(msg)
    if max(k.shape) > MAX_PSF_SIDE_PX:
        msg = (
            f"{name} is {k.shape[0]}x{k.shape[1]} px; kernels up to {MAX_PSF_SIDE_PX} px "
            "are supported"
        )
        raise ValueError(msg)
    if np.clip(k, 0, None).sum() <= 0:
        msg = f"{name} has no positive values; a PSF is a non-negative kernel with positive sum"
        raise ValueError(msg)
    return _finish(k, trim=1e-6)


def gaussian_psf(sigma_px: float) -> np.ndarray:
    """Isotropic Gaussian PSF (lens softness, slight defocus, atmospheric blur).

    Parameters
    ----------
    sigma_px : float, > 0
        Standard deviation in pixels. The kernel spans +-ceil(3.5 sigma).

    Examples
    --------
    >>> k = gaussian_psf(1.0); k.shape, round(float(k.sum()), 5)
    ((9, 9), 1.0)
    """
    if not (sigma_px > 0 and math.isfinite(sigma_px)):
        msg = f"sigma_px must be a positive number of pixels, got {sigma_px!r}"
        raise ValueError(msg)
    r = max(1, math.ceil(3.5 * sigma_px))
    _check_side(2 * r + 1, "gaussian sigma_px", sigma_px)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    return _finish(np.exp(-0.5 * (xx**2 + yy**2) / sigma_px**2))


def defocus_psf(radius_px: float, *, oversample: int = 8) -> np.ndarray:
    """Out-of-focus disk (pillbox) PSF, anti-aliased by supersampling.

    Parameters
    ----------
    radius_px : float, > 0
        Radius of the circle of confusion in pixels.
    """
    if not (radius_px > 0 and math.isfinite(radius_px)):
        msg = f"radius_px must be a positive number of pixels, got {radius_px!r}"
        raise ValueError(msg)
    r = math.ceil(radius_px) + 1
    _check_side(2 * r + 1, "defocus radius_px", radius_px)
    n = (2 * r + 1) * oversample
    g = (np.arange(n) + 0.5) / oversample - (r + 0.5)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    hi = (yy**2 + xx**2 <= radius_px**2).astype(np.float64)
    k = hi.reshape(2 * r + 1, oversample, 2 * r + 1, oversample).mean(axis=(1, 3))
    if k.sum() == 0:  # radius far below a pixel: a delta
        k[r, r] = 1.0
    return _finish(k)


def motion_psf(length_px: float, angle_deg: float) -> np.ndarray:
    """Linear (uniform-velocity) motion blur PSF, anti-aliased.

    Parameters
    ----------
    length_px : float, >= 1
        Length of the streak in pixels (a 1-px streak is no blur).
    angle_deg : float
        Direction of motion, counter-clockwise from the +x axis (image rows grow downwards, so
        45 deg points up and to the right). Motion blur is symmetric: 0 and 180 deg are equal.
    """
    if not (length_px >= 1 and math.isfinite(length_px)):
        msg = f"length_px must be at least 1 pixel, got {length_px!r}"
        raise ValueError(msg)
    if not math.isfinite(angle_deg):
        msg = f"angle_deg must be a finite number of degrees, got {angle_deg!r}"
        raise ValueError(msg)
    size = (math.ceil(length_px) + 3) | 1
    _check_side(size, "motion length_px", length_px)
    n = max(2, math.ceil(length_px * 8))
    t = np.linspace(-(length_px - 1) / 2, (length_px - 1) / 2, n)
    a = math.radians(angle_deg)
    c = (size - 1) / 2
    ys, xs = c - t * math.sin(a), c + t * math.cos(a)
    k = np.zeros((size, size))
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (y0 + dy, x0 + dx), wy * wx)
    return _finish(k, trim=1e-3)


def path_psf(path: np.ndarray, extent_px: float) -> np.ndarray:
    """A blur kernel drawn by a camera path (camera shake, a curved motion).

    ``path`` holds the positions as complex numbers ``x + 1j * y`` (y up), equally spaced in
    time, in any unit: the path is centred on its bounding box and scaled so that it spans
    ``extent_px`` pixels, then splatted bilinearly (slow parts get brighter) into an odd
    square kernel, normalised and centred by :func:`normalize_psf`.
    """
    pos = np.asarray(path, complex).ravel().copy()
    if pos.size < 2 or not np.isfinite(pos).all():
        msg = "path must hold at least 2 finite complex positions x + 1j*y"
        raise ValueError(msg)
    if not (np.isfinite(extent_px) and extent_px >= 1):
        msg = f"extent_px must be a number >= 1, got {extent_px}"
        raise ValueError(msg)
    pos -= (pos.real.min() + pos.real.max()) / 2 + 1j * (pos.imag.min() + pos.imag.max()) / 2
    span = max(np.ptp(pos.real), np.ptp(pos.imag), 1e-6)
    pos *= (extent_px - 1) / span
    size = (int(math.ceil(extent_px)) + 4) | 1
    c = (size - 1) / 2
    k = np.zeros((size, size))
    ys, xs = c - pos.imag, c + pos.real
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), wy * wx)
    return normalize_psf(k)


def _check_side(side: int, what: str, value: float) -> None:
    if side > MAX_PSF_SIDE_PX:
        msg = f"{what}={value} gives a {side}-px kernel; at most {MAX_PSF_SIDE_PX} px is supported"
        raise ValueError(msg)
