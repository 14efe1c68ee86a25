"""Run one plug-in request on a float32 array by calling :mod:`core` (needs numpy/OpenCV).

Used in the plug-in process when numpy and OpenCV import there, and by :mod:`worker` otherwise.
No pixel maths here: build the PSF, call the engine, cut the selection's rectangle out of the
context the host read around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.progress import ProgressCallback

__all__ = ["apply", "build_psf"]


def build_psf(spec: Mapping[str, Any]) -> np.ndarray:
    """The PSF a request names (core.psf models or core.io.read_psf)."""
    from core import psf as models

    kind = spec["kind"]
    if kind == "motion":
        return models.motion_psf(spec["length_px"], spec["angle_deg"])
    if kind == "defocus":
        return models.defocus_psf(spec["radius_px"])
    if kind == "gaussian":
        return models.gaussian_psf(spec["sigma_px"])
    if kind == "file":
        from core.io import read_psf

        return read_psf(spec["path"])
    msg = f"unknown PSF kind {kind!r}; expected motion, defocus, gaussian or file"
    raise ValueError(msg)


def apply(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    crop: tuple[int, int, int, int] | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Run ``request`` on float32 (H, W, C) pixels; return float32 (h, w, C) of ``crop``.

    ``crop`` is (y, x, h, w) inside ``pixels`` (the selection inside the context read around
    it); None returns the whole result.
    """
    from core import deblur, unsharp_mask

    op = request["op"]
    clip = request["clip"]
    if clip == "auto":  # float image: keep HDR values only where there are any
        colour = pixels[..., :-1] if pixels.shape[-1] in (2, 4) else pixels
        clip = not bool((colour > 1.0).any())
    if op == "deblur":
        out = deblur(
            pixels,
            build_psf(request["psf"]),
            method=request["method"],
            strength=request["strength"],
            linear_input=request["linear_input"],
            channels=request["channels"],
            clip=clip,
            progress=progress,
        )
    elif op == "unsharp":
        out = unsharp_mask(
            pixels,
            request["amount_pct"],
            request["radius_px"],
            request["threshold_levels"],
            halo_limit=request["halo_limit"],
            luminance_only=request["luminance_only"],
            space=request["space"],
            clip=clip,
            progress=progress,
        )
    else:
        msg = f"unknown operation {op!r}; expected deblur or unsharp"
        raise ValueError(msg)
    if crop is not None:
        y, x, h, w = crop
        out = out[y : y + h, x : x + w]
    return np.ascontiguousarray(out, dtype=np.float32)
