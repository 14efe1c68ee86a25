"""The deblur operation as users see it: any pixel data in, same kind of data out.

``deblur(image, psf, method=..., strength=...)`` wraps the solvers in :mod:`core.deconvolve`
with everything a photograph needs:

* storage dtypes (uint8, uint16, float16/32/64) in and out, shape kept ((H, W) stays 2-D);
* alpha carried aside and returned bit-identical; colour filtered premultiplied, so transparent
  pixels do not bleed, and fully transparent pixels keep their colour values;
* linear light: sRGB-encoded data is decoded before and encoded after (``linear_input=True`` for
  data that is already linear);
* colour: ``channels="rgb"`` (default) deconvolves every channel; ``"luminance"`` deconvolves
  the luminance and adds the same detail to R, G and B (no colour fringes, 3x faster);
* overlapping tiles beyond ``tile_px`` so memory stays bounded on large images;
* clipped highlights (``method="sparse"`` and ``"rl"``): a pixel at the top code of the stored
  data (street lights, windows, specular glints) says only that the blurred light was at least
  that bright. The sparse method leaves it out of the data term instead of reading it as a
  blurred value it is not; read as data, a clipped light's cut-off streak rings along the
  kernel's path across its neighbourhood (tests/conftest.py's night scene, a dozen lights, the
  true kernel, seeds 0-3: 15.4-15.9 dB read as data, 17.1-17.7 left out; the blurred photo
  17.3-17.7). Richardson-Lucy reads it as "at least this bright": its update may only raise
  the estimate there (same scenes, 100 iterations: 17.3-17.6 dB -> 17.8-18.2). Float data
  above 1 (HDR) is not clipped and is read as is.

No file access and no host code here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .color import REC709_LUMA, decode_to_linear, encode_from_linear, srgb_to_linear
from .deconvolve import (
    METHODS,
    deconvolve_richardson_lucy,
    deconvolve_sparse,
    deconvolve_wiener,
)
from .dtype import as_hwc, check_image, split_alpha, to_float32
from .noise import measure_noise_sigma
from .progress import ProgressCallback, Reporter
from .psf import normalize_psf
from .tiling import process_tiled

__all__ = ["deblur", "DEFAULT_TILE_PX"]

DEFAULT_TILE_PX = 2048
_SOLVERS = {
    "wiener": deconvolve_wiener,
    "sparse": deconvolve_sparse,
    "rl": deconvolve_richardson_lucy,
}
_ALPHA_EPS = np.float32(1.0 / 65535.0)
_STRIP_PX = 1 << 20  # pixels per output strip


def deblur(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    method: Literal["wiener", "sparse", "rl"] = "sparse",
    strength: float = 50.0,
    linear_input: bool = False,
    channels: Literal["luminance", "rgb"] = "rgb",
    clip: bool = True,
    tile_px: int = DEFAULT_TILE_PX,
    kernel_error: float = 0.0,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Remove a known blur from a photo.

    Parameters
    ----------
    image : ndarray, uint8 | uint16 | float16 | float32 | float64, (H, W) or (H, W, C), C 1..4
        Gray, gray+alpha, RGB or RGBA; alpha last. Float data is taken as [0, 1] nominal.
    psf : ndarray, 2-D
        The blur kernel (``blurred = convolve(sharp, psf)``); see :mod:`core.psf`.
    method : {"sparse", "wiener", "rl"}, default "sparse"
        Sparse prior (best quality), Wiener/Tikhonov (fastest), damped Richardson-Lucy
        (low-light / Poisson noise).
    strength : float, 0..100, default 50
        0 returns the input, 50 the automatically tuned result, 100 the most aggressive.
    linear_input : bool, default False
        True when the data is already linear light (no sRGB decoding).
    channels : {"rgb", "luminance"}, default "rgb"
        For RGB data: deconvolve each channel (best fidelity: colour edges are blurred too), or
        luminance only, adding the same detail to R, G and B (3x faster, no colour fringes, but
        colour edges stay soft).
    clip : bool, default True
        Clip to the nominal range; False keeps HDR float values above 1.
    tile_px : int, default 2048
        Tile side beyond which the image is processed in overlapping tiles.
    kernel_error : float, default 0
        ``method="sparse"`` only: the kernel is an estimate, assumed to leave this rms error
        (fraction of full scale) in the photo; see :func:`core.deconvolve.deconvolve_sparse`.
        Auto passes :data:`core.crosscheck.BLIND_KERNEL_ERROR`.
    progress : callable, optional
        ``progress(fraction, stage)``; return False to cancel (raises ``OperationCancelled``).

    Returns
    -------
    ndarray of the input's dtype and shape. Alpha is bit-identical to the input's.

    Examples
    --------
    >>> from core.psf import gaussian_psf
    >>> img = np.full((16, 16, 4), 128, np.uint8)
    >>> out = deblur(img, gaussian_psf(1.0))
    >>> out.dtype, out.shape, bool((out[..., 3] == img[..., 3]).all())
    (dtype('uint8'), (16, 16, 4), True)
    """
    check_image(image)
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}, got {method!r}"
        raise ValueError(msg)
    if channels not in ("luminance", "rgb"):
        msg = f"channels must be 'luminance' or 'rgb', got {channels!r}"
        raise ValueError(msg)
    if not (0 <= strength <= 100):
        msg = f"strength must be in 0..100, got {strength}"
        raise ValueError(msg)
    if kernel_error and method != "sparse":
        msg = f"kernel_error is a setting of the sparse method, not of {method!r}; leave it at 0"
        raise ValueError(msg)
    k = normalize_psf(psf)
    if strength == 0:
        return image.copy()
    rep = Reporter(progress)
    rep(0.0, "preparing")
    orig = as_hwc(image)
    colour_orig, alpha_orig = split_alpha(orig)
    lin = decode_to_linear(colour_orig, encoded=not linear_input)
    alpha = None if alpha_orig is None else to_float32(alpha_orig)
    if alpha is not None:
        lin *= alpha  # premultiplied: transparent pixels carry no weight into their neighbours

    luminance = channels == "luminance" and lin.shape[2] == 3
    src = (lin @ REC709_LUMA)[:, :, None] if luminance else lin
    # measure the noise once on the whole image, so every tile is regularised alike
    noise = measure_noise_sigma(src)
    solver = _SOLVERS[method]
    margin = max(64, 4 * max(k.shape))

    extra: dict[str, float] = {"kernel_error": kernel_error} if kernel_error else {}
    if method in ("sparse", "rl"):
        level = _clipping_level(colour_orig, linear_input)
        if level is not None:
            extra["saturation"] = level

    def run(tile: np.ndarray, r: Reporter) -> np.ndarray:
        return solver(
            tile, k, strength=strength, noise_sigma=noise, clip=False, progress=r, **extra
        )

    tile = _tile_side(tile_px, lin.shape[2])
    res = process_tiled(src, run, tile_px=tile, margin_px=margin, progress=rep.sub(0.02, 0.97))
    if luminance:
        res -= src  # the detail deconvolution added, given to R, G and B alike
        lin += res
        res = lin
    del src, lin
    result = _finish(res, orig, alpha, linear_input=linear_input, clip=clip)
    rep(1.0, "done")
    return result.reshape(image.shape)


def _clipping_level(colour: np.ndarray, linear_input: bool) -> float | None:
    """The linear value from which a pixel of ``colour`` (the stored data) is clipped: the top
    code of integer data (half a step below it), 1.0 for float data within [0, 1]; None for
    float data above 1 (HDR: not clipped at full scale). Pixels merely near full scale are data:
    what noise lifts to 0.98 is measured, not cut off (the speed benchmark's scene has 0.26 %
    of its pixels at 250 or above and 15 of 12 million at 255)."""
    if colour.dtype.kind in "ui":
        top = float(np.iinfo(colour.dtype).max)
        level = np.float32((top - 0.5) / top)
    elif float(np.nanmax(colour, initial=0.0)) > 1.0:
        return None
    else:
        level = np.float32(1.0 - 1e-6)
    return float(level if linear_input else srgb_to_linear(level))


def _tile_side(tile_px: int, channels: int) -> int:
    """Tile core side: ``tile_px`` for RGB, smaller for fewer channels, so one tile's solver
    working set (~12 one-channel float32 canvases) stays within about twice the image's size."""
    return max(256, int(tile_px * min(1.0, (channels / 3) ** 0.5)))


def _finish(
    res: np.ndarray, orig: np.ndarray, alpha: np.ndarray | None, *, linear_input: bool, clip: bool
) -> np.ndarray:
    """Premultiplied linear result -> the input's dtype, in row strips to bound memory."""
    h, w, _ = res.shape
    colour_orig, alpha_orig = split_alpha(orig)
    c = colour_orig.shape[2]
    out = np.empty((h, w, orig.shape[2]), orig.dtype)
    step = max(1, _STRIP_PX // max(w, 1))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        x = res[y0:y1]
        if alpha is not None:
            a = alpha[y0:y1]
            if clip:
                np.clip(x, 0.0, a, out=x)
            x = np.where(
                a > 0,
                x / np.maximum(a, _ALPHA_EPS),
                decode_to_linear(colour_orig[y0:y1], encoded=not linear_input),
            )
        elif clip:
            np.clip(x, 0.0, 1.0, out=x)
        strip = encode_from_linear(x, orig.dtype, encoded=not linear_input)
        if clip and strip.dtype.kind == "f":
            np.clip(strip, 0.0, 1.0, out=strip)
        out[y0:y1, :, :c] = strip
    if alpha_orig is not None:
        out[:, :, c:] = alpha_orig
    return out
