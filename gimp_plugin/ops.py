"""Run one plug-in request on a float32 array by calling :mod:`core` (needs numpy/OpenCV).

Used in the plug-in process when numpy and OpenCV import there, and by :mod:`worker` otherwise.
No pixel maths here: build the PSF (or ask ``core.diagnose`` for it), call the engine, cut the
selection's rectangle out of the context the host read around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.progress import ProgressCallback

__all__ = [
    "apply",
    "hybrid",
    "recipe_for",
    "analyze",
    "locate",
    "LOCATIONS",
    "build_psf",
    "analyse",
    "ANALYSIS_SHARE",
    "MIN_ANALYSIS_SIDE_PX",
    "DIAGNOSIS_SHARE",
]

ANALYSIS_SHARE = 0.3  # of the progress bar, for the blur analysis
MIN_ANALYSIS_SIDE_PX = 64  # a smaller selection is analysed together with its context
DIAGNOSIS_SHARE = 0.8  # of the progress bar in Analyze blur; the blur map takes the rest


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
    msg = f"unknown PSF kind {kind!r}; expected motion, defocus, gaussian, file or analyse"
    raise ValueError(msg)


def analyse(
    spec: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    linear_input: bool,
    crop: tuple[int, int, int, int] | None = None,
    progress: ProgressCallback | None = None,
):
    """``core.diagnose`` on the region being processed: the selection's rectangle ``crop``
    (y, x, h, w), or all of ``pixels`` (the context around it too) when that rectangle is
    smaller than ``MIN_ANALYSIS_SIDE_PX`` on a side. Returns the ``Diagnosis``."""
    from core.diagnose import diagnose

    region = _analysed(pixels, crop)
    return diagnose(region, mode=spec["mode"], linear_input=linear_input, progress=progress)


def _analysed(pixels: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    """The pixels :func:`analyse` diagnoses: the selection's rectangle, or all when small."""
    if crop is not None:
        y, x, h, w = crop
        if min(h, w) >= MIN_ANALYSIS_SIDE_PX:
            return pixels[y : y + h, x : x + w]
    return pixels


LOCATIONS = ("detail", "face")  # where the dialog's preview can look besides the centre


def locate(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    info: dict[str, Any] | None = None,
) -> None:
    """Find where the dialog's 100 % preview should look (no pixels come back).

    ``request["where"]``: ``"detail"``, the region ``core.diagnose`` analyses (the most
    textured, unsaturated part: where the blur kernel of auto/shake is estimated), or
    ``"face"``, the largest face of ``core.masks.face_mask``. ``info["box"]`` receives
    [x, y, w, h] in the coordinates of ``pixels`` (None when there is no face), and
    ``info["message"]`` says what was found.
    """
    from core.diagnose import diagnose
    from core.masks import face_mask

    where = request.get("where")
    box: list[int] | None = None
    if where == "detail":
        d = diagnose(pixels, mode="auto", linear_input=request.get("linear_input", True))
        box = [int(v) for v in d.region]
        message = f"most detailed region (blur analysis: {d.kind}, {d.confidence:.2f})"
    elif where == "face":
        faces = face_mask(pixels).boxes
        if faces:
            box = [int(v) for v in max(faces, key=lambda b: b[2] * b[3])]
            message = f"largest of {len(faces)} face(s)"
        else:
            message = "no face found"
    else:
        msg = f"where must be one of {', '.join(LOCATIONS)}, got {where!r}"
        raise ValueError(msg)
    if info is not None:
        info["box"] = box
        info["message"] = message


def analyze(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    crop: tuple[int, int, int, int] | None = None,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Analyze blur: ``core.diagnose`` on the selection's rectangle ``crop`` (y, x, h, w) of
    ``pixels`` (small ones with their context, as in :func:`analyse`), and the blur map of all
    of ``pixels`` (the whole drawable).

    Returns float32 (H, W, 1) pictures in [0, 1]: ``psf`` (``core.compare.psf_picture``: the
    kernel, peak white, enlarged to at least ``request["psf_min_side_px"]``) and ``focus``
    (``core.blur_map.focus_mask``, white = in focus, the size of ``pixels``). ``info`` gets
    ``diagnosis`` (its JSON) and ``message`` (for the user).
    """
    from core.blur_map import blur_map, focus_mask
    from core.compare import psf_picture
    from core.progress import Reporter

    bar = Reporter(progress)
    linear = bool(request["linear_input"])
    d = analyse({"mode": request["mode"]}, pixels, linear_input=linear, crop=crop,
                progress=bar.sub(0.0, DIAGNOSIS_SHARE))
    bar(DIAGNOSIS_SHARE, "blur map")
    focus = focus_mask(blur_map(pixels, linear_input=linear))
    bar(1.0, "done")
    picture = psf_picture(d.psf, int(request["psf_min_side_px"]))
    if info is not None:
        values = ", ".join(f"{k} {v:.3g}" for k, v in d.params.items()) or "none"
        info["diagnosis"] = d.to_json()
        if crop is not None and min(crop[2], crop[3]) >= MIN_ANALYSIS_SIDE_PX:
            region = info["diagnosis"]["region"]  # in the drawable's coordinates
            region["x"] += int(crop[1])
            region["y"] += int(crop[0])
        info["message"] = (
            f"{d.explanation}\nType: {d.kind}; confidence {d.confidence:.2f}; "
            f"parameters: {values}."
        )
        if request["mode"] == "auto":  # what Deblur's Auto will do: the same cross-check
            from core.crosscheck import cross_check

            second = cross_check(_analysed(pixels, crop), d, linear_input=linear)
            if second is not None:
                if second.learned_pass_json() is not None:
                    info["diagnosis"]["learned_pass"] = second.learned_pass_json()
                if second.kernel_check_json() is not None:
                    info["diagnosis"]["kernel_check"] = second.kernel_check_json()
                plan = second.plan(host="Deblur (Auto)")
                if plan:
                    info["message"] += f"\n{plan}"
    return {
        "psf": (picture.astype(np.float32) / np.float32(255))[..., None],
        "focus": np.ascontiguousarray(focus, dtype=np.float32)[..., None],
    }


def apply(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    crop: tuple[int, int, int, int] | None = None,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Run ``request`` on float32 (H, W, C) pixels; return float32 (h, w, C) of ``crop``.

    ``crop`` is (y, x, h, w) inside ``pixels`` (the selection inside the context read around
    it); None returns the whole result. A PSF of kind "analyse" is found by ``core.diagnose``
    first (the first ``ANALYSIS_SHARE`` of the progress); ``info``, when given, then receives
    ``diagnosis`` (its JSON), ``message`` (for the user) and ``unchanged`` (True when the
    photo is sharp: the pixels come back as they were).
    """
    from core import deblur, unsharp_mask
    from core.progress import Reporter

    op = request["op"]
    clip = request["clip"]
    if clip == "auto":  # float image: keep HDR values only where there are any
        colour = pixels[..., :-1] if pixels.shape[-1] in (2, 4) else pixels
        clip = not bool((colour > 1.0).any())
    if op == "deblur":
        spec = request["psf"]
        if spec["kind"] == "analyse":
            bar = Reporter(progress)
            d = analyse(spec, pixels, linear_input=request["linear_input"], crop=crop,
                        progress=bar.sub(0.0, ANALYSIS_SHARE))
            from core.crosscheck import left_unchanged, restore_checked

            # a photo found sharp comes back unchanged unless the learned pass finds blur
            out, check = restore_checked(
                pixels,
                d,
                analysed=_analysed(pixels, crop),
                check=spec["mode"] == "auto",  # a forced family is not second-guessed
                method=request["method"],
                strength=request["strength"],
                linear_input=request["linear_input"],
                channels=request["channels"],
                clip=clip,
                progress=bar.sub(ANALYSIS_SHARE, 1.0),
            )
            sharp = left_unchanged(d, check)
            if info is not None:
                info["diagnosis"] = d.to_json()
                info["unchanged"] = sharp
                info["message"] = (
                    f"{d.explanation} Nothing to deblur: the pixels were left unchanged."
                    if sharp
                    else f"{d.explanation} (confidence {d.confidence:.2f}); deblurred with it."
                )
                if check is not None and check.note() and not sharp:
                    info["message"] = f"{d.explanation} {check.note()}"
            if sharp:
                bar(1.0, "done: no blur found")
        else:
            out = deblur(
                pixels,
                build_psf(spec),
                method=request["method"],
                strength=request["strength"],
                linear_input=request["linear_input"],
                channels=request["channels"],
                clip=clip,
                progress=progress,
            )
    elif op == "ai":  # the learned blind pass (Deblur's AI mode)
        from core.ai import ai_deblur

        out = ai_deblur(
            pixels,
            strength=request["strength"],
            linear_input=request["linear_input"],
            progress=progress,
        )
    elif op == "recipe":  # a recipe, flattened (Deblur's old-photo mode, Hybrid's preview)
        stack = _run(request, pixels, progress=progress, info=info)
        out = stack.flatten()
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
        msg = f"unknown operation {op!r}; expected deblur, ai, unsharp or recipe"
        raise ValueError(msg)
    if crop is not None:
        y, x, h, w = crop
        out = out[y : y + h, x : x + w]
    return np.ascontiguousarray(out, dtype=np.float32)


def recipe_for(request: Mapping[str, Any]):
    """The request's recipe (``core.recipes.resolve_recipe``) with its mask choice applied."""
    from core.recipes import resolve_recipe, with_mask

    from .params import HYBRID_MASKS

    recipe = resolve_recipe(request["recipe"])
    if request["mask"] != "recipe":
        recipe = with_mask(recipe, HYBRID_MASKS[request["mask"]])
    return recipe


def _run(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    selection: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
):
    """``core.layer_stack.run_recipe`` for a recipe request; ``selection`` (H, W) limits it."""
    from core.layer_stack import run_recipe

    recipe = recipe_for(request)
    masks = None if selection is None else {"selection": selection}
    if request["mask"] == "selection" and selection is None:
        msg = "mask 'selection' needs a selection; select the area to sharpen first"
        raise ValueError(msg)
    stack = run_recipe(
        pixels,
        recipe,
        masks=masks,
        region=selection,
        linear_input=bool(request["linear_input"]),
        blend_space="linear",
        progress=progress,
    )
    if info is not None:
        steps = stack.provenance["steps"]
        first = next((s for s in steps if s["op"] == "deblur"), None)
        text = f"Recipe {recipe.name}: " + "; ".join(f"{s['layer']} ({s['mask']})" for s in steps)
        if first is not None:
            text += f". First pass: {first['pass']}"
            if "diagnosis" in first:
                text += f" ({first['diagnosis']['explanation']})"
        info["message"] = text
        info["provenance"] = stack.provenance
    return stack


def hybrid(
    request: Mapping[str, Any],
    pixels: np.ndarray,
    *,
    selection: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Hybrid sharpen: the recipe's layer stack (``core.layer_stack``) as arrays for the host.

    ``selection`` is float32 (H, W) or (H, W, 1) in [0, 1] (None: no selection); every layer's
    mask is limited to it. Returns float32 ``layerN`` (H, W, C) pixels and ``maskN``
    (H, W, 1) masks, N = 0 for the layer just above the base; ``info["layers"]`` gets each
    layer's name, opacity (0-100), mask description and whether it has a mask.
    """
    sel = None
    if selection is not None:
        sel = np.ascontiguousarray(selection.reshape(selection.shape[:2]), dtype=np.float32)
    stack = _run(request, pixels, selection=sel, progress=progress, info=info)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(stack.layers[1:]):
        arrays[f"layer{i}"] = np.ascontiguousarray(layer.pixels, dtype=np.float32)
        if layer.mask is not None:
            arrays[f"mask{i}"] = np.ascontiguousarray(layer.mask, dtype=np.float32)[..., None]
        layers.append(
            {
                "name": layer.name,
                "opacity_pct": round(100.0 * layer.opacity, 4),
                "mask": layer.mask_source,
                "has_mask": layer.mask is not None,
                "blend_mode": layer.blend_mode,
            }
        )
    if info is not None:
        info["layers"] = layers
    return arrays
