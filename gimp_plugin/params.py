"""Procedure arguments and the mapping from GIMP argument values to engine requests.

Pure Python (no ``gi``, no numpy): the argument table drives registration in :mod:`host`, and
:func:`deblur_request` / :func:`unsharp_request` turn the values a caller or the dialog chose
into a JSON-able request that :mod:`ops` hands to :mod:`core`. Units are converted here, and
only here: GIMP shows percent, pixels, degrees and 0-255 levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Arg",
    "DEBLUR_PROC",
    "UNSHARP_PROC",
    "ANALYZE_PROC",
    "HYBRID_PROC",
    "HYBRID_ARGS",
    "HYBRID_MASKS",
    "hybrid_request",
    "ANALYZE_ARGS",
    "analyze_request",
    "DEBLUR_ARGS",
    "UNSHARP_ARGS",
    "deblur_request",
    "unsharp_request",
    "context_margin_px",
    "babl_format",
    "is_float_precision",
    "preview_crop",
]

DEBLUR_PROC = "python-fu-clearshot-deblur"
UNSHARP_PROC = "python-fu-clearshot-unsharp-mask"
ANALYZE_PROC = "python-fu-clearshot-analyze"
HYBRID_PROC = "python-fu-clearshot-hybrid"
PSF_PICTURE_MIN_SIDE_PX = 256  # the PSF layer of Analyze blur is at least this big

PARAMETRIC_MODES = ("motion", "focus", "gaussian")
ANALYSIS_MODES = ("auto", "shake")  # the engine finds the kernel (core.diagnose)
RECIPE_MODES = {"old-photo": "old-photo"}  # deblur mode -> the recipe it runs (flattened)
# hybrid "mask" choice -> the mask the recipe's sharpen steps get (core.recipes.with_mask)
HYBRID_MASKS = {"black": "black", "faces": "faces+eyes", "subject": "subject",
                "selection": "selection"}


@dataclass(frozen=True)
class Arg:
    """One procedure argument: PDB name, kind ("double", "choice", "bool", "string"), label."""

    name: str
    kind: str
    label: str
    blurb: str
    default: Any
    low: float = 0.0
    high: float = 0.0
    choices: tuple[tuple[str, str], ...] = field(default=())


DEBLUR_ARGS: tuple[Arg, ...] = (
    Arg(
        "mode", "choice", "_Blur", "Kind of blur to remove", "motion",
        choices=(
            ("motion", "Motion (straight streak)"),
            ("focus", "Focus (out-of-focus disk)"),
            ("gaussian", "Gaussian (soft lens)"),
            ("auto", "Auto (analyse the blur)"),
            ("shake", "Shake (estimate the kernel)"),
            ("old-photo", "Old photo (recipe: clarity, grain softened)"),
            ("ai", "AI (learned model, blind)"),
        ),
    ),
    Arg("strength", "double", "S_trength (0-100)", "0 = unchanged, 50 = tuned, 100 = strongest",
        50.0, 0.0, 100.0),
    Arg("length-px", "double", "Motion len_gth (px)", "Length of the motion streak in pixels",
        15.0, 1.0, 501.0),
    Arg("angle-deg", "double", "Motion _angle (°)", "Direction, counter-clockwise from +x",
        0.0, -180.0, 180.0),
    Arg("radius-px", "double", "Focus ra_dius (px)", "Radius of the out-of-focus disk in pixels",
        3.0, 0.5, 250.0),
    Arg("sigma-px", "double", "Gaussian s_igma (px)", "Standard deviation in pixels",
        1.5, 0.3, 100.0),
    Arg("psf-file", "string", "PSF _file (.npy/.png/.tif)",
        "A blur kernel file; when set it replaces the blur model of every mode", ""),
    Arg(
        "method", "choice", "_Method", "Deconvolution method", "sparse",
        choices=(
            ("sparse", "Sparse prior (best)"),
            ("wiener", "Wiener (fastest)"),
            ("rl", "Richardson-Lucy (low light)"),
        ),
    ),
    Arg(
        "channels", "choice", "Cha_nnels", "Deconvolve every channel or luminance only", "rgb",
        choices=(("rgb", "Every channel"), ("luminance", "Luminance only")),
    ),
)

UNSHARP_ARGS: tuple[Arg, ...] = (
    Arg("amount", "double", "_Amount (%)", "Strength in percent (100 = add detail once)",
        120.0, 0.0, 1000.0),
    Arg("radius", "double", "Ra_dius (px)", "Gaussian sigma of the blur in pixels",
        1.5, 0.1, 250.0),
    Arg("threshold", "double", "_Threshold (levels 0-255)",
        "Smallest detail (0-255 levels) that gets sharpened", 5.0, 0.0, 255.0),
    Arg("limit-halos", "bool", "Li_mit halos", "Clamp overshoot near edges", False),
    Arg("halo-limit", "double", "Halo lim_it (% of local range)",
        "Allowed overshoot beyond the local min/max, in percent of the local range",
        20.0, 0.0, 100.0),
    Arg("luminance-only", "bool", "L_uminance only", "Sharpen luminance (no colour fringes)",
        False),
    Arg(
        "space", "choice", "S_pace", "Values the mask works on", "encoded",
        choices=(("encoded", "Encoded (as Photoshop)"), ("linear", "Linear light")),
    ),
)


ANALYZE_ARGS: tuple[Arg, ...] = ()  # the drawable and its selection are all it needs

HYBRID_ARGS: tuple[Arg, ...] = (
    Arg("recipe", "string", "_Recipe (preset or .toml file)",
        "A built-in recipe (portrait, old-photo, motion, focus, landscape) or a recipe file",
        "portrait"),
    Arg(
        "mask", "choice", "_Mask of the sharpened layer", "Where the sharpening shows",
        "recipe",
        choices=(
            ("recipe", "As the recipe says"),
            ("black", "Black (paint it in yourself)"),
            ("faces", "Faces and eyes"),
            ("subject", "In-focus subject"),
            ("selection", "The selection"),
        ),
    ),
)


def _number(values: Mapping[str, Any], arg: Arg) -> float:
    value = values.get(arg.name, arg.default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        msg = f"{arg.name} must be a number, got {value!r}"
        raise ValueError(msg) from None
    if not (math.isfinite(x) and arg.low <= x <= arg.high):
        msg = f"{arg.name} must be in {arg.low:g}..{arg.high:g}, got {value!r}"
        raise ValueError(msg)
    return x


def _choice(values: Mapping[str, Any], arg: Arg) -> str:
    value = str(values.get(arg.name, arg.default))
    names = [c[0] for c in arg.choices]
    if value not in names:
        msg = f"{arg.name} must be one of {', '.join(names)}, got {value!r}"
        raise ValueError(msg)
    return value


_DEBLUR = {a.name: a for a in DEBLUR_ARGS}
_UNSHARP = {a.name: a for a in UNSHARP_ARGS}
_HYBRID = {a.name: a for a in HYBRID_ARGS}


def deblur_request(values: Mapping[str, Any], *, float_data: bool = False) -> dict[str, Any]:
    """Map python-fu-clearshot-deblur arguments to a ``core.deblur`` request.

    The pixels are read as linear light ("RGBA float"), so ``linear_input`` is True. Integer
    images are clipped to [0, 1]; float images get ``clip="auto"``: clipped unless the pixels
    read hold values above 1 (HDR content, which is kept).

    Without a PSF file, ``auto`` and ``shake`` ask the engine to analyse the pixels first
    (PSF kind "analyse": ``core.diagnose`` with mode "auto" or "shake"); ``ai`` runs the
    learned pass (``core.ai.ai_deblur``, an ``op`` "ai" request read gamma-encoded, the values
    the network was trained on).

    Raises
    ------
    ValueError
        A value out of range or an unknown choice (CALLING_ERROR).

    old-photo (without a PSF file) runs the ``old-photo`` recipe flattened (an ``op``
    "recipe" request, read gamma-encoded like the command line's ``--recipe``).
    """
    mode = _choice(values, _DEBLUR["mode"])
    psf_file = str(values.get("psf-file") or "").strip()
    psf: dict[str, Any]
    if psf_file:
        psf = {"kind": "file", "path": psf_file}
    elif mode == "motion":
        psf = {
            "kind": "motion",
            "length_px": _number(values, _DEBLUR["length-px"]),
            "angle_deg": _number(values, _DEBLUR["angle-deg"]),
        }
    elif mode == "focus":
        psf = {"kind": "defocus", "radius_px": _number(values, _DEBLUR["radius-px"])}
    elif mode == "gaussian":
        psf = {"kind": "gaussian", "sigma_px": _number(values, _DEBLUR["sigma-px"])}
    elif mode in ANALYSIS_MODES:
        psf = {"kind": "analyse", "mode": mode}
    elif mode == "ai":
        return {
            "op": "ai",
            "strength": _number(values, _DEBLUR["strength"]),
            "linear_input": False,
            "read": "encoded",
            "clip": "auto" if float_data else True,
        }
    else:
        return _recipe_request(RECIPE_MODES[mode], "recipe", float_data)
    return {
        "op": "deblur",
        "psf": psf,
        "method": _choice(values, _DEBLUR["method"]),
        "strength": _number(values, _DEBLUR["strength"]),
        "channels": _choice(values, _DEBLUR["channels"]),
        "linear_input": True,
        "clip": "auto" if float_data else True,
    }


def unsharp_request(values: Mapping[str, Any], *, float_data: bool = False) -> dict[str, Any]:
    """Map python-fu-clearshot-unsharp-mask arguments to a ``core.unsharp_mask`` request.

    Pixels are read gamma-encoded ("R'G'B'A float"), the space Photoshop's numbers refer to;
    ``space="linear"`` lets the engine decode/encode around the mask.
    """
    limit = bool(values.get("limit-halos", False))
    return {
        "op": "unsharp",
        "amount_pct": _number(values, _UNSHARP["amount"]),
        "radius_px": _number(values, _UNSHARP["radius"]),
        "threshold_levels": _number(values, _UNSHARP["threshold"]),
        "halo_limit": _number(values, _UNSHARP["halo-limit"]) / 100.0 if limit else None,
        "luminance_only": bool(values.get("luminance-only", False)),
        "space": _choice(values, _UNSHARP["space"]),
        "clip": "auto" if float_data else True,
    }


def _recipe_request(recipe: str, mask: str, float_data: bool) -> dict[str, Any]:
    return {
        "op": "recipe",
        "recipe": recipe,
        "mask": mask,
        "linear_input": False,
        "read": "encoded",  # recipes take photographers' (encoded) values, as the CLI
        "clip": "auto" if float_data else True,
    }


def hybrid_request(values: Mapping[str, Any], *, float_data: bool = False) -> dict[str, Any]:
    """Map python-fu-clearshot-hybrid arguments to a recipe request (``core.layer_stack``).

    ``recipe`` is a preset name or a ``.toml`` path (checked by the engine); ``mask`` other
    than "recipe" replaces the mask of the recipe's sharpen steps (``HYBRID_MASKS``). The
    host turns the resulting layer stack into a layer group; the dialog's preview shows the
    stack flattened.
    """
    recipe = str(values.get("recipe") or "").strip()
    if not recipe:
        msg = "recipe must be a preset name (portrait, old-photo, ...) or a .toml file, got ''"
        raise ValueError(msg)
    mask = _choice(values, _HYBRID["mask"])
    return _recipe_request(recipe, mask, float_data)


def analyze_request(values: Mapping[str, Any], *, float_data: bool = False) -> dict[str, Any]:
    """The ``ops.analyze`` request of python-fu-clearshot-analyze (it takes no arguments).

    The whole drawable is read as linear light ("RGBA float"); the blur is diagnosed in the
    selection's bounding box (mode auto) and the blur map covers the whole drawable.
    """
    return {
        "op": "analyze",
        "mode": "auto",
        "linear_input": True,
        "psf_min_side_px": PSF_PICTURE_MIN_SIDE_PX,
    }


def context_margin_px(request: Mapping[str, Any]) -> int:
    """Pixels of context to read around the selection so its edge sees the real neighbours."""
    if request["op"] == "unsharp":
        return 2 * math.ceil(3 * float(request["radius_px"])) + 2
    if request["op"] == "recipe":  # first pass (up to 35 px kernels), clarity's 25 px radius
        return 32 + 3 * 64
    if request["op"] == "ai":  # the shipped network sees +-64 px around each pixel
        return 32 + 64
    psf = request["psf"]
    extent = {
        "motion": lambda: psf["length_px"],
        "defocus": lambda: 2 * psf["radius_px"],
        "gaussian": lambda: 7 * psf["sigma_px"],
    }.get(psf["kind"], lambda: 64.0)()  # file, analyse: up to core.diagnose's 35 px and more
    return int(32 + 3 * math.ceil(extent))


def babl_format(*, linear: bool, gray: bool, alpha: bool) -> str:
    """The babl float format to read and write: linear or encoded, gray or RGB, +alpha."""
    prime = "" if linear else "'"
    base = f"Y{prime}" if gray else f"R{prime}G{prime}B{prime}"
    return f"{base}{'A' if alpha else ''} float"


def is_float_precision(value_name: str) -> bool:
    """True for GIMP's half/float/double precisions (e.g. ``GIMP_PRECISION_FLOAT_LINEAR``)."""
    return any(k in value_name.upper() for k in ("HALF", "FLOAT", "DOUBLE"))


def preview_crop(
    centre: tuple[float, float],
    side: int,
    bounds: tuple[int, int, int, int],
) -> tuple[int, int, int, int]:
    """The dialog's 100 % crop (x, y, w, h): ``side`` px square around ``centre`` (x, y), moved
    (not shrunk) to stay inside ``bounds`` (x, y, w, h: the selection's box on the layer), and
    no larger than ``bounds``. Geometry only."""
    bx, by, bw, bh = bounds
    if bw <= 0 or bh <= 0 or side <= 0:
        msg = f"preview needs a positive side and bounds, got side {side}, bounds {bounds}"
        raise ValueError(msg)
    w, h = min(side, bw), min(side, bh)
    x = round(centre[0] - w / 2)
    y = round(centre[1] - h / 2)
    x = min(max(x, bx), bx + bw - w)
    y = min(max(y, by), by + bh - h)
    return x, y, w, h
