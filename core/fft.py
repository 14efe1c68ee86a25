"""Real FFTs through OpenCV's packed (CCS) format: 3x faster than numpy here, no complex arrays.

``cv2.dft`` of a real float32 (H, W) array returns a real (H, W) array holding the Hermitian half
of the spectrum in "CCS" packing; ``cv2.mulSpectrums`` multiplies two such spectra and
``cv2.idft`` returns to real pixels. Solvers keep every spectrum in this layout: products with
a PSF's spectrum go through ``mul``, divisions by a real non-negative denominator (|K|^2 + ...)
are elementwise after :func:`real_spectrum_to_ccs` has written that denominator into the same
layout (each value at both the real and the imaginary slot of its frequency).

On a 3000x4000 float32 image one forward transform took 0.03 s (numpy's rfft2: 0.11 s).
Sizes are kept even on both axes (``fast_shape``), which the packing below assumes.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "fast_shape",
    "dft",
    "idft",
    "mul",
    "abs2",
    "conj",
    "psf_spectrum",
    "real_spectrum_to_ccs",
    "freq_grid",
]


def fast_shape(h: int, w: int) -> tuple[int, int]:
    """Smallest even sizes >= (h, w) that OpenCV transforms fast (factors 2, 3, 5)."""

    def even_fast(n: int) -> int:
        m = cv2.getOptimalDFTSize(max(int(n), 2))
        while m % 2:
            m = cv2.getOptimalDFTSize(m + 1)
        return m

    return even_fast(h), even_fast(w)


def dft(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Forward real DFT of a float32 (H, W) array, CCS-packed (float32 (H, W)).

    ``out`` (float32, same shape) is filled instead of allocating, as in all helpers here.
    """
    return cv2.dft(np.ascontiguousarray(x, np.float32), dst=out)


def idft(spec: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`dft` (scaled), real float32 (H, W)."""
    return cv2.idft(spec, dst=out, flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)


def mul(
    a: np.ndarray, b: np.ndarray, *, conj_b: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """Complex product of two CCS spectra (``a * conj(b)`` with ``conj_b``)."""
    return cv2.mulSpectrums(a, b, 0, c=out, conjB=conj_b)


def conj(spec: np.ndarray) -> np.ndarray:
    """Complex conjugate of a CCS spectrum (imaginary slots negated), as a new array."""
    out = spec.copy()
    h, w = out.shape
    out[:, 2 : w - 1 : 2] *= -1
    out[2 : h - 1 : 2, 0] *= -1
    out[2 : h - 1 : 2, w - 1] *= -1
    return out


def abs2(spec: np.ndarray) -> np.ndarray:
    """|spectrum|^2 laid out for elementwise division (see :func:`real_spectrum_to_ccs`)."""
    p = cv2.mulSpectrums(spec, spec, 0, conjB=True)  # real parts hold |.|^2, imaginary 0
    h, w = p.shape
    p[:, 2 : w - 1 : 2] = p[:, 1 : w - 1 : 2]
    p[2 : h - 1 : 2, 0] = p[1 : h - 1 : 2, 0]
    p[2 : h - 1 : 2, w - 1] = p[1 : h - 1 : 2, w - 1]
    return p


def psf_spectrum(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """CCS spectrum of a centred kernel placed on a canvas of ``shape`` (circular centring)."""
    kh, kw = psf.shape
    pad = np.zeros(shape, np.float32)
    pad[:kh, :kw] = psf
    pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return dft(pad)


def freq_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Angular frequencies (wy (H, 1), wx (1, W/2+1)) of the half spectrum, radians/pixel."""
    h, w = shape
    wy = 2 * np.pi * np.fft.fftfreq(h)[:, None]
    wx = 2 * np.pi * np.arange(w // 2 + 1)[None, :] / w
    return wy, wx


def real_spectrum_to_ccs(half: np.ndarray) -> np.ndarray:
    """Lay out a real, even spectrum given on the half grid (H, W/2+1) in CCS order (H, W).

    Multiplying a CCS spectrum elementwise by the result scales every frequency by that
    real value, so ``dft(x) / real_spectrum_to_ccs(den)`` divides by ``den``.
    """
    h, wh = half.shape
    w = 2 * (wh - 1)
    out = np.empty((h, w), np.float32)
    # columns 1..W/2-1 hold full complex columns: re at 2v-1, im at 2v
    mid = half[:, 1 : wh - 1]
    out[:, 1 : w - 1 : 2] = mid
    out[:, 2 : w - 1 : 2] = mid
    # columns 0 and W-1 hold the packed transforms of the real columns v=0 and v=W/2
    for col, v in ((0, 0), (w - 1, wh - 1)):
        c = half[:, v]
        out[0, col] = c[0]
        out[1 : h - 1 : 2, col] = c[1 : h // 2]
        out[2 : h - 1 : 2, col] = c[1 : h // 2]
        out[h - 1, col] = c[h // 2]
    return out
