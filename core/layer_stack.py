"""The layered result of a recipe, described for any host, and how to compute it.

:func:`run_recipe` runs a :class:`core.recipes.Recipe` on an image and returns a
:class:`LayerStack`: the base (the input), then one :class:`Layer` per step, bottom to top --
the first pass (AI or classical deblur), the sharpened layer with its mask (black or
automatic), clarity, the softening layer with its inverted mask. Each layer has a name, an
opacity, a blend mode (``"normal"``), a mask (float32 (H, W) in [0, 1], or None for "no
mask") and its pixels in the input's dtype and shape. Hosts turn the stack into real layers
(GIMP: a layer group; PSD: new layers with masks); the CLI writes :meth:`LayerStack.flatten`.

Each step works on the composite below it, as a photographer duplicates the visible result
before sharpening it, so the stack composites to exactly the sequential application of the
steps through their masks (:func:`core.mask_ops.apply_through_mask`):

    composite_0 = base
    layer_k     = op_k(composite_{k-1})
    composite_k = apply_through_mask(composite_{k-1}, layer_k, mask_k * opacity_k)

and :meth:`LayerStack.flatten` recomputes that from the layers alone. Automatic masks
(faces, eyes, subject, detail) are found on ``composite_{k-1}``, the image the step works
on. Where a layer's mask is 0 the pixels below come through bit for bit; alpha is never
filtered.

The ``method = "ai"`` first pass calls ``core.ai.ai_deblur(image, *, strength, linear_input,
progress)`` when :mod:`core.ai` imports, and otherwise the classical Auto pass
(:func:`core.diagnose.diagnose` then :func:`core.deblur.deblur` with ``method="sparse"``,
nothing done when the photo is sharp); the provenance records which pass ran and why.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from . import __version__
from . import masks as mask_ops
from .color import decode_to_linear, encode_from_linear
from .dtype import as_hwc, check_image, split_alpha, to_float32
from .errors import MissingDependencyError
from .progress import ProgressCallback, Reporter
from .recipes import Recipe, Step, parse_mask_spec
from .sharpen import unsharp_mask

__all__ = ["Layer", "LayerStack", "run_recipe", "soften", "build_step_mask"]

BlendSpace = Literal["linear", "encoded"]
_ALPHA_EPS = np.float32(1.0 / 65535.0)


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Layer:
    """One layer of the result.

    Attributes
    ----------
    name : str
        The layer name shown to the user.
    role : {"base", "deblur", "sharpen", "clarity", "soften"}
    pixels : ndarray, the input's dtype and shape
    mask : ndarray float32 (H, W) in [0, 1], or None
        The layer mask (None: no mask, the whole layer shows). ``np.zeros`` is a black mask.
    opacity : float, 0..1
        Layer opacity (hosts convert: GIMP 0-100, PSD 0-255).
    blend_mode : str
        ``"normal"`` (the only mode recipes use).
    mask_source : str
        How the mask was made, for people ("faces+eyes, grown 4 px, feathered 6 px").
    """

    name: str
    role: str
    pixels: np.ndarray
    mask: np.ndarray | None = None
    opacity: float = 1.0
    blend_mode: str = "normal"
    mask_source: str = "none"

    def weight(self) -> np.ndarray | None:
        """``mask * opacity`` as float32 (H, W), or None when the layer shows fully."""
        if self.mask is None:
            if self.opacity >= 1.0:
                return None
            h, w = as_hwc(self.pixels).shape[:2]
            return np.full((h, w), self.opacity, np.float32)
        if self.opacity >= 1.0:
            return self.mask
        return self.mask * np.float32(self.opacity)


@dataclass(frozen=True)
class LayerStack:
    """A base layer and the recipe's layers above it, bottom to top.

    Attributes
    ----------
    layers : tuple of Layer
        ``layers[0]`` is the base (the input, unchanged).
    blend_space : {"linear", "encoded"}
        Where layers are blended: linear light (GIMP 3's default for Normal mode) or the
        stored, encoded values (Photoshop's).
    linear_input : bool
        The pixels are linear light already (then both spaces blend the stored values).
    provenance : dict
        JSON-ready: Clearshot version, recipe (name, version, TOML text), each step's
        parameters, which first pass ran (AI model name and sha256, or the diagnosis and
        kernel of the classical pass), the masks found.
    """

    layers: tuple[Layer, ...]
    blend_space: BlendSpace = "linear"
    linear_input: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> Layer:
        return self.layers[0]

    def flatten(self) -> np.ndarray:
        """Composite the layers bottom to top, as the host would show them.

        Returns
        -------
        ndarray of the base's dtype and shape; alpha is the base's, bit for bit.
        """
        out = self.layers[0].pixels.copy()
        for layer in self.layers[1:]:
            out = _composite(out, layer, linear=self._linear_blend)
        return out

    @property
    def _linear_blend(self) -> bool:
        return self.blend_space == "linear" and not self.linear_input


def _composite(below: np.ndarray, layer: Layer, *, linear: bool) -> np.ndarray:
    w = layer.weight()
    if w is None:
        return layer.pixels.copy()
    return mask_ops.apply_through_mask(below, layer.pixels, w, linear=linear)


# ----------------------------------------------------------------------------- operations
def soften(image: np.ndarray, sigma_px: float, *, linear_input: bool = False) -> np.ndarray:
    """Gaussian softening in linear light (film grain, noise), alpha untouched.

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    sigma_px : float, 0.1..50
        Gaussian sigma in pixels (0.5: grain goes, edges barely move).
    linear_input : bool, default False
        The data is linear light already.

    Returns
    -------
    ndarray of the input's dtype and shape.

    Notes
    -----
    Borders reflect. With alpha, colour is blurred premultiplied and un-premultiplied, so
    transparent pixels do not bleed in; fully transparent pixels keep their colour values.

    Examples
    --------
    >>> img = np.full((8, 8, 4), 200, np.uint8)
    >>> bool((soften(img, 0.5) == img).all())
    True
    """
    check_image(image)
    if not (isinstance(sigma_px, (int, float)) and 0.1 <= sigma_px <= 50):
        msg = f"sigma_px must be a number of pixels in 0.1..50, got {sigma_px!r}"
        raise ValueError(msg)
    orig = as_hwc(image)
    colour, alpha = split_alpha(orig)
    lin = decode_to_linear(colour, encoded=not linear_input)
    r = max(1, math.ceil(3 * sigma_px))
    ksize = (2 * r + 1, 2 * r + 1)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, ksize, sigma_px, borderType=cv2.BORDER_REFLECT).reshape(x.shape)

    if alpha is None:
        res = blur(lin)
    else:
        a = to_float32(alpha)
        num = blur(lin * a)
        den = blur(a)
        res = np.where(den > _ALPHA_EPS, num / np.maximum(den, _ALPHA_EPS), lin)
        res = np.where(a > 0, res, lin)
    out = orig.copy()
    out[:, :, : colour.shape[2]] = encode_from_linear(res, orig.dtype, encoded=not linear_input)
    return out.reshape(image.shape)


def _load_ai() -> tuple[Any | None, str]:
    """``core.ai`` when it imports, else None and the reason."""
    try:
        module = importlib.import_module("core.ai")
    except ImportError as exc:  # not on this branch, or its dependencies are missing
        return None, f"the AI pass is not installed ({exc})"
    if not callable(getattr(module, "ai_deblur", None)):
        return None, "core.ai has no ai_deblur function"
    return module, ""


def _model_info(module: Any) -> dict[str, Any]:
    """Name, version and sha256 of the model ``core.ai`` runs by default."""
    try:
        got = module.model_info(module.default_model_name())
    except Exception as exc:  # noqa: BLE001 - provenance must not fail the result
        return {"error": f"the AI model's registry entry could not be read: {exc}"}
    return {"name": got.name, "version": got.version, "sha256": got.sha256}


def _first_pass(
    image: np.ndarray, step: Step, *, linear_input: bool, rep: Reporter
) -> tuple[np.ndarray, dict[str, Any]]:
    """The deblur step: AI when asked for and installed, else classical Auto."""
    info: dict[str, Any] = {}
    if step["method"] == "ai":
        module, why = _load_ai()
        if module is not None:
            try:
                out = module.ai_deblur(
                    image, strength=step["strength"], linear_input=linear_input, progress=rep
                )
            except MissingDependencyError as exc:  # e.g. torch or the weights missing
                why = f"the AI pass could not run ({exc})"
            else:
                return out, {"pass": "ai", "model": _model_info(module)}
        info = {"pass": "classical-auto", "ai_fallback_reason": why}
    else:
        info = {"pass": "classical-auto"}
    from .diagnose import diagnose

    d = diagnose(image, mode=step["mode"], linear_input=linear_input, progress=rep.sub(0, 0.3))
    diag = d.to_json()
    diag.pop("timings_s", None)
    info["diagnosis"] = diag
    from .crosscheck import left_unchanged, restore_checked

    if d.kind != "sharp":
        info["psf"] = {"size_px": list(d.psf.shape), "kernel": np.round(d.psf, 5).tolist()}
    out, check = restore_checked(
        image,
        d,
        check=step["mode"] == "auto",  # a family the recipe forces is not second-guessed
        strength=step["strength"],
        linear_input=linear_input,
        progress=rep.sub(0.3, 1.0),
    )
    if left_unchanged(d, check):
        info["note"] = "the photo is already sharp: the first pass left the pixels unchanged"
        return out, info
    if check is not None and check.sharpness_gain is not None:
        info["sharpness_gain"] = round(check.sharpness_gain, 3)
    elif check is not None:
        info["cross_check_db"] = round(check.disagreement_db, 2)
    if check is not None and check.ai_share > 0:
        module, _ = _load_ai()
        info["pass"] = "ai" if check.use_ai else "classical-auto+ai"
        info["ai_share"] = check.ai_share
        info["model"] = _model_info(module)
        info["note"] = check.note()
    return out, info


def _run_op(
    image: np.ndarray, step: Step, *, linear_input: bool, rep: Reporter
) -> tuple[np.ndarray, dict[str, Any]]:
    if step.op == "deblur":
        return _first_pass(image, step, linear_input=linear_input, rep=rep)
    if step.op == "sharpen":
        out = unsharp_mask(
            image,
            step["amount_pct"],
            step["radius_px"],
            step["threshold_levels"],
            halo_limit=step["halo_limit_pct"] / 100.0 if step["limit_halos"] else None,
            luminance_only=step["luminance_only"],
            space=step["space"],
            clip=not (image.dtype.kind == "f" and linear_input),
            progress=rep,
        )
        return out, {}
    if step.op == "clarity":
        out = unsharp_mask(
            image,
            step["amount_pct"],
            step["radius_px"],
            step["threshold_levels"],
            luminance_only=True,
            clip=not (image.dtype.kind == "f" and linear_input),
            progress=rep,
        )
        return out, {}
    if step.op == "soften":
        return soften(image, step["sigma_px"], linear_input=linear_input), {}
    msg = f"unknown op {step.op!r}"  # parse_recipe prevents this
    raise ValueError(msg)


# ----------------------------------------------------------------------------- masks
def _check_host_masks(
    host_masks: Mapping[str, np.ndarray] | None, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, m in (host_masks or {}).items():
        if name not in ("selection",):
            msg = f"masks may only supply 'selection' (the host's selection), got {name!r}"
            raise ValueError(msg)
        got = getattr(m, "shape", None)
        if got is not None and tuple(got[:2]) != shape:
            msg = (
                f"masks[{name!r}] must be the image's size {shape}, got {got}; "
                "give the selection as a float32 (H, W) array covering the whole image"
            )
            raise ValueError(msg)
        # validates (float or bool (H, W) in [0, 1]) and copies, values bit for bit
        out[name] = mask_ops.intersect(m, np.ones(shape, np.float32))
    return out


def build_step_mask(
    image: np.ndarray,
    step: Step,
    *,
    host_masks: Mapping[str, np.ndarray] | None = None,
    linear_input: bool = False,
    cache: dict[str, Any] | None = None,
) -> tuple[np.ndarray | None, str, dict[str, Any]]:
    """The layer mask of one step, as :func:`run_recipe` builds it.

    Parameters
    ----------
    image : ndarray
        The image the automatic masks are found on: :func:`run_recipe` passes the step's
        input (the composite below it), so faces and eyes are looked for after the first
        pass, where they are sharper (fewer false detections than on the blurred photo).
    step : Step
        Uses ``mask``, ``invert_mask``, ``grow_px`` and ``feather_px``.
    host_masks : mapping, optional
        ``{"selection": float32 (H, W)}`` for ``mask = "selection"``.
    cache : dict, optional
        Detections reused between steps.

    Returns
    -------
    (mask or None, description, detections)
        ``None`` for ``mask = "none"`` without inversion; a float32 (H, W) array otherwise;
        a short description; face/eye boxes found (for the provenance).
    """
    cache = {} if cache is None else cache
    h, w = as_hwc(image).shape[:2]
    words = parse_mask_spec(step["mask"])
    found: dict[str, Any] = {}
    if words == ("none",):
        m = None
    elif words == ("black",):
        m = np.zeros((h, w), np.float32)
    else:
        m = None
        for word in words:
            src = _mask_source(word, image, host_masks or {}, linear_input, cache)
            if word in ("faces", "eyes"):
                found[word] = [list(b) for b in cache[word].boxes]
            m = src if m is None else mask_ops.union(m, src)
    desc = step["mask"]
    if m is not None:
        if step["grow_px"]:
            m = mask_ops.grow(m, step["grow_px"])
            desc += f", grown {step['grow_px']:g} px"
        if step["feather_px"]:
            m = mask_ops.feather(m, step["feather_px"])
            desc += f", feathered {step['feather_px']:g} px"
    if step["invert_mask"]:
        m = np.zeros((h, w), np.float32) if m is None else mask_ops.invert(m)
        desc = f"inverted ({desc})"
    return m, desc, found


def _mask_source(
    word: str,
    image: np.ndarray,
    host_masks: Mapping[str, np.ndarray],
    linear_input: bool,
    cache: dict[str, Any],
) -> np.ndarray:
    if word == "selection":
        if "selection" not in host_masks:
            msg = (
                'mask = "selection" needs the host\'s selection (masks={"selection": ...}); '
                "the command line has none: use faces, eyes, subject or detail"
            )
            raise ValueError(msg)
        return host_masks["selection"]
    if word not in cache:
        if word == "faces":
            cache[word] = mask_ops.face_mask(image)
        elif word == "eyes":
            cache[word] = mask_ops.eye_mask(image)
        elif word == "subject":
            cache[word] = mask_ops.subject_mask(image, linear_input=linear_input)
        else:
            cache[word] = mask_ops.detail_mask(image)
    got = cache[word]
    return got.mask if isinstance(got, mask_ops.Detections) else got


# ----------------------------------------------------------------------------- running
def run_recipe(
    image: np.ndarray,
    recipe: Recipe,
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    region: np.ndarray | None = None,
    linear_input: bool = False,
    blend_space: BlendSpace = "linear",
    progress: ProgressCallback | None = None,
) -> LayerStack:
    """Run a recipe and describe the result as layers.

    Parameters
    ----------
    image : ndarray, uint8 | uint16 | float16 | float32 | float64, (H, W) or (H, W, C)
    recipe : Recipe
        From :func:`core.recipes.load_preset`, :func:`core.recipes.parse_recipe` or
        :func:`core.io.read_recipe`.
    masks : mapping, optional
        Host-supplied mask sources: ``{"selection": float32 (H, W) in [0, 1]}``.
    region : ndarray float32 (H, W) in [0, 1], optional
        Where anything may change (GIMP's selection): every layer's mask is intersected with
        it (the minimum of the two), so pixels where it is 0 stay exactly the input's.
    linear_input : bool, default False
        The data is linear light already.
    blend_space : {"linear", "encoded"}, default "linear"
        Where layers blend (GIMP 3 Normal mode: linear; Photoshop: encoded).
    progress : callable, optional
        ``progress(fraction, stage)``; return False to cancel.

    Returns
    -------
    LayerStack
        ``flatten()`` gives the finished image.

    Examples
    --------
    >>> from core.recipes import parse_recipe
    >>> r = parse_recipe('version = 1\\nname = "x"\\n[[step]]\\nop = "sharpen"\\nmask = "black"\\n')
    >>> img = np.full((8, 8, 3), 100, np.uint8)
    >>> stack = run_recipe(img, r)
    >>> [layer.name for layer in stack.layers], bool((stack.flatten() == img).all())
    (['Background', 'Sharpened'], True)
    """
    check_image(image)
    if blend_space not in ("linear", "encoded"):
        msg = f"blend_space must be 'linear' or 'encoded', got {blend_space!r}"
        raise ValueError(msg)
    if not isinstance(recipe, Recipe):
        msg = f"recipe must be a core.recipes.Recipe (see load_preset), got {type(recipe).__name__}"
        raise TypeError(msg)
    h, w = as_hwc(image).shape[:2]
    host_masks = _check_host_masks(masks, (h, w))
    lim = None
    if region is not None:
        lim = _check_host_masks({"selection": region}, (h, w))["selection"]
    rep = Reporter(progress)
    linear_blend = blend_space == "linear" and not linear_input
    base = Layer("Background", "base", image.copy())
    layers: list[Layer] = [base]
    current = image
    cache: dict[str, Any] = {}
    cache_for = current
    steps_info: list[dict[str, Any]] = []
    n = len(recipe.steps)
    for i, step in enumerate(recipe.steps):
        sub = rep.sub(i / n, (i + 1) / n)
        pixels, info = _run_op(current, step, linear_input=linear_input, rep=sub.sub(0, 0.9))
        sub(0.9, "masks")
        if current is not cache_for:  # automatic masks are found on the step's input
            cache, cache_for = {}, current
        mask, desc, found = build_step_mask(
            current, step, host_masks=host_masks, linear_input=linear_input, cache=cache
        )
        if lim is not None:
            mask = lim.copy() if mask is None else np.minimum(mask, lim)
            desc += " within the selection"
        layer = Layer(
            step.layer_name,
            step.op,
            pixels,
            mask,
            step["opacity_pct"] / 100.0,
            "normal",
            desc,
        )
        layers.append(layer)
        current = _composite(current, layer, linear=linear_blend)
        steps_info.append(
            {"op": step.op, "layer": layer.name, "params": dict(step.params), "mask": desc}
            | ({"detections": found} if found else {})
            | info
        )
        sub(1.0, step.op)
    provenance = {
        "clearshot": __version__,
        "recipe": {
            "name": recipe.name,
            "version": recipe.version,
            "source": recipe.source,
            "toml": recipe.to_toml(),
        },
        "blend_space": blend_space,
        "linear_input": linear_input,
        "selection_limited": lim is not None,
        "steps": steps_info,
    }
    return LayerStack(tuple(layers), blend_space, linear_input, provenance)
