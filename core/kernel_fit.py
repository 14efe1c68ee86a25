"""Whether a blur kernel explains a photo: the check a deconvolution can make on itself.

Deconvolved with the right kernel, a photo is explained: blurred again with that kernel, the
result matches the photo to within its noise. When the blur is not one kernel (a subject that
moved while the background did not, a camera that rotated, a depth-varying defocus) or the
kernel is a wrong estimate, no sharp image blurred by that kernel gives the photo. The
deconvolution then adds ringing where the kernel's inverse amplifies what it cannot explain,
and, where its prior holds the ringing back, leaves part of the blur unexplained.
:func:`kernel_misfit` measures that part: the fraction of what the kernel does to the photo
that the restored photo, blurred again, fails to reproduce.

On the analysed region of the 50 real blurred photos (Lai et al., Köhler, GoPro) whose classical
result passed the cross-check's first tests, the four that ring visibly (dinner, istanbul,
butchershop, flower: moving subjects, rotation) measure 0.51-0.85, the others 0.04-0.51; a
correct kernel on synthetic blur with 1 % noise 0.05-0.5. The misfit alone does not separate
them; ``core.crosscheck`` weighs it by how much the result changed the photo.

The module owns that measurement only: pure numpy/OpenCV, no decision, no host.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import gray_linear
from .dtype import split_alpha, to_float32
from .noise import estimate_noise_sigma
from .psf import normalize_psf

__all__ = ["SATURATED", "kernel_misfit"]

# Pixels at or above this (fraction of full scale, any colour channel) are clipped highlights:
# the blur model does not hold there, so they and everything within a kernel's reach are left
# out of the measurement
SATURATED = 0.98
# Of the tiles, those where the kernel changes the photo most (this top share) are measured:
# in flat tiles there is nothing to explain and the ratio is noise over noise
_MEASURED_SHARE = 0.5
# The least-blurred quarter of tiles gives the residual that noise alone leaves (the
# deconvolution does not reproduce noise); it is taken out of the measured tiles' residuals
_NOISE_SHARE = 0.25
# ...at most this many times the blurred photo's noise (linear light, Immerkaer's estimate over
# the whole photo: the noise of a tile of flat colour varies with its level in linear light)
_NOISE_CAP = 2.0


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(x, -1, np.ascontiguousarray(k[::-1, ::-1]), borderType=cv2.BORDER_REFLECT)


def kernel_misfit(
    blurred: np.ndarray,
    restored: np.ndarray,
    psf: np.ndarray,
    *,
    linear_input: bool = False,
    tile_px: int = 64,
) -> float:
    """Fraction of the blur that ``restored``, blurred again with ``psf``, leaves unexplained.

    Parameters
    ----------
    blurred : ndarray
        The photo (H, W) or (H, W, C), any engine dtype; alpha is ignored.
    restored : ndarray
        Its deconvolution with ``psf``, same shape.
    psf : ndarray
        The kernel (normalised and centred here).
    linear_input : bool, default False
        True when the data is linear light (else sRGB-encoded, decoded here: blur happens in
        linear light).
    tile_px : int, default 64
        Side of the tiles (half-overlapping) the photo is measured in.

    Returns
    -------
    float
        The median over the tiles where the kernel changes the photo most (top half) of
        ``rms(psf * restored - blurred) / rms(psf * blurred - blurred)``, the residual first
        cleared of the noise level measured in the least-blurred quarter of tiles. About 0.1-0.4
        for a kernel that explains the photo, 0.5 and more when it does not, and NaN when the
        photo has fewer than four measurable tiles (too small for the kernel, or clipped).

    Notes
    -----
    Measured on linear-light luminance, away from the borders (one kernel radius) and from
    clipped highlights (:data:`SATURATED`, widened by the kernel's size).

    Examples
    --------
    >>> import numpy as np
    >>> from core.psf import motion_psf
    >>> flat = np.full((64, 64), 0.5, np.float32)
    >>> bool(np.isnan(kernel_misfit(flat, flat, motion_psf(9, 0))))
    True
    """
    if blurred.shape != restored.shape:
        msg = (
            "kernel_misfit compares a photo with its deconvolution: they must have the same "
            f"shape, got {blurred.shape} and {restored.shape}"
        )
        raise ValueError(msg)
    if tile_px < 8:
        msg = f"tile_px must be at least 8, got {tile_px}"
        raise ValueError(msg)
    k = normalize_psf(psf)
    colour, _ = split_alpha(to_float32(blurred))
    b = gray_linear(blurred, encoded=not linear_input)
    r = gray_linear(restored, encoded=not linear_input)
    residual = _conv(r, k) - b
    effect = _conv(b, k) - b

    reach = max(k.shape)
    clipped = colour.max(axis=2) >= SATURATED
    usable = cv2.dilate(clipped.astype(np.uint8), np.ones((reach, reach), np.uint8)) == 0
    m = reach // 2 + 1
    usable[:m] = usable[-m:] = False
    usable[:, :m] = usable[:, -m:] = False

    h, w = b.shape
    step = tile_px // 2
    res_rms, eff_rms = [], []
    for y in range(0, h - tile_px + 1, step):
        for x in range(0, w - tile_px + 1, step):
            tile = np.s_[y : y + tile_px, x : x + tile_px]
            ok = usable[tile]
            if ok.mean() < 0.5:
                continue
            res_rms.append(float(np.sqrt(np.mean(residual[tile][ok] ** 2))))
            eff_rms.append(float(np.sqrt(np.mean(effect[tile][ok] ** 2))))
    if len(eff_rms) < 4:
        return float("nan")
    res = np.array(res_rms)
    eff = np.array(eff_rms)
    # ...but never more than the photo's own noise allows: a deconvolution that misfits
    # everywhere (flat tiles too) must not have its misfit taken for noise
    noise_cap = _NOISE_CAP * estimate_noise_sigma(b)
    noise = min(float(np.median(res[eff <= np.quantile(eff, _NOISE_SHARE)])), noise_cap)
    measured = eff >= np.quantile(eff, 1.0 - _MEASURED_SHARE)
    if not np.any(eff[measured] > 0):
        return float("nan")
    unexplained = np.sqrt(np.maximum(res[measured] ** 2 - noise**2, 0.0))
    return float(np.median(unexplained / np.maximum(eff[measured], 1e-12)))
