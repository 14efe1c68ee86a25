"""Border handling for FFT deconvolution: smooth periodic extension.

FFT methods treat an image as periodic, so the jump between the left and right (top and bottom)
edges rings through the whole result. Following Liu & Jia (2008), we extend the image to a
larger canvas whose extra strip is *harmonic* (solves Laplace's equation) between the image's
opposite edges, so the canvas is smooth and periodic; deconvolve it and crop. On real blur with a
true image edge this was worth up to 7 dB over no handling (see ../shared/eval/README.md).

Fast exact strip solve
----------------------
The strip is filled in two passes, each an exact discrete Laplace solve on a thin rectangle
whose long axis is periodic: (1) rows of the image, columns W..Wp-1, between column W-1 and
column 0 (the long axis mirrored, i.e. Neumann at the strip ends); (2) full-width rows H..Hp-1
between row H-1 and row 0 (the long axis now periodic). Along the long axis we use an FFT; along
the short axis the discrete solution is closed form,
``u_j = (L sinh((n+1-j)t) + R sinh(j t)) / sinh((n+1) t)`` with ``cosh t = 1 + lambda/2``,
so a 12 MP image is padded in tens of milliseconds (no sparse factorisation).

The module owns padding geometry (``padded_shape``) and the extension; it does not deconvolve.
"""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_periodic_pad", "padded_shape", "next_fast_len"]


def next_fast_len(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    n = max(int(n), 1)
    best = 2 ** int(np.ceil(np.log2(n)))
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            f = f35
            while f < n:
                f *= 2
            best = min(best, f)
            f35 *= 3
        f5 *= 5
    return best


def padded_shape(shape: tuple[int, int], psf_shape: tuple[int, int]) -> tuple[int, int]:
    """Canvas size for an image of ``shape`` deconvolved with a kernel of ``psf_shape``.

    At least two kernel widths (and 8 px) of extension on each axis, rounded up to even fast
    FFT lengths.
    """
    from .fft import fast_shape

    h, w = shape
    ph = max(8, 2 * psf_shape[0])
    pw = max(8, 2 * psf_shape[1])
    return fast_shape(h + ph, w + pw)


def _harmonic_strip(left: np.ndarray, right: np.ndarray, width: int, periodic: bool) -> np.ndarray:
    """Harmonic fill between two boundary lines.

    ``left``/``right`` are (L, C) boundary values along a long axis of length L; returns the
    (L, width, C) solution of the 5-point Laplace equation with those Dirichlet values at short
    coordinates 0 and width+1. The long axis is periodic (``periodic=True``) or reflecting.
    """
    n_long = left.shape[0]
    if periodic:
        lf, rf = np.fft.rfft(left, axis=0), np.fft.rfft(right, axis=0)
        omega = 2 * np.pi * np.arange(lf.shape[0]) / n_long
    else:  # mirror to length 2L: reflecting (Neumann) ends, still an FFT
        ext = n_long * 2
        lf = np.fft.rfft(np.concatenate([left, left[::-1]]), axis=0)
        rf = np.fft.rfft(np.concatenate([right, right[::-1]]), axis=0)
        omega = 2 * np.pi * np.arange(lf.shape[0]) / ext
    lam = 2.0 - 2.0 * np.cos(omega)  # eigenvalue of the long-axis second difference
    t = np.arccosh(1.0 + lam / 2.0)[:, None]  # (F, 1)
    j = np.arange(1, width + 1, dtype=np.float64)[None, :]  # (1, n)
    big = width + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        # sinh(a t) / sinh(b t), evaluated stably as exp((a-b) t) (1-e^{-2at}) / (1-e^{-2bt})
        den = -np.expm1(-2 * big * t)
        w_left = np.exp(-j * t) * -np.expm1(-2 * (big - j) * t) / den
        w_right = np.exp(-(big - j) * t) * -np.expm1(-2 * j * t) / den
    # omega = 0: t = 0, the solution is the straight line between the two sides
    w_left[0] = 1 - j[0] / big
    w_right[0] = j[0] / big
    uf = w_left[:, :, None] * lf[:, None, :] + w_right[:, :, None] * rf[:, None, :]
    if periodic:
        u = np.fft.irfft(uf, n=n_long, axis=0)
    else:
        u = np.fft.irfft(uf, n=2 * n_long, axis=0)[:n_long]
    return u


def smooth_periodic_pad(
    image: np.ndarray, shape: tuple[int, int], *, out: np.ndarray | None = None
) -> np.ndarray:
    """Extend ``image`` (H, W, C) to ``shape`` (Hp, Wp) at the bottom/right, smooth and periodic.

    Parameters
    ----------
    image : ndarray, float32, (H, W, C)
    shape : (Hp, Wp), each at least the image's size
    out : ndarray, float32, (Hp, Wp, C), optional
        Buffer to fill (saves an allocation when padding channel after channel).

    Returns
    -------
    ndarray, float32, (Hp, Wp, C); ``out[:H, :W]`` equals ``image``. Crop the deconvolved canvas
    with ``[:H, :W]``.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((20, 30, 1)).astype(np.float32)
    >>> p = smooth_periodic_pad(x, (32, 40)); p.shape, bool(np.array_equal(p[:20, :30], x))
    ((32, 40, 1), True)
    """
    h, w, c = image.shape
    hp, wp = shape
    if hp < h or wp < w:
        msg = f"padded shape {shape} is smaller than the image ({h}, {w})"
        raise ValueError(msg)
    if out is None:
        out = np.empty((hp, wp, c), np.float32)
    elif out.shape != (hp, wp, c) or out.dtype != np.float32:
        msg = f"out must be float32 of shape {(hp, wp, c)}, got {out.dtype} {out.shape}"
        raise ValueError(msg)
    out[:h, :w] = image
    if wp > w:
        out[:h, w:] = _harmonic_strip(
            image[:, -1].astype(np.float64), image[:, 0].astype(np.float64), wp - w, periodic=False
        )
    if hp > h:
        last, first = out[h - 1].astype(np.float64), out[0].astype(np.float64)
        strip = _harmonic_strip(last, first, hp - h, periodic=True)  # (Wp, n, C)
        out[h:] = strip.transpose(1, 0, 2)
    return out
