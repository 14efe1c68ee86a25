"""The GIMP 3 host port: procedure registration, pixels in/out, progress, PDB status.

Imports ``gi`` and the pure-Python parts of this package only; numpy is touched (through
:mod:`engine`) only when a procedure runs. Pixels are read as float32 from the GEGL buffer in the
format the operation needs (linear "RGBA float" for deconvolution, encoded "R'G'B'A float" for
the unsharp mask, gray variants for gray drawables), with a margin of real context around the
selection, and written through the shadow buffer + ``merge_shadow`` so GIMP applies the
(feathered) selection. Every result is computed before the first write, so a failure leaves the
image as it was; the writes form one undo step, closed in ``finally``. The progress bar is
ended before the first write, so a cancel (GIMP kills the plug-in, see :mod:`progress`) can
only come before any pixel is written. In the deblur modes auto
and shake (no psf-file) the engine analyses the pixels first (``core.diagnose``); a photo it
finds sharp is left untouched, and the user is told so with ``Gimp.message``.

Analyze blur reads one whole drawable (linear), has the engine diagnose the selection's
bounding box and map the blur of the whole layer, tells the diagnosis with ``Gimp.message``
and returns a new grayscale image with the layers "PSF" and "Focus map" (the input image is
only read), plus the diagnosis JSON as the string return value ``diagnosis``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

from . import PLUGIN_NAME, params  # noqa: E402
from .engine import (  # noqa: E402
    EngineConfig,
    load_config,
    run_analysis,
    run_hybrid,
    run_request,
)
from .errors import PluginCancelled, message_for, status_for  # noqa: E402
from .progress import ProgressBar  # noqa: E402

__all__ = [
    "ClearshotPlugIn",
    "read_pixels",
    "write_pixels",
    "analyze_drawable",
    "hybrid_on_drawable",
    "PLUGIN_DIR",
]

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MENU_PATH = "<Image>/Filters/Deblur"
log = logging.getLogger("clearshot.gimp")


@dataclass(frozen=True)
class Spec:
    """What differs between the procedures: arguments, request builder, labels, read format."""

    name: str
    menu_label: str
    title: str
    blurb: str
    help: str
    args: tuple[params.Arg, ...]
    build: Callable[..., dict[str, Any]]
    linear: bool
    analyze: bool = False  # Analyze blur: reads only, returns a new image and the diagnosis
    layers: bool = False  # Hybrid sharpen: adds a layer group (the recipe's layer stack)


SPECS = {
    params.DEBLUR_PROC: Spec(
        params.DEBLUR_PROC,
        "_Deblur…",
        "Deblur",
        "Remove motion, focus, Gaussian or camera-shake blur by deconvolution",
        "Deconvolves the selected layers inside the selection in linear light. auto analyses "
        "the blur in the selection (motion, shake, defocus or none) and removes what it finds; "
        "a sharp selection is left unchanged, with a message. shake estimates a free-form "
        "kernel. psf-file, when set, replaces the blur model of every mode. old-photo runs "
        "the old-photo recipe (first pass, clarity, film grain softened on the background) "
        "and writes its flattened result.",
        params.DEBLUR_ARGS,
        params.deblur_request,
        True,
    ),
    params.UNSHARP_PROC: Spec(
        params.UNSHARP_PROC,
        "_Unsharp Mask…",
        "Unsharp Mask",
        "Sharpen with an unsharp mask (Photoshop semantics, halo limiter)",
        "Amount in percent, radius in pixels (Gaussian sigma), threshold in 0-255 levels; "
        "optional halo limiter and luminance-only sharpening.",
        params.UNSHARP_ARGS,
        params.unsharp_request,
        False,
    ),
    params.ANALYZE_PROC: Spec(
        params.ANALYZE_PROC,
        "_Analyze blur…",
        "Analyze blur",
        "Say what blurred the layer and show its kernel and focus map in a new image",
        "Analyses the blur in the selection's bounding box of the selected layer (motion, "
        "camera shake, defocus or none), tells what it found (explanation, type, confidence, "
        "parameters) and opens a new grayscale image with two layers: PSF (the blur kernel, "
        "peak white, enlarged to at least 256 px) and Focus map (white = in focus, the size "
        "of the layer). The input image is not changed. Returns the new image and the "
        "diagnosis as JSON (diagnosis).",
        params.ANALYZE_ARGS,
        params.analyze_request,
        True,
        analyze=True,
    ),
    params.HYBRID_PROC: Spec(
        params.HYBRID_PROC,
        "_Hybrid sharpen (layers)…",
        "Hybrid sharpen",
        "Deblur, then sharpen through a mask, as layers in a new layer group",
        "Runs a recipe (portrait, old-photo, motion, focus, landscape or a .toml file) on the "
        "selected layer and adds its layers in a new layer group above it: the first pass "
        "(AI deblur when installed, else the classical Auto pass), for portraits the faces "
        "smoothed a little (the noise the first pass leaves), the sharpened layer with "
        "its layer mask (as the recipe says, black to paint in yourself, faces and eyes, the "
        "in-focus subject, or the selection) and, for old photos, the softened background. "
        "The layer itself is not changed; every layer is limited to the selection. One undo "
        "step.",
        params.HYBRID_ARGS,
        params.hybrid_request,
        False,
        layers=True,
    ),
}
ANALYZE_LAYERS = ("PSF", "Focus map")  # top to bottom
MASK_FORMAT = "Y float"  # GIMP's masks and selection are linear gray


def _setup_logging() -> None:
    if log.handlers:
        return
    try:
        path = os.path.join(Gimp.directory(), f"{PLUGIN_NAME}.log")
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except (OSError, TypeError):
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _add_argument(procedure: Gimp.Procedure, arg: params.Arg) -> None:
    flags = GObject.ParamFlags.READWRITE
    if arg.kind == "double":
        procedure.add_double_argument(
            arg.name, arg.label, arg.blurb, arg.low, arg.high, arg.default, flags
        )
    elif arg.kind == "bool":
        procedure.add_boolean_argument(arg.name, arg.label, arg.blurb, arg.default, flags)
    elif arg.kind == "string":
        procedure.add_string_argument(arg.name, arg.label, arg.blurb, arg.default, flags)
    elif arg.kind == "choice":
        choice = Gimp.Choice.new()
        for i, (nick, label) in enumerate(arg.choices):
            choice.add(nick, i, label, label)
        procedure.add_choice_argument(arg.name, arg.label, arg.blurb, choice, arg.default, flags)
    else:
        msg = f"unknown argument kind {arg.kind!r} for {arg.name}"
        raise ValueError(msg)


# --- host port: pixels in and out -----------------------------------------------------------


def read_pixels(drawable: Gimp.Drawable, rect: tuple[int, int, int, int], fmt: str):
    """Read drawable-local ``rect`` (x, y, w, h) as float32 bytes; returns (bytes, shape)."""
    x, y, w, h = rect
    raw = drawable.get_buffer().get(
        Gegl.Rectangle.new(x, y, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP
    )
    channels = len(raw) // (4 * w * h)
    return bytes(raw), (h, w, channels)


def write_pixels(
    drawable: Gimp.Drawable, rect: tuple[int, int, int, int], fmt: str, data: bytes
) -> None:
    """Write float32 bytes into ``rect`` through the shadow buffer; GIMP applies the selection."""
    x, y, w, h = rect
    shadow = drawable.get_shadow_buffer()
    shadow.set(Gegl.Rectangle.new(x, y, w, h), fmt, data)
    shadow.flush()
    drawable.merge_shadow(True)
    drawable.update(x, y, w, h)


def drawable_format(drawable: Gimp.Drawable, linear: bool) -> str:
    """The babl float format for this drawable (gray or RGB, alpha if it has one)."""
    return params.babl_format(linear=linear, gray=drawable.is_gray(), alpha=drawable.has_alpha())


def region(drawable: Gimp.Drawable, margin: int):
    """(target rect, context rect, crop of target inside context) or None if nothing selected."""
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        return None
    dw, dh = drawable.get_width(), drawable.get_height()
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(dw, x + w + margin), min(dh, y + h + margin)
    return (x, y, w, h), (x0, y0, x1 - x0, y1 - y0), (y - y0, x - x0, h, w)


def _check_drawables(drawables: Sequence[Gimp.Drawable]) -> list[Gimp.Drawable]:
    if not drawables:
        msg = "no drawable selected; select a layer (or several) and try again"
        raise ValueError(msg)
    for d in drawables:
        if d.is_group():
            msg = (
                f"'{d.get_name()}' is a layer group, whose pixels come from its layers; "
                "select the layers inside it instead"
            )
            raise ValueError(msg)
    return list(drawables)


def _progress() -> ProgressBar:
    """The engine's progress callback on GIMP's bar (with the test hook, see ``progress``)."""
    return ProgressBar.for_gimp(Gimp.progress_update)


def _end_progress_before_writing() -> None:
    """End the bar before the first write: GIMP then disconnects its cancel handler, so a
    cancel cannot kill the plug-in half-way through the writes (see ``progress``)."""
    Gimp.progress_end()


def apply_to_drawables(
    spec: Spec,
    image: Gimp.Image,
    drawables: Sequence[Gimp.Drawable],
    values: dict[str, Any],
    engine: EngineConfig,
) -> int:
    """Run the operation on every drawable, then write all results as one undo step."""
    targets = _check_drawables(drawables)
    precision = image.get_precision().value_name
    request = spec.build(values, float_data=params.is_float_precision(precision))
    margin = params.context_margin_px(request)
    Gimp.progress_init(f"Clearshot: {spec.title}")
    bar = _progress()
    results = []
    notes: list[str] = []
    t0 = time.monotonic()
    for i, d in enumerate(targets):
        where = region(d, margin)
        if where is None:
            continue
        target, context, crop = where
        fmt = drawable_format(d, spec.linear and request.get("read") != "encoded")
        data, shape = read_pixels(d, context, fmt)
        part = bar.part(i / len(targets), (i + 1) / len(targets))
        info: dict[str, Any] = {}
        out, _ = run_request(request, data, shape, engine, crop=crop, progress=part, info=info)
        log.info("%s on %s: %s context %s in %.2fs", spec.name, d.get_name(), target, context,
                 time.monotonic() - t0)
        if info.get("message"):
            log.info("analysis of %s: %s", d.get_name(), json.dumps(info.get("diagnosis")))
        if info.get("unchanged"):  # nothing to do (a sharp photo): tell, do not write
            notes.append(f"'{d.get_name()}': {info['message']}")
            continue
        results.append((d, target, fmt, out))
    if notes:
        log.info("left unchanged: %s", "; ".join(notes))
        Gimp.message("Clearshot Deblur: " + "\n".join(notes))
    _end_progress_before_writing()
    if not results:
        return 0
    image.undo_group_start()
    try:
        for d, target, fmt, out in results:
            write_pixels(d, target, fmt, out)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return len(results)


def analyze_drawable(
    image: Gimp.Image, drawables: Sequence[Gimp.Drawable], engine: EngineConfig
) -> tuple[Gimp.Image, str]:
    """Analyze blur on the one selected drawable; returns (new image, diagnosis JSON).

    The whole drawable is read (the focus map covers it); the diagnosis looks at the
    selection's bounding box. Nothing is written to ``image``.
    """
    targets = _check_drawables(drawables)
    if len(targets) != 1:
        msg = f"Analyze blur works on one layer; {len(targets)} are selected"
        raise ValueError(msg)
    d = targets[0]
    ok, x, y, w, h = d.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        msg = f"the selection does not cover any of '{d.get_name()}'"
        raise ValueError(msg)
    spec = SPECS[params.ANALYZE_PROC]
    request = spec.build({})
    whole = (0, 0, d.get_width(), d.get_height())
    data, shape = read_pixels(d, whole, drawable_format(d, spec.linear))
    Gimp.progress_init(f"Clearshot: {spec.title}")
    info: dict[str, Any] = {}
    t0 = time.monotonic()
    pictures = run_analysis(request, data, shape, engine, crop=(y, x, h, w),
                            progress=_progress(), info=info)
    text = json.dumps(info["diagnosis"])
    log.info("%s on %s: box %s in %.2fs: %s", spec.name, d.get_name(), (x, y, w, h),
             time.monotonic() - t0, text)
    _end_progress_before_writing()  # no cancel half-way through building the new image
    new = _pictures_image(pictures)
    Gimp.message(f"Clearshot {spec.title} ('{d.get_name()}'): {info['message']}")
    return new, text


def hybrid_on_drawable(
    image: Gimp.Image,
    drawables: Sequence[Gimp.Drawable],
    values: dict[str, Any],
    engine: EngineConfig,
) -> Gimp.Layer:
    """Hybrid sharpen (``ops.hybrid`` -> ``core.layer_stack.run_recipe``) on one layer.

    Reads the whole layer (gamma-encoded, as the recipe's unsharp mask expects) and the
    selection over it, computes the layer stack, then adds it in one undo step as a layer
    group directly above the layer: one layer per recipe step, bottom to top, with its name,
    opacity and layer mask. The group's layers composite in linear light, as
    ``LayerStack.flatten``. Returns the group.
    """
    targets = _check_drawables(drawables)
    if len(targets) != 1:
        msg = f"Hybrid sharpen works on one layer; {len(targets)} are selected"
        raise ValueError(msg)
    d = targets[0]
    spec = SPECS[params.HYBRID_PROC]
    precision = image.get_precision().value_name
    request = spec.build(values, float_data=params.is_float_precision(precision))
    w, h = d.get_width(), d.get_height()
    _, ox, oy = d.get_offsets()
    fmt = drawable_format(d, linear=False)
    data, shape = read_pixels(d, (0, 0, w, h), fmt)
    selection = None
    if not Gimp.Selection.is_empty(image):
        ok, sx, sy, sw, sh = d.mask_intersect()
        if not ok or sw <= 0 or sh <= 0:
            msg = f"the selection does not cover any of '{d.get_name()}'"
            raise ValueError(msg)
        raw = image.get_selection().get_buffer().get(
            Gegl.Rectangle.new(ox, oy, w, h), 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE
        )
        selection = (bytes(raw), (h, w, 1))
    Gimp.progress_init(f"Clearshot: {spec.title}")
    info: dict[str, Any] = {}
    t0 = time.monotonic()
    arrays = run_hybrid(request, data, shape, engine, selection=selection,
                        progress=_progress(), info=info)
    _end_progress_before_writing()
    provenance = json.dumps(info.get("provenance", {}))
    log.info("%s on %s in %.2fs: %s", spec.name, d.get_name(), time.monotonic() - t0,
             info.get("message", ""))
    recipe_name = info.get("provenance", {}).get("recipe", {}).get("name", request["recipe"])
    rect = Gegl.Rectangle.new(0, 0, w, h)
    image.undo_group_start()
    try:
        group = Gimp.GroupLayer.new(image, f"Clearshot {recipe_name}")
        image.insert_layer(group, d.get_parent(), image.get_item_position(d))
        for i, meta in enumerate(info["layers"]):  # bottom to top: each goes on top
            layer = Gimp.Layer.new(image, meta["name"], w, h, d.type(), meta["opacity_pct"],
                                   Gimp.LayerMode.NORMAL)
            image.insert_layer(layer, group, 0)
            layer.set_offsets(ox, oy)
            _linear_composite(layer)
            buffer = layer.get_buffer()
            buffer.set(rect, fmt, arrays[f"layer{i}"][0])
            buffer.flush()
            if meta["has_mask"]:
                mask = layer.create_mask(Gimp.AddMaskType.WHITE)
                layer.add_mask(mask)
                mbuf = mask.get_buffer()
                mbuf.set(rect, MASK_FORMAT, arrays[f"mask{i}"][0])
                mbuf.flush()
                mask.update(0, 0, w, h)
            layer.update(0, 0, w, h)
        _attach_provenance(group, provenance)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return group


def _linear_composite(layer: Gimp.Layer) -> None:
    """Composite in linear light (``LayerStack.flatten``'s blend), where GIMP allows it."""
    space = getattr(Gimp.LayerColorSpace, "RGB_LINEAR", None)
    if space is None or not hasattr(layer, "set_composite_space"):
        return
    try:
        layer.set_composite_space(space)
    except (TypeError, GLib.Error) as exc:
        log.info("composite space left as it was: %s", exc)


def _attach_provenance(item: Gimp.Item, text: str) -> None:
    """The recipe, its parameters and the first pass as a persistent parasite (JSON)."""
    try:
        parasite = Gimp.Parasite.new("clearshot-provenance", Gimp.PARASITE_PERSISTENT,
                                     list(text.encode("utf-8")))
        item.attach_parasite(parasite)
    except (TypeError, AttributeError, GLib.Error) as exc:  # provenance is a bonus, not a must
        log.warning("provenance not attached: %s", exc)


def _pictures_image(pictures: dict[str, tuple[bytes, Any]]) -> Gimp.Image:
    """A new 8-bit grayscale image holding the engine's pictures as layers (PSF on top)."""
    layers = {"PSF": pictures["psf"], "Focus map": pictures["focus"]}
    width = max(shape[1] for _, shape in layers.values())
    height = max(shape[0] for _, shape in layers.values())
    new = Gimp.Image.new(width, height, Gimp.ImageBaseType.GRAY)
    try:
        new.undo_disable()
        for name in reversed(ANALYZE_LAYERS):  # bottom first; each goes on top
            data, (h, w, _) = layers[name]
            layer = Gimp.Layer.new(new, name, w, h, Gimp.ImageType.GRAY_IMAGE, 100.0,
                                   Gimp.LayerMode.NORMAL)
            new.insert_layer(layer, None, 0)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, w, h), "Y' float", data)
            buffer.flush()
            layer.update(0, 0, w, h)
        new.undo_enable()
    except Exception:
        new.delete()
        raise
    return new


def _show(image: Gimp.Image) -> None:
    """Open a window on ``image``; without a user interface (gimp-console) GIMP has no
    display to give, and the image is only returned."""
    try:
        Gimp.Display.new(image)
        Gimp.displays_flush()
    except (TypeError, GLib.Error) as exc:  # "constructor returned NULL"
        log.info("no display for the new image (%s); it is returned to the caller", exc)


def _values(config: Gimp.ProcedureConfig, spec: Spec) -> dict[str, Any]:
    return {a.name: config.get_property(a.name) for a in spec.args}


class ClearshotPlugIn(Gimp.PlugIn):
    """Filters › Deblur › Deblur…, Unsharp Mask…, Hybrid sharpen (layers)… and Analyze blur…"""

    def do_query_procedures(self) -> list[str]:
        return list(SPECS)

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        spec = SPECS[name]
        procedure = Gimp.ImageProcedure.new(
            self, name, Gimp.PDBProcType.PLUGIN, self._run, spec
        )
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE
            if spec.analyze or spec.layers
            else Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        procedure.set_menu_label(spec.menu_label)
        procedure.add_menu_path(MENU_PATH)
        procedure.set_documentation(spec.blurb, spec.help, name)
        procedure.set_attribution("Clearshot", "Clearshot contributors", "2026")
        for arg in spec.args:
            _add_argument(procedure, arg)
        if spec.analyze:
            flags = GObject.ParamFlags.READWRITE
            procedure.add_image_return_value(
                "image", "Image", "New image with the PSF and Focus map layers", False, flags
            )
            procedure.add_string_return_value(
                "diagnosis", "Diagnosis", "What blurred the layer, as JSON", "", flags
            )
        return procedure

    def _run(self, procedure, run_mode, image, drawables, config, spec: Spec):
        _setup_logging()
        try:
            engine = load_config(PLUGIN_DIR)
            if spec.analyze:  # nothing to set: no dialog
                new, text = analyze_drawable(image, drawables, engine)
                if run_mode == Gimp.RunMode.INTERACTIVE:
                    _show(new)
                return Gimp.ValueArray.new_from_values([
                    GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
                    GObject.Value(Gimp.Image, new),
                    GObject.Value(GObject.TYPE_STRING, text),
                ])
            if run_mode == Gimp.RunMode.INTERACTIVE:
                from .dialog import run_dialog

                if not run_dialog(procedure, config, spec, image, drawables, engine):
                    return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            if spec.layers:
                hybrid_on_drawable(image, drawables, _values(config, spec), engine)
            else:
                apply_to_drawables(spec, image, drawables, _values(config, spec), engine)
        except Exception as exc:  # every failure becomes a PDB status with a message
            return _failure(procedure, exc)
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def _failure(procedure: Gimp.Procedure, exc: BaseException):
    status = getattr(Gimp.PDBStatusType, status_for(exc))
    try:
        Gimp.progress_end()
    except GLib.Error:
        pass
    if isinstance(exc, PluginCancelled) or status == Gimp.PDBStatusType.CANCEL:
        log.info("%s cancelled", procedure.get_name())
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    message = message_for(exc, procedure.get_name())
    log.error("%s", message, exc_info=exc)
    error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(status, error)
