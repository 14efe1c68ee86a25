"""``ai_deblur``: the learned first pass, with the pixel contract of :func:`core.deblur.deblur`.

The network sees sRGB-encoded RGB in [0, 1] (the way photos are stored and the way it was
trained); what is applied to the photo is its *residual* (output - input), added to the
original data, so 16-bit and float precision are kept and ``strength`` scales the change.

Tiling: tile cores partition the image; each tile carries ``receptive_px`` of real context plus
half the blend band on every side, starts on the network's stride grid (so a tile computes
exactly what the whole image would, up to float rounding) and is reflect-padded to the
network's multiple at the bottom/right. Neighbouring tiles are blended with raised-cosine
weights that sum to 1, so no weight buffer is needed. Rows are finished as soon as the tiles
below cannot touch them any more: besides the input and the output arrays, memory holds one
band of residual (image width x (tile + blend) x channels x 4 bytes) and one network tile.

Large blur: the shipped network was trained on blur up to about 21 px and sees 64 px around a
pixel; a 40-70 px shake it barely touches. Told the blur's extent (``blur_px``, from the
diagnosis), :func:`ai_deblur` first runs it on the photo scaled down until the blur measures
:data:`COARSE_BLUR_PX`, adds that pass's change scaled back up (a coarse-to-fine cascade, in
strips), and then runs it at full resolution on the result.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..color import linear_to_srgb, srgb_to_linear
from ..dtype import as_hwc, check_image, from_float32, split_alpha, to_float32
from ..progress import ProgressCallback, Reporter
from ..tiling import tile_grid
from .guard import GuardSettings, border_weights, guard_weights
from .runtime import Restorer, load_restorer

__all__ = ["ai_deblur", "COARSE_BLUR_PX", "COARSE_FROM_PX", "DEFAULT_AI_TILE_PX", "strength_gain"]

DEFAULT_AI_TILE_PX = 1024
# The blur extent (px) the coarse pass scales a large blur down to: inside the range the
# network was trained on. Synthetic 36-60 px blur (benchmarks/kernel_fit.py --large, seed 4300,
# 32 cases, the diagnosed kernel's extent): the learned pass 17.74 dB, with a coarse pass to
# 10 px 18.20, to 15 px 18.41 (blurred 17.45)
COARSE_BLUR_PX = 15.0
# ...taken for blur of at least this extent (px), past the first 35 px kernel frame: on the
# held-out 5-17 px blur (seed 2028) kernels measure up to 21 px (28 and 32 once each), and a
# coarse pass there lost 0.03-0.7 dB; from 36 px on, Auto's blends on 36-60 px blur gained in
# every changed case (39 of 64, seeds 4100 and 4300)
COARSE_FROM_PX = 36.0
# ...and never to a scaled photo shorter than this on a side (nothing left to restore)
_COARSE_MIN_SIDE_PX = 64
_STRIP_PX = 1024 * 1024  # pixels per strip when the coarse pass's change is brought back up
_BLEND_PX = 32
_ALPHA_MIN = np.float32(1.0 / 255.0)


def strength_gain(strength: float) -> float:
    """Residual gain for ``strength``: 0 -> 0, 50 -> 1 (the model's output), 100 -> 1.75.

    Linear on each half, so it is monotone and continuous.
    """
    if not (0 <= strength <= 100) or math.isnan(strength):
        msg = f"strength must be in 0..100 (50 = the model's own result), got {strength}"
        raise ValueError(msg)
    s = float(strength)
    return s / 50.0 if s <= 50 else 1.0 + 0.75 * (s - 50.0) / 50.0


def ai_deblur(
    image: np.ndarray,
    *,
    model: str | Path | Restorer | None = None,
    strength: float = 50.0,
    linear_input: bool = False,
    tile_px: int = DEFAULT_AI_TILE_PX,
    guard: bool | GuardSettings = True,
    blur_px: float | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Remove blur (camera shake, motion, defocus, soft lenses) with the learned model.

    Parameters
    ----------
    image : ndarray, uint8 | uint16 | float16 | float32 | float64, (H, W) or (H, W, C), C 1..4
        Gray, gray+alpha, RGB or RGBA; alpha last. Float data is [0, 1] nominal; values above 1
        (HDR) are fed to the network clipped and get the residual added.
    model : None, str, path or restorer, default None
        None: the default shipped model; a shipped name (``clearshot models``); a path to your
        own ``.onnx`` (contract in :mod:`core.ai.runtime`); or an object with ``run``.
    strength : float, 0..100, default 50
        0 returns the input, 50 the network's result, 100 extrapolates its change to 1.75x.
    linear_input : bool, default False
        True when the data is linear light: it is sRGB-encoded for the network and the result
        decoded back.
    tile_px : int, default 1024
        Side of the tile cores (memory and progress granularity; the result does not depend on
        it beyond float rounding).
    guard : bool or GuardSettings, default True
        Detect checkerboard / colour-mosaic / border failures per block and fall back to the
        input there (:mod:`core.ai.guard`).
    blur_px : float, optional
        The blur's extent in px when known (``core.diagnose``'s). From
        :data:`COARSE_FROM_PX` on, the network first runs on the photo scaled down until the
        blur measures :data:`COARSE_BLUR_PX`, and its change, scaled back up, is added before
        the full-resolution pass (see the module docstring). None: one pass.
    progress : callable, optional
        ``progress(fraction, stage)`` after every tile; return False to cancel
        (raises ``OperationCancelled``).

    Returns
    -------
    ndarray of the input's dtype and shape; alpha bit-identical to the input's.

    Notes
    -----
    Peak memory: the input and output arrays, plus about four float32 bands of
    W x (tile_px + 32) x C (the residual band and the temporaries that finish it), plus one
    network tile (~0.3 GB in cv2.dnn and ~0.2 GB of float32 copies at the default tile size):
    about 1 GB over the input for a 24 MP RGB photo, and it grows only with the image width.
    The coarse pass (``blur_px``) adds one copy of the photo in its own dtype, the photo scaled
    down, and a strip of float32 change (about 1 MP).
    Transparent pixels are premultiplied before the network so hidden colours do not bleed;
    fully transparent pixels keep their colour values.

    Examples
    --------
    >>> img = np.full((40, 40, 3), 0.5, np.float32)
    >>> out = ai_deblur(img)
    >>> out.shape, out.dtype, bool(np.abs(out - img).max() < 0.02)
    ((40, 40, 3), dtype('float32'), True)
    """
    check_image(image)
    gain = strength_gain(strength)
    if tile_px < 64:
        msg = f"tile_px must be at least 64, got {tile_px}"
        raise ValueError(msg)
    settings = None if guard is False else (guard if isinstance(guard, GuardSettings)
                                             else GuardSettings())
    rep = Reporter(progress)
    rep(0.0, "loading model")
    net = load_restorer(model)
    if gain == 0.0:
        return image.copy()
    if blur_px is not None and not (math.isfinite(blur_px) and blur_px >= 0):
        msg = f"blur_px must be a blur extent in px (>= 0), got {blur_px}"
        raise ValueError(msg)
    scale = 1.0 if blur_px is None or blur_px < COARSE_FROM_PX else blur_px / COARSE_BLUR_PX
    if scale > 1.0 and min(image.shape[:2]) / scale >= _COARSE_MIN_SIDE_PX:
        options = {"model": net, "linear_input": linear_input, "tile_px": tile_px, "guard": guard}
        pre = _coarse_pass(image, scale, options, rep.sub(0.0, 0.25))
        full = ai_deblur(pre, **options, progress=rep.sub(0.25, 1.0))
        return full if gain == 1.0 else _toward(image, full, gain)
    orig = as_hwc(image)
    colour, alpha = split_alpha(orig)
    h, w, c = colour.shape
    out = np.empty(orig.shape, orig.dtype)
    if alpha is not None:
        out[:, :, c:] = alpha
    mult = max(1, int(net.multiple))
    ctx = max(0, int(net.receptive_px)) + _BLEND_PX // 2
    rows, cols = tile_grid(h, tile_px), tile_grid(w, tile_px)
    n_tiles = len(rows) * len(cols)
    band: np.ndarray | None = None  # residual rows [band_y0, band_y0 + len(band))
    band_y0 = 0
    done_y = 0  # rows [0, done_y) of ``out`` are final
    t = 0
    for ri, (y0, y1) in enumerate(rows):
        wy0, wy1 = _weight_span(y0, y1, h)
        if band is None:
            band_y0 = 0
            band = np.zeros((wy1, w, c), np.float32)
        elif wy1 - band_y0 > band.shape[0]:
            grown = np.zeros((wy1 - band_y0, w, c), np.float32)
            grown[: band.shape[0]] = band
            band = grown
        for x0, x1 in cols:
            rep(t / n_tiles, f"AI deblur: tile {t + 1} of {n_tiles}")
            wx0, wx1 = _weight_span(x0, x1, w)
            ty0 = max(0, (wy0 - ctx) // mult * mult)
            tx0 = max(0, (wx0 - ctx) // mult * mult)
            ty1, tx1 = min(h, wy1 + ctx), min(w, wx1 + ctx)
            res = _tile_residual(
                colour[ty0:ty1, tx0:tx1],
                None if alpha is None else alpha[ty0:ty1, tx0:tx1],
                net,
                linear_input=linear_input,
                settings=settings,
                at_edges=(ty0 == 0, ty1 == h, tx0 == 0, tx1 == w),
            )
            wt = _feather(wy0, wy1, y0, y1, h)[:, None] * _feather(wx0, wx1, x0, x1, w)[None, :]
            band[wy0 - band_y0 : wy1 - band_y0, wx0:wx1] += (
                res[wy0 - ty0 : wy1 - ty0, wx0 - tx0 : wx1 - tx0] * wt[:, :, None]
            )
            t += 1
        # rows above the next tile row's blend band are final now
        final_y = h if ri == len(rows) - 1 else _weight_span(*rows[ri + 1], h)[0]
        _finish_rows(out, colour, alpha, band[done_y - band_y0 : final_y - band_y0],
                     done_y, gain, linear_input)
        keep = band[final_y - band_y0 :].copy()
        band, band_y0, done_y = keep, final_y, final_y
    rep(1.0, "done")
    return out.reshape(image.shape)


def _coarse_pass(image: np.ndarray, scale: float, options: dict, rep: Reporter) -> np.ndarray:
    """``image`` plus the change the network makes to it scaled down by ``scale``, brought back
    up (bicubic) to full resolution in strips; the input's dtype and shape, alpha unchanged."""
    orig = as_hwc(image)
    h, w = orig.shape[:2]
    hs, ws = max(1, round(h / scale)), max(1, round(w / scale))
    src = orig.astype(np.float32) if orig.dtype == np.float16 else orig
    small = cv2.resize(src, (ws, hs), interpolation=cv2.INTER_AREA).reshape(hs, ws, -1)
    restored = ai_deblur(small, **options, progress=rep.sub(0.0, 0.8))
    colour_small, _ = split_alpha(small)
    change = to_float32(split_alpha(restored)[0]) - to_float32(colour_small)
    colour, alpha = split_alpha(orig)
    c = colour.shape[2]
    out = np.empty_like(orig)
    if alpha is not None:
        out[:, :, c:] = alpha
    map_x = ((np.arange(w, dtype=np.float32) + 0.5) * np.float32(ws / w) - 0.5)[None, :]
    step = max(1, _STRIP_PX // max(w, 1))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) * np.float32(hs / h) - 0.5
        mx = np.ascontiguousarray(np.broadcast_to(map_x, (y1 - y0, w)))
        my = np.ascontiguousarray(np.broadcast_to(ys[:, None], (y1 - y0, w)))
        up = cv2.remap(change, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        base = to_float32(colour[y0:y1])
        out[y0:y1, :, :c] = _changed(base, up.reshape(y1 - y0, w, c), out.dtype)
        rep(y1 / h, "AI deblur: coarse pass")
    return out.reshape(image.shape)


def _toward(image: np.ndarray, result: np.ndarray, gain: float) -> np.ndarray:
    """``image + gain * (result - image)`` in the input's dtype (strength), alpha unchanged."""
    orig, res = as_hwc(image), as_hwc(result)
    colour, alpha = split_alpha(orig)
    c = colour.shape[2]
    out = res.copy()
    h, w = orig.shape[:2]
    step = max(1, _STRIP_PX // max(w, 1))
    for y0 in range(0, h, step):
        base = to_float32(colour[y0 : y0 + step])
        change = np.float32(gain) * (to_float32(res[y0 : y0 + step, :, :c]) - base)
        out[y0 : y0 + step, :, :c] = _changed(base, change, out.dtype)
    if alpha is not None:
        out[:, :, c:] = alpha
    return out.reshape(image.shape)


def _weight_span(a: int, b: int, length: int) -> tuple[int, int]:
    """Rows/cols a tile core [a, b) contributes to: the core plus half a blend band inside."""
    half = _BLEND_PX // 2
    return (0 if a == 0 else a - half), (length if b == length else b + half)


def _feather(s0: int, s1: int, a: int, b: int, length: int) -> np.ndarray:
    """Raised-cosine weights over [s0, s1): 1 in the core, ramps across [a -+ half] and
    [b -+ half]; ramps of neighbouring tiles are complementary (they sum to 1)."""
    wgt = np.ones(s1 - s0, np.float32)
    half = _BLEND_PX // 2
    phase = (np.arange(2 * half) + 0.5) / (2 * half)
    ramp = (0.5 - 0.5 * np.cos(np.pi * phase)).astype(np.float32)
    if a > 0:
        wgt[: 2 * half] = ramp
    if b < length:
        wgt[-2 * half :] = ramp[::-1]
    return wgt


def _tile_residual(
    colour: np.ndarray,
    alpha: np.ndarray | None,
    net: Restorer,
    *,
    linear_input: bool,
    settings: GuardSettings | None,
    at_edges: tuple[bool, bool, bool, bool],
) -> np.ndarray:
    """The network's change for one tile, in the data's space (premultiplied if alpha)."""
    x = to_float32(colour)
    a = None if alpha is None else to_float32(alpha)
    if a is not None:
        x *= a
    x_enc = linear_to_srgb(np.clip(x, 0.0, 1.0)) if linear_input else np.clip(x, 0.0, 1.0)
    gray = x_enc.shape[2] == 1
    x3 = np.repeat(x_enc, 3, axis=2) if gray else x_enc
    th, tw = x3.shape[:2]
    mult = max(1, int(net.multiple))
    ph, pw = -th % mult, -tw % mult
    padded = np.pad(x3, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if (ph or pw) else x3
    batch = np.ascontiguousarray(padded.transpose(2, 0, 1)[None])
    y = np.asarray(net.run(batch))
    if y.shape != batch.shape:
        msg = (
            f"model {net.name} returned shape {y.shape} for an input of shape {batch.shape}; "
            "it must return the restored image at the input's shape"
        )
        raise ValueError(msg)
    res3 = y[0, :, :th, :tw].transpose(1, 2, 0) - x3
    if not np.isfinite(res3).all():
        msg = f"model {net.name} produced NaN or infinite values; the model file is unusable"
        raise ValueError(msg)
    if settings is not None:
        weights, _ = guard_weights(x3, res3, settings)
        names = ("top", "bottom", "left", "right")
        edges = tuple(n for n, e in zip(names, at_edges, strict=True) if e)
        bw = border_weights(res3, sides=edges) if edges else None
        if bw is not None:
            weights = weights * bw
        res3 *= weights[:, :, None]
    res = res3.mean(axis=2, keepdims=True) if gray else res3
    if linear_input:
        res = srgb_to_linear(np.clip(x_enc + res, 0.0, 1.0)) - srgb_to_linear(x_enc)
    return res.astype(np.float32, copy=False)


def _finish_rows(
    out: np.ndarray,
    colour: np.ndarray,
    alpha: np.ndarray | None,
    res: np.ndarray,
    y0: int,
    gain: float,
    linear_input: bool,
) -> None:
    """out[y0 : y0 + len(res)] = original + gain * residual, in the original dtype."""
    y1 = y0 + res.shape[0]
    if y1 <= y0:
        return
    c = colour.shape[2]
    orig = to_float32(colour[y0:y1])
    delta = res * np.float32(gain)
    if alpha is not None:
        a = to_float32(alpha[y0:y1])
        delta = np.where(a >= _ALPHA_MIN, delta / np.maximum(a, _ALPHA_MIN), 0.0)
    out[y0:y1, :, :c] = _changed(orig, delta, out.dtype)


def _changed(base: np.ndarray, change: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``base + change`` (float32 colour) stored as ``dtype``. Float data is never made darker
    than black, and HDR highlights above 1 are not pushed past themselves."""
    result = base + change
    if np.dtype(dtype).kind == "f":
        np.clip(result, np.minimum(base, 0.0), np.maximum(base, 1.0), out=result)
    return from_float32(result, dtype)
