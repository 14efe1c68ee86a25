"""Blind PSF (blur kernel) estimation for camera shake: coarse-to-fine, L0 gradient prior.

Given a blurred grayscale image, alternate between (1) a latent sharp image with an L0
gradient prior -- a piecewise-smooth image whose few strong edges explain the blur -- and
(2) the kernel that maps those edges to the observed ones (least squares on gradients, solved
by conjugate gradients in kernel space, then thresholded and kept non-negative). This runs on
an image pyramid from a 3-px kernel up to the requested size, as in the Pan et al. family
(Pan, Hu, Su & Yang, "Deblurring text images via L0-regularized intensity and gradient
prior", CVPR 2014; Pan et al., "Blind image deblurring using dark channel prior", CVPR 2016),
with Cho & Lee's adaptive selection of salient gradients.

Salient edges: at each scale the threshold is Cho & Lee's rule on the first latent image of
that scale (enough strong gradients in every direction for the kernel size), then decays by
1/1.1 per iteration. On a clean image (noise sigma below ``clean_noise_sigma``) it is lowered to
the same rule applied once on the coarsest blurred image (Pan et al.'s schedule) where that is
lower: more of the weaker edges, which only a clean image can trust, keep large kernels fed at
fine scales (Levin et al. set: error ratio mean 1.62 -> 1.32).
Noisy input (noise sigma above ``noisy_sigma``) stops one pyramid level short of full
resolution, where noise is weaker, and scales the kernel up.

The module owns kernel estimation only: choosing the region to estimate on and classifying
the blur live in :mod:`core.diagnose`; the final restoration is :func:`core.deblur.deblur`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import fft
from .borders import smooth_periodic_pad
from .noise import estimate_noise_sigma
from .progress import ProgressCallback, Reporter

__all__ = ["estimate_psf", "BlindParams"]


@dataclass
class BlindParams:
    """Tuning of the blind estimator (defaults follow the published L0 method)."""

    lambda_grad: float = 4e-3  # L0 gradient weight at the coarsest scale (decays 1/1.1 per iter)
    iterations: int = 5  # latent/kernel alternations per scale
    kernel_weight: float = 2.0  # Tikhonov weight on the kernel
    beta_max: float = 1e5
    kernel_threshold: float = 0.05  # final: fraction of the kernel's max below which it is zeroed
    component_min_mass: float = 0.1  # disconnected kernel pieces lighter than this are dropped
    speck_threshold: float = 3e-4  # kernel values below this are zeroed at every iteration
    iteration_threshold: float = 0.05  # fraction of the max zeroed at every iteration (noise)
    finest_iteration_threshold: float = 0.02  # at the finest scale of a clean image: keeps
    clean_noise_sigma: float = 0.003  # ... faint tails; noisier images keep iteration_threshold
    noisy_sigma: float = 0.006  # noise sigma (fraction of full scale) from which the finest
    # pyramid level is skipped (math.inf: never; the kernel's shape is then sharper, its
    # restoration on noisy photos worse)
    reference_pixels: float = 65536.0  # kernel_weight is scaled by pixels / this


def _psf2otf(k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    pad = np.zeros(shape, np.float64)
    pad[: k.shape[0], : k.shape[1]] = k
    pad = np.roll(pad, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))
    return np.fft.fft2(pad)


def _otf2psf(otf: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    full = np.real(np.fft.ifft2(otf))
    full = np.roll(full, (size[0] // 2, size[1] // 2), axis=(0, 1))
    return full[: size[0], : size[1]]


def _grad_x(x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.diff(x, axis=1), x[:, :1] - x[:, -1:]], axis=1)


def _grad_y(x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.diff(x, axis=0), x[:1] - x[-1:]], axis=0)


def _l0_restore(y: np.ndarray, k: np.ndarray, lam: float, beta_max: float) -> np.ndarray:
    """Latent image: min ||k*x - y||^2 + lam ||grad x||_0 by half-quadratic splitting.

    ``y`` is float32 with even sides (a padded canvas); spectra in OpenCV's packed layout.
    """
    shape = y.shape
    kf = fft.psf_spectrum(k.astype(np.float32), shape)
    den_k = fft.abs2(kf)
    wy, wx = fft.freq_grid(shape)
    den_d = fft.real_spectrum_to_ccs((4 - 2 * np.cos(wx) - 2 * np.cos(wy)).astype(np.float32))
    num1 = fft.mul(fft.dft(y), kf, conj_b=True)
    x = y.copy()
    beta = 2 * lam
    while beta < beta_max:
        h = _grad_x(x)
        v = _grad_y(x)
        small = (h * h + v * v) < lam / beta
        h[small] = 0
        v[small] = 0
        # adjoint of the forward differences
        n2 = np.concatenate([h[:, -1:] - h[:, :1], -np.diff(h, axis=1)], axis=1)
        n2 += np.concatenate([v[-1:] - v[:1], -np.diff(v, axis=0)], axis=0)
        num = fft.dft(n2)
        num *= np.float32(beta)
        num += num1
        num /= den_k + np.float32(beta) * den_d
        x = fft.idft(num)
        beta *= 2
    return x


def _salient_gradients(latent: np.ndarray, psf_size: int, threshold: float | None):
    """Cho & Lee's selection: keep only the strongest gradients, enough in every direction."""
    px = latent[:-1, 1:] - latent[:-1, :-1]
    py = latent[1:, :-1] - latent[:-1, :-1]
    pm = px * px + py * py
    if threshold is None:
        ang = np.arctan2(py, px) % np.pi
        need = max(psf_size * 20, 10)
        bins = np.floor(ang / (np.pi / 4)).astype(int).clip(0, 3)
        threshold = 0.0
        per_dir = []
        for b in range(4):
            vals = np.sort(pm[bins == b])[::-1]
            per_dir.append(
                vals[need - 1] if vals.size >= need else (vals[-1] if vals.size else 0.0)
            )
        threshold = float(min(per_dir))
    m = pm < threshold
    while m.all() and threshold > 1e-12:
        threshold *= 0.95
        m = pm < threshold
    px = np.where(m, 0.0, px)
    py = np.where(m, 0.0, py)
    return px, py, threshold


def _estimate_kernel(bx, by, lx, ly, size: int, weight: float, k0: np.ndarray) -> np.ndarray:
    """min ||lx*k - bx||^2 + ||ly*k - by||^2 + weight ||k||^2 by conjugate gradients.

    The normal operator correlates the kernel with the gradients' (circular) autocorrelation,
    of which a kernel only ever meets the central ``2 size - 1`` square: it is cut out once and
    applied by FFTs of about ``3 size`` a side instead of the image's (the same sums, 5-10x
    faster for a 35-69 px kernel on a 512-px crop).
    """
    shape = bx.shape
    lxf, lyf = np.fft.fft2(lx), np.fft.fft2(ly)
    b = _otf2psf(np.conj(lxf) * np.fft.fft2(bx) + np.conj(lyf) * np.fft.fft2(by), (size, size))
    m = np.abs(lxf) ** 2 + np.abs(lyf) ** 2
    # autocorrelation at offsets -(size-1)..size-1 (index offset + size - 1)
    auto = _otf2psf(m, (2 * size - 1, 2 * size - 1)) if 2 * size - 1 <= min(shape) else None
    if auto is None:  # the kernel is nearly the image's size: the plain operator

        def apply(k):
            return _otf2psf(m * _psf2otf(k, shape), (size, size)) + weight * k

    else:
        side = fft.fast_shape(3 * size - 2, 3 * size - 2)
        auto_f = np.fft.rfft2(auto, side)

        def apply(k):
            full = np.fft.irfft2(np.fft.rfft2(k, side) * auto_f, side)
            return full[size - 1 : 2 * size - 1, size - 1 : 2 * size - 1] + weight * k

    k = k0.copy()
    r = b - apply(k)
    p = r.copy()
    rs = float((r * r).sum())
    for _ in range(20):
        ap = apply(p)
        alpha = rs / max(float((p * ap).sum()), 1e-30)
        k += alpha * p
        r -= alpha * ap
        rs_new = float((r * r).sum())
        if rs_new < 1e-10:
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return k


def _prune(k: np.ndarray, params: BlindParams, *, finest: bool = False) -> np.ndarray:
    """Drop disconnected pieces lighter than ``component_min_mass``, negatives and specks."""
    k = np.clip(k, 0, None)
    frac = params.finest_iteration_threshold if finest else params.iteration_threshold
    if frac > 0 and k.max() > 0:
        k[k < frac * k.max()] = 0
    if k.sum() > 0:
        n, labels = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            sel = labels == i
            if k[sel].sum() < params.component_min_mass:
                k[sel] = 0
    k[k < params.speck_threshold] = 0
    s = k.sum()
    if s <= 0:
        k = np.zeros_like(k)
        k[k.shape[0] // 2, k.shape[1] // 2] = 1
        return k
    return k / s


def _centre(k: np.ndarray) -> np.ndarray:
    """Shift the kernel (integer px) so its centroid sits on the centre pixel."""
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    cy, cx = (k * yy).sum(), (k * xx).sum()
    dy = int(round((k.shape[0] - 1) / 2 - cy))
    dx = int(round((k.shape[1] - 1) / 2 - cx))
    if dy == 0 and dx == 0:
        return k
    return np.roll(k, (dy, dx), axis=(0, 1))


def _resize_kernel(k: np.ndarray, factor: float, size: int) -> np.ndarray:
    """Scale the kernel's content by ``factor`` (as the image), then crop/pad to ``size``."""
    n = max(3, int(round(k.shape[0] * factor)))
    up = cv2.resize(k, (n, n), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size, size))
    if n >= size:
        o = (n - size) // 2
        out[:] = up[o : o + size, o : o + size]
    else:
        o = (size - n) // 2
        out[o : o + n, o : o + n] = up
    out = np.clip(out, 0, None)
    return out / max(out.sum(), 1e-12)


def _pad_for_fft(y: np.ndarray, size: int) -> np.ndarray:
    shape = fft.fast_shape(y.shape[0] + size, y.shape[1] + size)
    return smooth_periodic_pad(y.astype(np.float32)[:, :, None], shape)[:, :, 0]


def estimate_psf(
    gray: np.ndarray,
    kernel_size_px: int = 31,
    *,
    params: BlindParams | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Estimate a camera-shake kernel from a blurred grayscale image.

    Parameters
    ----------
    gray : ndarray, float, (H, W)
        Blurred image in [0, 1] (a well-textured crop of a few hundred px is enough).
    kernel_size_px : int, odd, default 31
        Largest kernel side considered; choose above the blur extent.
    params : BlindParams, optional
    progress : callable, optional

    Returns
    -------
    ndarray, float32, (kernel_size_px, kernel_size_px)
        Non-negative, sums to 1, centroid on the centre pixel (``blurred = convolve(x, k)``).
    """
    p = params or BlindParams()
    y = np.asarray(gray, np.float64)
    if y.ndim != 2 or min(y.shape) < 16:
        msg = f"blind estimation needs a 2-D image of at least 16x16 px, got shape {y.shape}"
        raise ValueError(msg)
    size = int(kernel_size_px) | 1
    if size < 3 or size > min(y.shape) // 2:
        msg = (
            f"kernel_size_px must be an odd size from 3 to half the image side "
            f"({min(y.shape) // 2} px here), got {kernel_size_px}"
        )
        raise ValueError(msg)
    rep = Reporter(progress)
    ratio = math.sqrt(0.5)
    n_scales = max(int(math.floor(math.log(5 / size) / math.log(ratio))), 0) + 1
    sizes = [int(math.ceil(size * ratio**s)) | 1 for s in range(n_scales)]
    lam = p.lambda_grad
    noise_sigma = estimate_noise_sigma(y.astype(np.float32))
    clean = noise_sigma < p.clean_noise_sigma
    last = 1 if noise_sigma >= p.noisy_sigma and n_scales > 1 else 0
    k = None
    threshold0 = None
    for s in range(n_scales - 1, last - 1, -1):
        ks = sizes[s]
        if k is None:
            k = np.zeros((ks, ks))
            c = (ks - 1) // 2
            k[c, c - 1 : c + 1] = 0.5
        else:
            k = _resize_kernel(k, 1 / ratio, ks)
        scale = ratio**s
        ys = cv2.resize(y, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if s else y
        yp = _pad_for_fft(ys, ks)
        h, w = ys.shape
        # kernel fit on the real pixels only: the padding is not a blurred anything
        bx, by = ys[:-1, 1:] - ys[:-1, :-1], ys[1:, :-1] - ys[:-1, :-1]
        if threshold0 is None:  # salient-edge threshold of the coarsest blurred image
            _, _, threshold0 = _salient_gradients(ys, ks, None)
        threshold = None
        for it in range(p.iterations):
            rep((n_scales - 1 - s + it / p.iterations) / n_scales, "estimating the blur kernel")
            latent = _l0_restore(yp, k, lam, p.beta_max)[:h, :w].astype(np.float64)
            if threshold is None:  # this scale's own rule; on a clean image never stricter
                _, _, threshold = _salient_gradients(latent, ks, None)  # than the coarsest's
                if clean:
                    threshold = min(threshold, threshold0)
            lx, ly, threshold = _salient_gradients(latent, ks, threshold)
            threshold /= 1.1
            weight = p.kernel_weight * max(1.0, bx.size / p.reference_pixels)
            k = _prune(_estimate_kernel(bx, by, lx, ly, ks, weight, k), p, finest=s == 0 and clean)
            lam = max(lam / 1.1, 1e-4)
        k = _centre(k)
    if last:  # estimated at a coarser scale: bring the kernel to full resolution
        k = _centre(_resize_kernel(k, 1 / ratio**last, size))
    k = np.where(k < p.kernel_threshold * k.max(), 0.0, k)
    k = _centre(k / k.sum())
    rep(1.0, "kernel estimated")
    return k.astype(np.float32)
