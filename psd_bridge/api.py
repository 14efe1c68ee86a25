"""Python API of the PSD bridge: open a PSD/PSB, pick layers, apply engine operations, splice.

    from psd_bridge.api import open_document, sharpen_operation
    doc = open_document("in.psd")
    layer = doc.find("Group/Portrait")
    doc.apply_to_layer(layer, sharpen_operation(amount_pct=120), mask=MaskSource.own())
    report = doc.save("out.psd")

Writing is a *splice*: every byte that was not edited is copied from the original file; only
edited channels, the rectangle/length table of edited records, new records, enclosing lengths,
the composite rows under the edit, the thumbnail (refreshed when the composite changed) and
the XMP packet (when a recipe ran: its provenance) differ. psd-tools provides the layer tree
(names, kinds, groups, clipping) and the channel codecs; the bytes are located by
:mod:`psd_bridge.records`.

An :class:`Operation` is a callable on the layer's pixels in the file's own dtype, (H, W, C)
with the layer's transparency last when it has one, plus a description of the layer it makes
(name, opacity, blend mode). :meth:`PSDDocument.apply_recipe` runs a recipe
(:func:`core.layer_stack.run_recipe`) on a layer and stages its layer stack as new layers with
their masks, bottom to top, directly above the target.
"""

from __future__ import annotations

import fnmatch
import io
import mmap
import os
import secrets
import shutil
import struct
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ClearshotError
from core.progress import ProgressCallback, Reporter

from . import records as R
from .composite import CompositeRows, _zip_planes, encode_with_rows, read_rows
from .records import PSDFormatError

__all__ = [
    "LayerRef",
    "Operation",
    "MaskSource",
    "PSDDocument",
    "LayerSelectionError",
    "UnsupportedDocumentError",
    "open_document",
    "iter_pixel_layers",
    "sharpen_operation",
    "deblur_operation",
    "ai_operation",
    "recipe_operation",
    "write_recipe_layers",
    "SUPPORTED_MODES",
    "AUTO_MASKS",
]

#: Colour modes whose layers the bridge edits. CMYK and Lab documents open, list and no-op
#: save losslessly, but editing is refused: the engine's deconvolution works in linear RGB
#: light and the USM thresholds are defined on RGB/gray levels.
SUPPORTED_MODES = {1: "Grayscale", 3: "RGB"}
_NO_LAYER_MODES = {0: "Bitmap", 2: "Indexed", 7: "Multichannel", 8: "Duotone"}
_COLOUR_CHANNELS = {1: 1, 3: 3}
_FULL = {8: 255, 16: 65535, 32: 1.0}
_STRIP_ROWS = 256
#: Masks the engine finds on the target layer's pixels (:mod:`core.masks`).
AUTO_MASKS = ("faces", "eyes", "subject", "detail")


class LayerSelectionError(ValueError):
    """A layer name/path/glob matched nothing, or more than one layer where one was needed."""


class UnsupportedDocumentError(ValueError):
    """The document or layer cannot be edited (colour mode, depth, layer kind)."""


# ----------------------------------------------------------------------------- operations
@dataclass(frozen=True)
class Operation:
    """One engine pass: ``func(pixels, linear=, progress=)`` on native-dtype (H, W, C) pixels.

    ``layer_name`` names the new layer (``{target}`` is replaced by the target's name);
    ``opacity`` (0..255) and ``blend_mode`` (4-byte PSD key) describe it.
    """

    name: str
    func: Callable[..., np.ndarray]
    layer_name: str = "{target} sharpened"
    opacity: int = 255
    blend_mode: bytes = b"norm"
    params: dict = field(default_factory=dict)
    #: provenance of each run (a recipe's :attr:`LayerStack.provenance`), newest last
    provenance: list = field(default_factory=list, compare=False, repr=False)


def sharpen_operation(amount_pct: float = 120.0, radius_px: float = 1.5,
                      threshold_levels: float = 5.0, *, halo_limit: float | None = None,
                      luminance_only: bool = False) -> Operation:
    """An Operation calling :func:`core.sharpen.unsharp_mask`."""
    from core.sharpen import UnsharpParams, unsharp_mask

    UnsharpParams(amount_pct, radius_px, threshold_levels, halo_limit, luminance_only)  # validate

    def run(pixels: np.ndarray, *, linear: bool, progress: ProgressCallback | None = None):
        return unsharp_mask(pixels, amount_pct, radius_px, threshold_levels,
                            halo_limit=halo_limit, luminance_only=luminance_only,
                            clip=not linear, progress=progress)

    params = dict(amount_pct=amount_pct, radius_px=radius_px, threshold_levels=threshold_levels,
                  halo_limit=halo_limit, luminance_only=luminance_only)
    return Operation("sharpen", run, "{target} sharpened", params=params)


def deblur_operation(psf: np.ndarray, *, method: str = "sparse", strength: float = 50.0,
                     channels: str = "rgb") -> Operation:
    """An Operation calling :func:`core.deblur.deblur` (32-bit files are linear light)."""
    from core.deblur import deblur
    from core.psf import normalize_psf

    psf = normalize_psf(psf)

    def run(pixels: np.ndarray, *, linear: bool, progress: ProgressCallback | None = None):
        ch = channels if pixels.shape[2] >= 3 else "rgb"
        return deblur(pixels, psf, method=method, strength=strength, channels=ch,
                      linear_input=linear, clip=not linear, progress=progress)

    params = dict(method=method, strength=strength, channels=channels, psf_shape=psf.shape)
    return Operation("deblur", run, "{target} deblurred", params=params)


def ai_operation(*, strength: float = 50.0, model: str | None = None) -> Operation:
    """An Operation calling :func:`core.ai.ai_deblur`: the learned blind deblur pass (32-bit
    files are linear light). The model is loaded (and its sha256 checked) here, before any
    layer is touched."""
    from core.ai import ai_deblur, default_model_name, load_restorer, model_info

    if not (0 <= strength <= 100):
        msg = f"strength must be in 0..100, got {strength}"
        raise ValueError(msg)
    restorer = load_restorer(model)

    def run(pixels: np.ndarray, *, linear: bool, progress: ProgressCallback | None = None):
        return ai_deblur(pixels, model=restorer, strength=strength, linear_input=linear,
                         progress=progress)

    params: dict[str, Any] = dict(strength=strength, model=model or "default")
    if model is None:
        info = model_info(default_model_name())
        params.update(model_name=info.name, model_sha256=info.sha256)
    return Operation("ai", run, "{target} deblurred (AI)", params=params)


def recipe_operation(recipe: Any) -> Operation:
    """An Operation writing a recipe's flattened result (``--replace-pixels --recipe``).

    ``recipe`` is a :class:`core.recipes.Recipe`. Layers blend as Photoshop does, on the
    stored values (``blend_space="encoded"``); 32-bit documents are linear light.
    """
    from core.layer_stack import run_recipe

    runs: list = []

    def run(pixels: np.ndarray, *, linear: bool, progress: ProgressCallback | None = None):
        stack = run_recipe(pixels, recipe, linear_input=linear, blend_space="encoded",
                           progress=progress)
        runs.append(stack.provenance)
        return stack.flatten()

    params = dict(recipe=recipe.name, version=recipe.version)
    return Operation(f"recipe {recipe.name}", run, "{target} " + recipe.name, params=params,
                     provenance=runs)


# ----------------------------------------------------------------------------- masks
@dataclass(frozen=True)
class MaskSource:
    """Where a mask comes from: ``own`` (the target's layer mask), ``layer`` (another layer's
    mask, by path), ``channel`` (a named alpha channel of the document), ``image`` (a grayscale
    image file the size of the canvas), ``black``, or found by the engine on the target
    layer's pixels: ``faces``, ``eyes``, ``subject`` (the in-focus region) or ``detail``
    (edges and texture) (:mod:`core.masks`)."""

    kind: str
    ref: str = ""

    @classmethod
    def own(cls) -> MaskSource:
        return cls("own")

    @classmethod
    def layer(cls, path: str) -> MaskSource:
        return cls("layer", path)

    @classmethod
    def channel(cls, name: str) -> MaskSource:
        return cls("channel", name)

    @classmethod
    def image(cls, path: str) -> MaskSource:
        return cls("image", path)

    @classmethod
    def parse(cls, text: str) -> MaskSource:
        """``own``, ``black``, ``faces``, ``eyes``, ``subject``, ``detail``, ``layer:PATH``,
        ``channel:NAME``, ``image:FILE`` (or a bare existing file)."""
        if text in ("own", "black", *AUTO_MASKS):
            return cls(text)
        kind, _, ref = text.partition(":")
        if kind in ("layer", "image", "channel") and ref:
            return cls(kind, ref)
        if os.path.exists(text):
            return cls("image", text)
        msg = ("mask must be own, black, faces, eyes, subject, detail, layer:PATH, "
               f"channel:NAME or image:FILE, got {text!r}")
        raise ValueError(msg)

    def describe(self) -> str:
        return self.kind + (f":{self.ref}" if self.ref else "")


# ----------------------------------------------------------------------------- layers
@dataclass
class LayerRef:
    """A layer of the document: where it sits and whether the bridge can process it."""

    index: int  # record index in the file (bottom to top)
    path: str
    name: str
    kind: str
    rect: tuple[int, int, int, int]  # left, top, right, bottom
    visible: bool
    clipping: bool
    problem: str | None  # why it cannot be processed, None when it can
    layer: Any = field(repr=False, default=None)  # the psd-tools layer

    @property
    def processable(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return dict(path=self.path, kind=self.kind, rect=list(self.rect), visible=self.visible,
                    processable=self.processable, problem=self.problem)


@dataclass
class _Edit:
    target: LayerRef
    op: Operation
    mode: str  # "replace" or "new-layer"
    mask: str
    planes: dict[int, bytes] = field(default_factory=dict)  # replace: cid -> stored bytes
    record: bytes = b""  # new layer: record bytes
    channels: list[bytes] = field(default_factory=list)  # new layer: channel bytes
    new_name: str = ""
    old_pixels: np.ndarray | None = None
    new_pixels: np.ndarray | None = None
    weight: np.ndarray | None = None  # new layer: mask in [0, 1] over the rect (None: black)


def _groups_of(layer) -> list:
    out = []
    p = layer.parent
    while p is not None and p.kind != "psdimage":
        out.append(p)
        p = p.parent
    return out


class PSDDocument:
    """An opened PSD/PSB: the original bytes (memory-mapped), their layout, psd-tools' tree."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        size = os.fstat(self._fh.fileno()).st_size
        if size == 0:
            self._fh.close()
            msg = f"{self.path}: empty file, not a PSD/PSB"
            raise PSDFormatError(msg)
        self.buf = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.layout = R.locate(self.buf, self.path)
            self.header = self.layout.header
            self.psd = self._open_tree()
            self._layers = self._index_layers()
        except BaseException:
            self.close()
            raise
        self._edits: list[_Edit] = []
        self._provenance: list[dict] = []  # recipe runs, stored in the XMP packet by save()
        self._auto: dict[tuple[str, int], tuple[np.ndarray, str]] = {}  # found masks, notes

    # -- setup
    def _open_tree(self):
        from psd_tools import PSDImage

        try:
            return PSDImage.open(io.BytesIO(R.skeleton(self.buf, self.layout)))
        except (ValueError, EOFError, struct.error, OSError, KeyError, IndexError) as exc:
            msg = f"{self.path}: psd-tools cannot parse the file ({type(exc).__name__}: {exc})"
            raise PSDFormatError(msg) from None

    def _index_layers(self) -> list[LayerRef]:
        li = self.psd._record._get_layer_info()
        recs = list(li.layer_records) if li is not None and li.layer_records else []
        if len(recs) != len(self.layout.records):
            msg = (f"{self.path}: psd-tools sees {len(recs)} layer records, the bridge "
                   f"{len(self.layout.records)}; refusing to edit an ambiguous file")
            raise PSDFormatError(msg)
        where = {id(r): i for i, r in enumerate(recs)}
        out = []
        for layer in self.psd.descendants():
            idx = where.get(id(layer._record))
            if idx is None:
                continue
            names = [g.name for g in reversed(_groups_of(layer))] + [layer.name]
            t, le, b, r = self.layout.records[idx].rect
            ref = LayerRef(idx, "/".join(names), layer.name, layer.kind, (le, t, r, b),
                           layer.visible, bool(layer.clipping), None, layer)
            ref.problem = self._problem(ref)
            out.append(ref)
        out.sort(key=lambda ref: -ref.index)  # top first, as Photoshop's Layers panel
        return out

    def _problem(self, ref: LayerRef) -> str | None:
        h = self.header
        if ref.kind == "group":
            return "a group (select the layers inside it)"
        if ref.kind == "type":
            return "a text layer (rasterize it in Photoshop to process it)"
        if ref.kind == "smartobject":
            return "a smart object (its pixels live in the embedded file; rasterize it first)"
        if ref.kind != "pixel":
            return f"a {ref.kind} layer (no pixels of its own)"
        if h.mode not in SUPPORTED_MODES:
            return (f"the document is {h.mode_name}; the bridge edits RGB and Grayscale only "
                    "(in Photoshop: Image > Mode > RGB Color, or work on an RGB copy; a CMYK "
                    "conversion back afterwards is a second, lossy step)")
        if h.depth not in (8, 16, 32):
            return f"{h.depth}-bit documents are not edited"
        le, t, r, b = ref.rect
        if r <= le or b <= t:
            return "an empty layer (no pixels)"
        ids = {c for c, _ in self.layout.records[ref.index].channels}
        if not set(range(_COLOUR_CHANNELS[h.mode])) <= ids:
            return "a layer without all colour channels"
        return None

    def _require_open(self) -> None:
        if getattr(self, "buf", None) is None:
            msg = (f"{self.path}: the document is closed (closed, or saved over its own file); "
                   "open it again with open_document()")
            raise ValueError(msg)

    def close(self) -> None:
        buf = getattr(self, "buf", None)
        if buf is not None:
            buf.close()
            self.buf = None
        self._fh.close()

    def __enter__(self) -> PSDDocument:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- listing and selection
    @property
    def layers(self) -> list[LayerRef]:
        """Every layer, top of the document first (as Photoshop's Layers panel lists them)."""
        return list(self._layers)

    def find_all(self, pattern: str) -> list[LayerRef]:
        """Layers matching a path (``Group/Sub/Layer``), a plain name, or a glob (``*``, ``?``)."""
        if any(ch in pattern for ch in "*?["):
            return [L for L in self._layers
                    if fnmatch.fnmatchcase(L.path, pattern) or fnmatch.fnmatchcase(L.name, pattern)]
        if "/" in pattern:
            return [L for L in self._layers if L.path == pattern]
        return [L for L in self._layers if L.name == pattern]

    def find(self, pattern: str) -> LayerRef:
        """Exactly one layer for a path or name; ambiguity and absence raise with the matches."""
        hits = self.find_all(pattern)
        if not hits:
            names = ", ".join(repr(L.path) for L in self._layers[:20]) or "none"
            msg = f"no layer matches {pattern!r}; layers in {self.path}: {names}"
            raise LayerSelectionError(msg)
        if len(hits) > 1:
            paths = "; ".join(f"{L.path!r} ({L.kind}, record {L.index})" for L in hits)
            msg = f"{pattern!r} is ambiguous, {len(hits)} layers match: {paths}. Use a full path."
            raise LayerSelectionError(msg)
        return hits[0]

    def select(self, patterns: Iterable[str] | None) -> tuple[list[LayerRef], list[LayerRef]]:
        """(layers to process, matched layers that cannot be processed); None = all pixel layers.

        Plain names and paths must match exactly one layer; globs may match many.
        """
        if patterns is None:
            chosen = [L for L in self._layers if L.kind == "pixel" or L.kind in ("type",
                                                                               "smartobject")]
        else:
            chosen = []
            for p in patterns:
                hits = self.find_all(p) if any(ch in p for ch in "*?[") else [self.find(p)]
                if not hits:
                    msg = f"no layer matches the pattern {p!r}"
                    raise LayerSelectionError(msg)
                chosen += [h for h in hits if h not in chosen]
        return [L for L in chosen if L.processable], [L for L in chosen if not L.processable]

    # -- pixels
    def _check_editable(self, ref: LayerRef) -> None:
        if self.header.mode in _NO_LAYER_MODES:
            msg = f"{self.header.mode_name} documents cannot hold edited layers in Photoshop"
            raise UnsupportedDocumentError(msg)
        if ref.problem:
            msg = f"layer {ref.path!r} cannot be processed: it is {ref.problem}"
            raise UnsupportedDocumentError(msg)

    def _channel(self, idx: int, cid: int, width: int, height: int) -> np.ndarray | None:
        rec = self.layout.records[idx]
        for (c, _n), span in zip(rec.channels, rec.spans, strict=True):
            if c == cid:
                return R.decode_channel(self.buf, span, width, height, self.header,
                                        what=f"{self.path}: layer record {idx} channel {cid}")
        return None

    def read_pixels(self, ref: LayerRef) -> np.ndarray:
        """The layer's pixels in the file's dtype, (H, W, C[+1]): transparency last if stored."""
        self._check_editable(ref)
        le, t, r, b = ref.rect
        w, h = r - le, b - t
        n = _COLOUR_CHANNELS[self.header.mode]
        planes = [self._channel(ref.index, c, w, h) for c in range(n)]
        alpha = self._channel(ref.index, -1, w, h)
        if alpha is not None:
            planes.append(alpha)
        return np.stack(planes, axis=2)

    def read_mask(self, ref: LayerRef) -> tuple[np.ndarray, tuple[int, int, int, int], int] | None:
        """The layer's pixel mask: (native (H, W), (left, top, right, bottom), default 0..255)."""
        md = ref.layer._record.mask_data
        if md is None:
            return None
        ids = {c for c, _ in self.layout.records[ref.index].channels}
        if -3 in ids:
            cid, rect, default = -3, (md.real_left, md.real_top, md.real_right,
                                      md.real_bottom), md.real_background_color
        elif -2 in ids:
            cid, rect, default = -2, (md.left, md.top, md.right, md.bottom), md.background_color
        else:
            return None
        w, h = rect[2] - rect[0], rect[3] - rect[1]
        arr = self._channel(ref.index, cid, max(w, 0), max(h, 0))
        return arr, rect, int(default or 0)

    def alpha_channel_names(self) -> list[str]:
        """Names of the document's alpha channels (resource 1045, else 1006), in order."""
        blocks = {rid: (s, e) for rid, s, e in self.layout.resource_blocks}
        names: list[str] = []
        buf = self.buf
        if 1045 in blocks or 1006 in blocks:
            s, e = blocks.get(1045, blocks.get(1006))
            nl = buf[s + 6]
            pos = s + 6 + ((nl + 2) & ~1)
            n = int.from_bytes(buf[pos : pos + 4], "big")
            pos, end = pos + 4, pos + 4 + n
            while pos < end:
                if 1045 in blocks:
                    k = int.from_bytes(buf[pos : pos + 4], "big")
                    if k == 0 or pos + 4 + 2 * k > end:
                        break
                    names.append(bytes(buf[pos + 4 : pos + 4 + 2 * k]).decode(
                        "utf-16-be", "replace").rstrip("\0"))
                    pos += 4 + 2 * k
                else:
                    k = buf[pos]
                    names.append(bytes(buf[pos + 1 : pos + 1 + k]).decode("mac_roman"))
                    pos += 1 + k
        return names

    def read_alpha_channel(self, name: str) -> np.ndarray:
        """A named alpha channel of the document (canvas size, file dtype)."""
        names = self.alpha_channel_names()
        extra = self.header.channels - _COLOUR_CHANNELS.get(self.header.mode, 0)
        if name not in names:
            msg = f"no alpha channel named {name!r}; the document has {names or 'none'}"
            raise ValueError(msg)
        if self.layout.image_problem:
            msg = f"the alpha channels cannot be read: {self.layout.image_problem}"
            raise PSDFormatError(msg)
        # with a merged transparency channel (negative layer count) it comes first, unnamed
        offset = max(extra - len(names), 0)
        idx = _COLOUR_CHANNELS[self.header.mode] + offset + names.index(name)
        if idx >= self.header.channels:
            msg = f"alpha channel {name!r} is not stored in the composite"
            raise PSDFormatError(msg)
        rows = read_rows(self.buf, self.layout.image_data, self.header, 0, self.header.height,
                         channels=[idx])
        return rows.planes[0]

    def _mask_weight(self, source: MaskSource, target: LayerRef) -> np.ndarray | None:
        """A float32 (H, W) weight in [0, 1] over the target's rectangle (None: black mask)."""
        le, t, r, b = target.rect
        if source.kind == "black":
            return None
        if source.kind in AUTO_MASKS:
            return self._auto_mask(source.kind, target)[0]
        if source.kind == "image":
            from core.color import REC709_LUMA
            from core.dtype import to_float32
            from core.io import read_image

            img = to_float32(read_image(source.ref).pixels)
            img = img.reshape(img.shape[0], img.shape[1], -1)
            if img.shape[:2] != (self.header.height, self.header.width):
                msg = (f"mask image {source.ref} is {img.shape[1]}x{img.shape[0]}, the document "
                       f"is {self.header.width}x{self.header.height}; they must match")
                raise ValueError(msg)
            g = img[:, :, :3] @ REC709_LUMA if img.shape[2] >= 3 else img[:, :, 0]
            full = np.zeros((b - t, r - le), np.float32)
            y0, y1, x0, x1 = max(t, 0), min(b, img.shape[0]), max(le, 0), min(r, img.shape[1])
            if y1 > y0 and x1 > x0:
                full[y0 - t : y1 - t, x0 - le : x1 - le] = g[y0:y1, x0:x1]
            return np.clip(full, 0, 1)
        if source.kind == "channel":
            plane = self.read_alpha_channel(source.ref)
            full = np.zeros((b - t, r - le), np.float32)
            H, W = plane.shape
            y0, y1, x0, x1 = max(t, 0), min(b, H), max(le, 0), min(r, W)
            if y1 > y0 and x1 > x0:
                part = plane[y0:y1, x0:x1].astype(np.float32) / _FULL[self.header.depth]
                full[y0 - t : y1 - t, x0 - le : x1 - le] = part
            return np.clip(full, 0, 1)
        owner = target if source.kind == "own" else self.find(source.ref)
        got = self.read_mask(owner)
        if got is None:
            msg = f"layer {owner.path!r} has no pixel layer mask to use as the mask"
            raise ValueError(msg)
        arr, (ml, mt, mr, mb), default = got
        out = np.full((b - t, r - le), default / 255.0, np.float32)
        x0, x1, y0, y1 = max(le, ml), min(r, mr), max(t, mt), min(b, mb)
        if x1 > x0 and y1 > y0:
            part = arr[y0 - mt : y1 - mt, x0 - ml : x1 - ml].astype(np.float32)
            out[y0 - t : y1 - t, x0 - le : x1 - le] = part / _FULL[self.header.depth]
        return np.clip(out, 0, 1)

    def _auto_mask(self, kind: str, target: LayerRef) -> tuple[np.ndarray, str]:
        """A mask the engine finds on the target's colour channels (32-bit: sRGB-encoded
        first, the detectors expect display values): float32 (H, W) and a note for the plan.
        """
        key = (kind, target.index)
        if key not in self._auto:
            from core import masks

            n = _COLOUR_CHANNELS[self.header.mode]
            px = self.read_pixels(target)[:, :, :n]
            if self.header.depth == 32 and kind != "subject":
                from core.color import linear_to_srgb

                px = np.clip(linear_to_srgb(np.clip(px, 0, None)), 0, 1).astype(np.float32)
            if kind == "faces":
                got = masks.face_mask(px)
            elif kind == "eyes":
                got = masks.eye_mask(px)
            elif kind == "subject":
                got = masks.subject_mask(px, linear_input=self.header.depth == 32)
            else:
                got = masks.detail_mask(px)
            if isinstance(got, masks.Detections):
                weight = got.mask
                note = f"{kind} ({len(got.boxes)} found)"
            else:
                weight = got
                note = f"{kind} ({float(got.mean()):.0%} of the layer)"
            self._auto[key] = (np.clip(weight, 0, 1).astype(np.float32), note)
        return self._auto[key]

    # -- edits
    def apply_to_layer(self, ref: LayerRef, op: Operation, *, mode: str = "new-layer",
                       mask: MaskSource | None = None,
                       progress: ProgressCallback | None = None) -> None:
        """Run ``op`` on a layer and stage the result (written by :meth:`save`).

        ``mode="new-layer"``: a new layer above the target's clipping stack with a layer mask
        (``mask`` or black). ``mode="replace"``: the target's colour channels replaced, blended
        through ``mask`` when one is given; transparency and every other property kept.
        """
        if mode not in ("new-layer", "replace"):
            msg = f"mode must be 'new-layer' or 'replace', got {mode!r}"
            raise ValueError(msg)
        self._require_open()
        self._check_editable(ref)
        if any(e.target.index == ref.index and e.mode == "replace" for e in self._edits):
            msg = f"layer {ref.path!r} is already replaced in this session; save first"
            raise ValueError(msg)
        h = self.header
        weight = self._mask_weight(mask, ref) if mask is not None else None
        pixels = self.read_pixels(ref)
        linear = h.depth == 32
        result = op.func(pixels, linear=linear, progress=progress)
        if result.shape != pixels.shape or result.dtype != pixels.dtype:
            msg = (f"operation {op.name!r} returned {result.dtype} {result.shape}, expected "
                   f"{pixels.dtype} {pixels.shape}")
            raise ClearshotError(msg)
        if op.provenance:
            self._provenance.append(dict(layer=ref.path, output="replace-pixels"
                                         if mode == "replace" else "new-layer",
                                         **op.provenance[-1]))
        n = _COLOUR_CHANNELS[h.mode]
        rec = self.layout.records[ref.index]
        edit = _Edit(ref, op, mode, mask.describe() if mask else
                     ("black" if mode == "new-layer" else "none"))
        if mask is not None and mask.kind in AUTO_MASKS:
            edit.mask = self._auto_mask(mask.kind, ref)[1]
        if mode == "replace":
            if weight is not None:
                result = _blend(pixels, result, weight, n, h.depth)
            for cid in range(n):
                span = dict(zip([c for c, _ in rec.channels], rec.spans, strict=True))[cid]
                comp = R.channel_compression(self.buf, span)
                if np.array_equal(result[:, :, cid], pixels[:, :, cid]):
                    continue
                edit.planes[cid] = R.encode_channel(result[:, :, cid], comp, h)
            edit.old_pixels, edit.new_pixels = pixels, result
        else:
            self._stage_new_layer(edit, ref, result, weight)
            edit.new_pixels = result
            edit.weight = weight
        self._edits.append(edit)

    def apply_recipe(self, ref: LayerRef, recipe: Any, *, mask: MaskSource | None = None,
                     progress: ProgressCallback | None = None):
        """Run a recipe on a layer and stage its layers as new layers above the target.

        :func:`core.layer_stack.run_recipe` runs on the layer's pixels (the file's dtype;
        32-bit documents are linear light), blending as Photoshop does (stored values). Each
        layer of the stack above the base becomes a new layer, bottom to top, directly above
        the target's clipping stack: its name ("<target> <layer name>"), opacity and layer
        mask (white where the step has no mask, black for a black mask). ``mask``, when
        given, is the recipe's ``selection`` mask source (the layer's own mask, another
        layer's, an alpha channel or an image). Returns the :class:`LayerStack` (its
        ``provenance`` says which first pass ran).
        """
        from core.layer_stack import run_recipe

        self._check_editable(ref)
        pixels = self.read_pixels(ref)
        masks = None
        if mask is not None:
            weight = self._mask_weight(mask, ref)
            if weight is not None:  # "black" is no selection at all
                masks = {"selection": weight}
        stack = run_recipe(pixels, recipe, masks=masks, linear_input=self.header.depth == 32,
                           blend_space="encoded", progress=progress)
        steps = stack.provenance["steps"]
        first = len(self._edits)
        for layer, step in zip(stack.layers[1:], steps, strict=True):
            params = {k: v for k, v in step.items() if k not in ("psf",)}
            params["recipe"] = recipe.name
            op = Operation(f"recipe {recipe.name}: {layer.role}", lambda p, **_: p,
                           "{target} " + layer.name.lower(),
                           opacity=int(round(layer.opacity * 255)), params=params)
            weight = layer.mask
            if weight is None:
                weight = np.ones(pixels.shape[:2], np.float32)
            edit = _Edit(ref, op, "new-layer", layer.mask_source)
            self._stage_new_layer(edit, ref, layer.pixels, weight)
            edit.new_pixels = layer.pixels
            edit.weight = weight
            self._edits.append(edit)
        self._provenance.append(dict(layer=ref.path, output="new-layers",
                                     new_layers=[e.new_name for e in self._edits[first:]],
                                     **stack.provenance))
        return stack

    def _stage_new_layer(self, edit: _Edit, ref: LayerRef, result: np.ndarray,
                         weight: np.ndarray | None) -> None:
        h = self.header
        n = _COLOUR_CHANNELS[h.mode]
        rec = self.layout.records[ref.index]
        le, t, r, b = ref.rect
        comp = 1  # RLE at 8 bits, ZIP with prediction above (see encode_channel)
        chans: list[tuple[int, bytes]] = []
        spans = dict(zip([c for c, _ in rec.channels], rec.spans, strict=True))
        if -1 in spans:
            s = spans[-1]
            chans.append((-1, bytes(self.buf[s[0] : s[1]])))  # same transparency, same bytes
        else:
            full = np.full((b - t, r - le), _FULL[h.depth], R.NATIVE_DTYPE[h.depth])
            chans.append((-1, R.encode_channel(full, comp, h)))
        for cid in range(n):
            chans.append((cid, R.encode_channel(result[:, :, cid], comp, h)))
        if weight is None:
            mplane = np.zeros((b - t, r - le), R.NATIVE_DTYPE[h.depth])
        else:
            mplane = _quantize(weight, h.depth)
        chans.append((-2, R.encode_channel(mplane, comp, h)))
        name = edit.op.layer_name.replace("{target}", ref.name)
        br = bytes(self.buf[rec.blend_ranges[0] : rec.blend_ranges[1]])
        edit.new_name = name
        edit.record = R.new_record(
            rect=(t, le, b, r), channels=[(c, len(d)) for c, d in chans], header=h, name=name,
            layer_id=self._next_layer_id(), blend=edit.op.blend_mode, opacity=edit.op.opacity,
            clipping=1 if ref.clipping else 0, mask_rect=(t, le, b, r), mask_default=0,
            blend_ranges=br,
        )
        edit.channels = [d for _, d in chans]

    def _next_layer_id(self) -> int:
        from psd_tools.constants import Tag

        used = [0]
        for L in self._layers:
            v = L.layer._record.tagged_blocks.get_data(Tag.LAYER_ID)
            if isinstance(v, int):
                used.append(v)
        staged = sum(1 for e in self._edits if e.mode == "new-layer")
        return max(used) + 1 + staged

    def _insert_after(self, ref: LayerRef) -> int:
        """Record index after which a new layer goes: above the target's clipping stack."""
        if ref.clipping:
            return ref.index
        layer = ref.layer
        parent = layer.parent
        siblings = list(parent)
        i = siblings.index(layer)
        last = layer
        for s in siblings[i + 1 :]:
            if not s.clipping:
                break
            last = s
        where = {id(L.layer): L.index for L in self._layers}
        return where[id(last)]

    # -- report
    @property
    def edits(self) -> list[_Edit]:
        return list(self._edits)

    def plan(self) -> dict:
        """What :meth:`save` would change: layers, new layers, composite region."""
        region = self._dirty_region()
        comp = self._composite_plan(region)
        return dict(
            file=self.path,
            document=dict(width=self.header.width, height=self.header.height,
                          depth=self.header.depth, mode=self.header.mode_name,
                          format="PSB" if self.header.version == 2 else "PSD"),
            changes=[dict(layer=e.target.path, operation=e.op.name, params=e.op.params,
                          output=e.mode, mask=e.mask,
                          new_layer=e.new_name or None,
                          changed_channels=sorted(e.planes) if e.mode == "replace" else None)
                     for e in self._edits],
            composite=comp,
        )

    def _dirty_region(self) -> tuple[int, int, int, int] | None:
        boxes = []
        for e in self._edits:
            if e.mode == "new-layer" and (e.weight is None or not e.weight.any()):
                continue  # black mask: nothing visible changes
            if e.mode == "replace" and not e.planes:
                continue
            if any(not g.visible for g in _groups_of(e.target.layer)) or (
                    e.mode == "replace" and not e.target.visible):
                continue  # hidden: the composite does not show it
            boxes.append(e.target.rect)
        if not boxes:
            return None
        W, H = self.header.width, self.header.height
        le = max(min(b[0] for b in boxes), 0)
        t = max(min(b[1] for b in boxes), 0)
        r = min(max(b[2] for b in boxes), W)
        b = min(max(b[3] for b in boxes), H)
        return (le, t, r, b) if r > le and b > t else None

    def _composite_plan(self, region) -> dict:
        if region is None:
            return dict(action="kept", reason="no visible pixel changed")
        if self.layout.image_problem:
            return dict(action="kept", reason=f"stale: {self.layout.image_problem}")
        if not self.psd.has_preview():
            return dict(action="kept", reason="the file stores no real composite "
                        "(maximize compatibility off); Photoshop recomposites on open")
        fast = self._fast_path_problem()
        le, t, r, b = region
        frac = (r - le) * (b - t) / (self.header.width * self.header.height)
        plan = dict(action="update", region=[le, t, r, b], fraction=round(frac, 4),
                    method="exact blend" if fast is None else "psd-tools render of the region",
                    why_render=fast, thumbnail=self._thumbnail_policy())
        if fast is None:
            above, _ = self._layers_above(self._edits[0].target, region)
            plan["through_layers_above"] = [L.path for L in reversed(above)]
        return plan

    def _thumbnail_policy(self) -> str:
        h = self.header
        if not any(rid in (1033, 1036) for rid, _, _ in self.layout.resource_blocks):
            return "none stored"
        if h.depth not in (8, 16) or h.mode not in SUPPORTED_MODES:
            return "dropped (Photoshop rebuilds it)"
        return "refreshed (1036)"

    def _fast_path_problem(self) -> str | None:
        """None when the composite can be updated exactly by blending the changed layers."""
        h = self.header
        if h.depth not in (8, 16):
            return "32-bit composite"
        if h.channels < _COLOUR_CHANNELS.get(h.mode, 99):
            return "composite without all colour channels"
        edited = {e.target.index for e in self._edits}
        if len(edited) != 1:
            return "more than one layer changed"
        if any(e.mode == "new-layer" and e.weight is None for e in self._edits) and any(
                e.mode == "new-layer" and e.weight is not None for e in self._edits):
            return "mixed masks"
        if any(e.mode == "new-layer" and e.op.blend_mode != b"norm" for e in self._edits):
            return "new layer with a blend mode other than normal"
        ref = self._edits[0].target
        if ref.clipping:
            return "clipped layer"
        why = self._plain_problem(ref)
        if why:
            return f"{why} on the layer"
        region = self._dirty_region() or ref.rect
        return self._layers_above(ref, region)[1]

    def _plain_problem(self, ref: LayerRef) -> str | None:
        """Why a layer (and its groups) does not blend as a plain "over", None when it does.

        Plain: normal blend (groups: normal or pass through at full opacity and fill, no
        mask), no effects, no vector mask, no knockout, no blend-if ranges, no mask density or
        feather. Its contribution to the composite is then ``alpha * opacity * fill * mask``.
        """
        from psd_tools.constants import Tag

        by_layer = {id(L.layer): L for L in self._layers}
        for item in [ref, *(by_layer[id(g)] for g in _groups_of(ref.layer)
                            if id(g) in by_layer)]:
            layer = item.layer
            group = item.kind == "group"
            if layer.blend_mode.name not in (("NORMAL", "PASS_THROUGH") if group
                                             else ("NORMAL",)):
                return "blend mode" + (" of its group" if item is not ref else "")
            if layer.has_effects() or layer.has_vector_mask():
                return "effects or vector mask" + (" on its group" if item is not ref else "")
            if layer.tagged_blocks.get_data(Tag.KNOCKOUT_SETTING, 0):
                return "knockout"
            if group and (layer.opacity != 255 or
                          layer.tagged_blocks.get_data(Tag.BLEND_FILL_OPACITY, 255) != 255 or
                          layer.has_mask()):
                return "group opacity, fill or mask"
            mask = layer.mask
            params = mask.parameters if mask is not None else None
            if mask is not None and not mask.disabled and (mask.has_real() or (params and (
                    getattr(params, "user_mask_density", None) not in (None, 255) or
                    getattr(params, "user_mask_feather", None) not in (None, 0, 0.0)))):
                return "mask density, feather or a vector-combined mask"
            br = bytes(self.buf[slice(*self.layout.records[item.index].blend_ranges)])
            if br.strip(b"\x00\xff") or any(br[i : i + 4] != b"\x00\x00\xff\xff"
                                            for i in range(0, len(br), 4)):
                return "blend-if ranges"
        return None

    def _layers_above(self, ref: LayerRef,
                      region: tuple[int, int, int, int]) -> tuple[list[LayerRef], str | None]:
        """Visible layers above ``ref`` that overlap ``region``, bottom to top, and why the
        exact update cannot see through them (None when every one is a plain pixel, text or
        smart-object layer)."""
        left, top, right, bottom = region
        found = []
        for L in self._layers:
            if L.index <= ref.index or L.kind == "group" or not L.visible:
                continue
            if any(not g.visible for g in _groups_of(L.layer)):
                continue
            le, t, r, b = L.rect
            empty = r <= le or b <= t
            hits = not empty and le < right and r > left and t < bottom and b > top
            if L.kind not in ("pixel", "type", "smartobject"):
                if empty or hits:  # fills and adjustments cover the canvas whatever the rect
                    return [], f"layer {L.path!r} ({L.kind}) above the edited layer"
                continue
            # text and smart objects above composite from their stored pixels (the rendered
            # text, the placed and filtered content), as Photoshop does
            if not hits:
                continue
            if L.clipping:
                return [], f"clipped layer {L.path!r} above the edit"
            why = self._plain_problem(L)
            if why:
                return [], f"layer {L.path!r} above the edit: {why}"
            ids = {c for c, _ in self.layout.records[L.index].channels}
            if not set(range(_COLOUR_CHANNELS[self.header.mode])) <= ids:
                return [], f"layer {L.path!r} above the edit lacks colour channels"
            found.append(L)
        found.sort(key=lambda L: L.index)
        return found, None

    def _coverage(self, ref: LayerRef, box: tuple[int, int, int, int],
                  colour: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """A plain layer over ``box`` (inside its rect): its coverage, float32 (h, w) =
        transparency x opacity x fill x mask, and (``colour``) its colours in [0, 1], (n, h, w).

        Only the rows of ``box`` are decoded (RAW and RLE channels)."""
        from psd_tools.constants import Tag

        h = self.header
        full = float(_FULL[h.depth])
        le, t, r, b = ref.rect
        x0, y0, x1, y1 = box
        rec = self.layout.records[ref.index]
        spans = dict(zip([c for c, _ in rec.channels], rec.spans, strict=True))
        what = f"{self.path}: layer {ref.path!r}"

        def rows(cid: int, w: int, hh: int, ya: int, yb: int) -> np.ndarray:
            return R.decode_rows(self.buf, spans[cid], w, hh, h, ya, yb,
                                 what=f"{what} channel {cid}")

        layer = ref.layer
        k = layer.opacity / 255.0 * layer.tagged_blocks.get_data(Tag.BLEND_FILL_OPACITY,
                                                                  255) / 255.0
        if -1 in spans:
            a = rows(-1, r - le, b - t, y0 - t, y1 - t)[:, x0 - le : x1 - le]
            a = a.astype(np.float32) * np.float32(k / full)
        else:
            a = np.full((y1 - y0, x1 - x0), k, np.float32)
        if layer.mask is not None and not layer.mask.disabled and -2 in spans:
            md = layer._record.mask_data
            ml, mt, mr, mb = md.left, md.top, md.right, md.bottom
            m = np.full(a.shape, (md.background_color or 0) / 255.0, np.float32)
            ix0, ix1, iy0, iy1 = max(x0, ml), min(x1, mr), max(y0, mt), min(y1, mb)
            if ix1 > ix0 and iy1 > iy0:
                part = rows(-2, mr - ml, mb - mt, iy0 - mt, iy1 - mt)[:, ix0 - ml : ix1 - ml]
                m[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = part.astype(np.float32) / full
            a *= m
        if not colour:
            return a, None
        n = _COLOUR_CHANNELS[h.mode]
        col = np.stack([rows(c, r - le, b - t, y0 - t, y1 - t)[:, x0 - le : x1 - le]
                        for c in range(n)]).astype(np.float32)
        col *= np.float32(1.0 / full)
        return a, col

    def _see_through(self, ref: LayerRef, region: tuple[int, int, int, int],
                     colour: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What the plain layers above ``ref`` do to it over ``region``: the transmittance
        ``T`` = prod(1 - a_j), float32 (H, W), and (``colour``) their own premultiplied
        contribution ``S``, (n, H, W), so that composite = T x (composite at ref) + S
        (the stored composite is opaque). (None, None) when nothing above overlaps."""
        above, why = self._layers_above(ref, region)
        if why:
            msg = f"internal: exact composite update through {why}"
            raise ClearshotError(msg)
        if not above:
            return None, None
        le, t, r, b = region
        T = np.ones((b - t, r - le), np.float32)
        S = np.zeros((_COLOUR_CHANNELS[self.header.mode], b - t, r - le), np.float32) \
            if colour else None
        for L in above:  # bottom to top
            box = (max(L.rect[0], le), max(L.rect[1], t), min(L.rect[2], r), min(L.rect[3], b))
            a, col = self._coverage(L, box, colour)
            sl = (slice(box[1] - t, box[3] - t), slice(box[0] - le, box[2] - le))
            if S is not None:
                s = S[(slice(None), *sl)]
                s += (col - s) * a[None]
            T[sl] *= 1.0 - a
        return T, S

    # -- writing
    def save(self, out: str | os.PathLike[str], *, overwrite: bool = False,
             backup: bool = True, verify: bool = True, update_composite: bool = True,
             progress: ProgressCallback | None = None) -> dict:
        """Write the document with the staged edits; returns the plan with what was done.

        The file is written to a temporary name beside ``out``, re-opened and verified, then
        renamed. ``out`` may be the input only with ``overwrite=True``; the input is then kept
        as ``<name>.bak`` (unless ``backup=False``).
        """
        rep = Reporter(progress)
        self._require_open()
        out = os.fspath(out)
        same = os.path.exists(out) and os.path.samefile(out, self.path)
        if os.path.exists(out) and not overwrite:
            msg = f"{out} exists; pass --overwrite to replace it" + (
                " (it is the input file; a backup is kept)" if same else "")
            raise FileExistsError(msg)
        report = self.plan()
        region = self._dirty_region()
        comp_plan = report["composite"]
        if not update_composite and comp_plan["action"] == "update":
            comp_plan.update(action="kept", reason="update_composite=False (stale)")
        update = comp_plan["action"] == "update"
        render = update and comp_plan["method"] != "exact blend"
        changes: dict[int, bytes | None] = {}
        if update and not render:
            comp_parts, new_rows = self._blended_composite(region)
            thumb = self._thumbnail_block(self.buf, self.layout.image_data, new_rows, comp_plan)
            changes.update({1036: thumb, 1033: None})
        else:  # the render path refreshes the thumbnail after rendering (_refresh_thumbnail)
            comp_parts = [R.Span(self.layout.image_data, self.layout.size)]
        if self._provenance:
            changes[1060] = self._xmp_block(report)
            if changes[1060] is None:
                del changes[1060]
        parts = self._splice_parts(resources=_resource_parts(self.layout, R.Spans(), changes))
        parts.extend(comp_parts)
        rep(0.5, "writing")
        folder = os.path.dirname(os.path.abspath(out))
        tmp = os.path.join(folder, f".{os.path.basename(out)}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "xb", buffering=0) as fh:
                _write_parts(fh, parts, self._fh.fileno())
                os.fsync(fh.fileno())
            if render:
                self._render_composite(tmp, region, comp_plan)
                if comp_plan["action"] == "update":
                    self._refresh_thumbnail(tmp, comp_plan)
            rep(0.7, "verifying")
            if verify:
                self._verify(tmp)
            if same and backup:
                bak = out + ".bak"
                shutil.copy2(self.path, bak)
                report["backup"] = bak
            if same:
                # Windows cannot replace a file that is open (or mapped): let go of the
                # input first. The document is closed from here on.
                self.close()
                report["document_closed"] = True
            _replace(tmp, out)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        rep(1.0, "done")
        report["output"] = out
        return report

    def _splice_parts(self, *, resources: list) -> list:
        """Header..layer section as parts: new bytes, and spans of the original for the rest.

        ``resources``: the header, colour mode data and image resources (``_resource_parts``).
        """
        L, h, mv = self.layout, self.header, R.Spans()
        lw = h.length_size
        parts: list = list(resources)
        re_ = L.resources[1]
        lm_off, lm_body, lm_end = L.layer_mask
        if not self._edits:
            parts.append(mv[re_:lm_end])
            return parts
        if L.layer_info is None:
            msg = f"{self.path}: no layer records to edit"
            raise UnsupportedDocumentError(msg)
        body = self._layer_body()
        loff, lsize, bs, be = L.layer_info
        orig_len = be - bs
        blen = sum(len(p) for p in body)
        # Keep the original length's remainder mod 4: writers pad after a tagged block to the
        # next multiple of 4 (some outside the length, which is copied verbatim below), and
        # readers skip padding computed from the length.
        new_len = blen + (orig_len - blen) % 4
        body.append(b"\0" * (new_len - blen))
        lm_parts: list = [mv[lm_body:loff], new_len.to_bytes(lsize, "big"), *body, mv[be:lm_end]]
        lm_len = sum(len(p) for p in lm_parts)
        parts += [mv[re_:lm_off], lm_len.to_bytes(lw, "big"), *lm_parts]
        return parts

    def _layer_body(self) -> list:
        L, mv = self.layout, R.Spans()
        replaced = {e.target.index: e for e in self._edits if e.mode == "replace"}
        new_after: dict[int, list[_Edit]] = {}
        for e in self._edits:
            if e.mode == "new-layer":
                new_after.setdefault(self._insert_after(e.target), []).append(e)
        recs, chans = [], []
        for rec in L.records:
            e = replaced.get(rec.index)
            if e is None:
                recs.append(mv[rec.start : rec.end])
                if rec.spans:
                    chans.append(mv[rec.spans[0][0] : rec.spans[-1][1]])
            else:
                data = [e.planes.get(c, mv[s[0] : s[1]]) for (c, _), s in
                        zip(rec.channels, rec.spans, strict=True)]
                t, le, b, r = rec.rect
                recs.append(R.record_prefix((t, le, b, r), [(c, len(d)) for (c, _), d in
                                                            zip(rec.channels, data, strict=True)],
                                            self.header))
                recs.append(mv[rec.table_end : rec.end])
                chans.extend(data)
            for ne in new_after.get(rec.index, []):
                recs.append(ne.record)
                chans.extend(ne.channels)
        count = len(L.records) + sum(len(v) for v in new_after.values())
        sign = -1 if L.count < 0 else 1
        return [struct.pack(">h", sign * count), *recs, *chans]

    def _blended_composite(self, region) -> tuple[list, CompositeRows]:
        """Exact composite update through plain layers above (see ``_see_through``).

        Works in strips of rows so the float temporaries stay small."""
        h = self.header
        le, t, r, b = region
        rows = read_rows(self.buf, self.layout.image_data, h, t, b)
        full = float(_FULL[h.depth])
        n = _COLOUR_CHANNELS[h.mode]
        T, S = self._see_through(self._edits[0].target, region,
                                 colour=any(e.mode == "new-layer" for e in self._edits))
        # Photoshop stores the composite's colour over white and, with a negative layer
        # count, the document's transparency as the first extra channel: the white matte
        # makes the colour an opaque composite, so the same updates hold.
        merged_alpha = self.layout.count < 0 and h.channels > n
        for e in self._edits:
            tl, tt, tr, tb = e.target.rect
            x0, x1 = max(tl, le), min(tr, r)
            if x1 <= x0:
                continue
            layer = e.target.layer
            fill = float(getattr(layer, "fill_opacity", 255)) / 255.0
            own = None
            if e.mode == "replace" and layer.has_mask() and not layer.mask.disabled:
                own = self._mask_weight(MaskSource.own(), e.target)
            for y0 in range(max(tt, t), min(tb, b), _STRIP_ROWS):
                y1 = min(y0 + _STRIP_ROWS, tb, b)
                sl = (slice(y0 - tt, y1 - tt), slice(x0 - tl, x1 - tl))
                px = e.new_pixels[sl]
                if px.shape[2] > n:
                    alpha = px[:, :, n].astype(np.float32) / full
                else:
                    alpha = np.ones(px.shape[:2], np.float32)
                view = rows.planes[:n, y0 - t : y1 - t, x0:x1]
                if e.mode == "new-layer" and merged_alpha:
                    # the document's transparency: A' = A + a (1 - A), whatever lies above
                    av = rows.planes[n, y0 - t : y1 - t, x0:x1]
                    a0 = alpha * e.weight[sl] * (e.op.opacity / 255.0)
                    va = av.astype(np.float32) / full
                    va += a0 * (1.0 - va)
                    av[...] = np.clip(np.rint(va * full), 0, full).astype(av.dtype)
                if e.mode == "replace":
                    a = alpha * (layer.opacity / 255.0) * fill
                    if own is not None:
                        a = a * own[sl]
                else:
                    a = alpha * e.weight[sl] * (e.op.opacity / 255.0)
                rsl = (slice(y0 - t, y1 - t), slice(x0 - le, x1 - le))
                if T is not None:
                    a = a * T[rsl]
                if not a.any():
                    continue  # fully transparent here: the composite does not change
                if e.mode == "replace" and a.min() == 1.0:
                    # opaque: C' = C + (L' - L) exactly, in integers
                    it = np.int16 if h.depth == 8 else np.int32  # |C + L' - L| < 2 full
                    v = view.astype(it)
                    v += np.moveaxis(px[:, :, :n], 2, 0)
                    v -= np.moveaxis(e.old_pixels[sl][:, :, :n], 2, 0)
                    np.clip(v, 0, int(full), out=v)
                    view[...] = v
                    continue
                new = px[:, :, :n].astype(np.float32) / full
                c = view.astype(np.float32) / full
                if e.mode == "replace":
                    old = e.old_pixels[sl][:, :, :n].astype(np.float32) / full
                    c += np.moveaxis((new - old) * a[:, :, None], 2, 0)
                elif T is None:
                    c += (np.moveaxis(new, 2, 0) - c) * a[None]
                else:
                    # C' = C + a (T N + S - C) with a already T-weighted: divide it back out
                    # of the new colour's term (T N a = a_eff N) and weight S and C by a/T
                    base = e.weight[sl] * alpha * (e.op.opacity / 255.0)
                    c += np.moveaxis(new, 2, 0) * a[None] + (S[(slice(None), *rsl)] - c) \
                        * base[None]
                view[...] = np.clip(np.rint(c * full), 0, full).astype(rows.planes.dtype)
        return encode_with_rows(self.buf, self.layout.image_data, h, rows, mv=R.Spans()), rows

    def _render_composite(self, tmp: str, region, plan: dict) -> None:
        """Re-render ``region`` of the written file with psd-tools and patch its composite."""
        try:
            from psd_tools import PSDImage

            psd = PSDImage.open(tmp)
            le, t, r, b = region
            margin = 32 if any(L.has_effects() for L in psd.descendants()) else 0
            le, t = max(le - margin, 0), max(t - margin, 0)
            r, b = min(r + margin, self.header.width), min(b + margin, self.header.height)
            from psd_tools.compression import PSDDecompressionWarning

            with warnings.catch_warnings():
                # a channel psd-tools cannot decode would be rendered black: keep Photoshop's
                warnings.simplefilter("error", PSDDecompressionWarning)
                color, _, _alpha = _composite_arrays(psd, (le, t, r, b))
            del psd
        except Exception as exc:  # noqa: BLE001 - any render failure leaves the stored one
            plan.update(action="kept", reason=f"stale: psd-tools cannot render the region "
                        f"({type(exc).__name__}: {str(exc)[:200]})")
            return
        h = self.header
        with open(tmp, "rb") as fh:
            whole = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                start = R.locate(whole, tmp).image_data
            finally:
                whole.close()
            fh.seek(start)
            data = fh.read()  # the composite only
        rows = read_rows(data, 0, h, t, b)
        full = _FULL[h.depth]
        n = _COLOUR_CHANNELS[h.mode]
        vals = np.clip(color[:, :, :n], 0, 1) * full if h.depth != 32 else color[:, :, :n]
        vals = np.rint(vals) if h.depth != 32 else vals
        rows.planes[:n, :, le:r] = np.moveaxis(vals, 2, 0).astype(rows.planes.dtype)
        tail = encode_with_rows(data, 0, h, rows)
        with open(tmp, "r+b") as fh:
            fh.seek(start)
            for p in tail:
                fh.write(p)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        plan["region"] = [le, t, r, b]

    def _thumbnail_block(self, b, start: int, new_rows: CompositeRows | None,
                         plan: dict) -> bytes | None:
        """A refreshed thumbnail resource (1036) made from the composite at ``start`` in ``b``
        with ``new_rows`` over it, or None (no thumbnail stored, or a 32-bit document: the
        stale one is dropped). Notes what happened in ``plan["thumbnail"]``."""
        from .thumbnail import resource_block, thumbnail_data, thumbnail_pixels

        h = self.header
        if not any(rid in (1033, 1036) for rid, _, _ in self.layout.resource_blocks):
            plan["thumbnail"] = "none stored"
            return None
        if h.depth not in (8, 16) or h.mode not in SUPPORTED_MODES:
            plan["thumbnail"] = "dropped (Photoshop rebuilds it)"
            return None
        n = _COLOUR_CHANNELS[h.mode]
        comp = int.from_bytes(b[start : start + 2], "big")
        whole = _zip_planes(b, start, h, comp) if comp in (2, 3) else None

        def rows(y0: int, y1: int) -> np.ndarray:
            if new_rows is not None and new_rows.top <= y0 and y1 <= new_rows.bottom:
                return new_rows.planes[:n, y0 - new_rows.top : y1 - new_rows.top]
            if whole is not None:
                out = whole[:n, y0:y1].copy()
            else:
                out = read_rows(b, start, h, y0, y1, channels=list(range(n))).planes
            if new_rows is not None:
                a, z = max(y0, new_rows.top), min(y1, new_rows.bottom)
                if z > a:
                    out[:, a - y0 : z - y0] = new_rows.planes[:n, a - new_rows.top :
                                                              z - new_rows.top]
            return out

        try:
            data = thumbnail_data(thumbnail_pixels(rows, h.width, h.height, h.depth))
        except (ValueError, PSDFormatError) as exc:
            plan["thumbnail"] = f"dropped (could not be made: {exc})"
            return None
        w, hh = struct.unpack(">II", data[4:12])
        plan["thumbnail"] = f"refreshed (1036, {w}x{hh} JPEG)"
        return resource_block(1036, data)

    def _xmp_block(self, report: dict) -> bytes | None:
        """Resource 1060 with the recipe provenance added (:mod:`psd_bridge.xmp`), or None
        when the packet cannot be updated safely; ``report["provenance"]`` says which."""
        from .xmp import NAMESPACE, XMPError, add_provenance, new_packet

        buf = self.buf
        for rid, s, _e in self.layout.resource_blocks:
            if rid == 1060:
                nl = buf[s + 6]
                dpos = s + 6 + ((nl + 2) & ~1)
                n = int.from_bytes(buf[dpos : dpos + 4], "big")
                head, packet = bytes(buf[s:dpos]), bytes(buf[dpos + 4 : dpos + 4 + n])
                break
        else:
            head, packet = b"8BIM" + struct.pack(">Hxx", 1060), new_packet()
        try:
            data = add_provenance(packet, self._provenance)
        except XMPError as exc:
            report["provenance"] = f"not stored: {exc}"
            return None
        report["provenance"] = f"stored in the XMP metadata (resource 1060, {NAMESPACE})"
        return head + struct.pack(">I", len(data)) + data + b"\0" * (len(data) & 1)

    def _refresh_thumbnail(self, tmp: str, plan: dict) -> None:
        """After a psd-tools render: rewrite ``tmp`` with its thumbnail made from its new
        composite (the resources precede the layers, so the file is written again)."""
        if not any(rid in (1033, 1036) for rid, _, _ in self.layout.resource_blocks):
            plan["thumbnail"] = "none stored"
            return
        with open(tmp, "rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                layout = R.locate(data, tmp)
                thumb = self._thumbnail_block(data, layout.image_data, None, plan)
            finally:
                data.close()
            parts = [*_resource_parts(layout, R.Spans(), {1036: thumb, 1033: None}),
                     R.Span(layout.resources[1], layout.size)]
            again = tmp + ".2"
            try:
                with open(again, "xb", buffering=0) as out:
                    _write_parts(out, parts, fh.fileno())
                    os.fsync(out.fileno())
            except BaseException:
                if os.path.exists(again):
                    os.unlink(again)
                raise
        try:
            _replace(again, tmp)  # tmp is closed by now (Windows cannot replace an open file)
        except BaseException:
            os.unlink(again)
            raise

    def _verify(self, tmp: str) -> None:
        """Re-open the written file: our parser and psd-tools must read it, every untouched
        record and channel must equal the original's bytes and edited channels decode back."""
        from psd_tools import PSDImage

        with open(tmp, "rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                layout = _verify_bytes(self, data, tmp, fh.fileno())
                skel = R.skeleton(data, layout)
            finally:
                data.close()
        try:
            PSDImage.open(io.BytesIO(skel))
        except Exception as exc:  # noqa: BLE001 - any failure means the output is unusable
            msg = f"the written file does not re-open in psd-tools ({exc}); nothing was replaced"
            raise ClearshotError(msg) from None


def _resource_parts(layout: R.Layout, mv: R.Spans, changes: dict[int, bytes | None]) -> list:
    """Header, colour mode data and image resources as parts: ``changes`` maps a resource
    id to its new block (replacing the first such resource, appended when there is none) or
    to None (dropped); every other resource is the original bytes."""
    rs, re_ = layout.resources
    if not changes or not any(rid in changes for rid, _, _ in layout.resource_blocks) and \
            all(v is None for v in changes.values()):
        return [mv[:re_]]
    kept: list = []
    done: set[int] = set()
    for rid, s, e in layout.resource_blocks:
        if rid not in changes:
            kept.append(mv[s:e])
            continue
        if rid not in done and changes[rid] is not None:
            kept.append(changes[rid])
        done.add(rid)
    kept += [blk for rid, blk in changes.items() if rid not in done and blk is not None]
    tail = mv[layout.resource_blocks[-1][2] if layout.resource_blocks else rs : re_]
    n = sum(len(k) for k in kept) + len(tail)
    return [mv[: rs - 4], struct.pack(">I", n), *kept, tail]


_REPLACE_TRIES = 10


def _replace(tmp: str, out: str) -> None:
    """``os.replace`` with a few retries: on Windows a virus scanner or indexer may hold the
    target open for a moment (PermissionError); POSIX succeeds at once."""
    import time

    for attempt in range(_REPLACE_TRIES):
        try:
            os.replace(tmp, out)
            return
        except PermissionError as exc:
            if attempt == _REPLACE_TRIES - 1:
                msg = (f"could not replace {out} ({exc}); another program has it open. "
                       "Close it there and run again (nothing was changed)")
                raise ClearshotError(msg) from None
            time.sleep(0.05 * (attempt + 1))


def _write_parts(fh, parts: list, src_fd: int) -> None:
    """Write new bytes, and copy original spans in the kernel (no page of them is mapped)."""
    dst = fh.fileno()
    for p in parts:
        if not isinstance(p, R.Span):
            view = memoryview(p)
            while view:
                view = view[os.write(dst, view) :]
            continue
        pos, end = p.start, p.end
        while pos < end:
            try:
                n = os.copy_file_range(src_fd, dst, end - pos, pos)
            except (AttributeError, OSError):
                n = os.write(dst, os.pread(src_fd, min(end - pos, 1 << 24), pos))
            if n <= 0:
                msg = f"could not copy bytes {pos}..{end} of the input (file changed on disk?)"
                raise ClearshotError(msg)
            pos += n


def _composite_arrays(psd, viewport):
    from psd_tools.composite import composite

    bg = getattr(psd, "_background_color", None)
    if bg is not None:
        return composite(psd, color=bg, alpha=1.0, viewport=viewport)
    return composite(psd, viewport=viewport)


def _same(fd_a: int, a: tuple[int, int], fd_b: int, b: tuple[int, int]) -> bool:
    """Equal byte ranges of two files, read in chunks (nothing stays mapped)."""
    if a[1] - a[0] != b[1] - b[0]:
        return False
    step = 1 << 22
    for off in range(0, a[1] - a[0], step):
        n = min(step, a[1] - a[0] - off)
        if os.pread(fd_a, n, a[0] + off) != os.pread(fd_b, n, b[0] + off):
            return False
    return True


def _resource_data(b, start: int) -> bytes:
    """The data of the image resource block starting at ``start``."""
    nl = b[start + 6]
    pos = start + 6 + ((nl + 2) & ~1)
    n = int.from_bytes(b[pos : pos + 4], "big")
    return bytes(b[pos + 4 : pos + 4 + n])


def _verify_resources(doc: PSDDocument, data, new: R.Layout, fail: str) -> None:
    """Every image resource but the thumbnails (1033, 1036) and the XMP packet (1060) is the
    original's bytes, in order; a new thumbnail is a well-formed 1036 (header + a JPEG of the
    size it states) and a changed packet carries the provenance."""
    import cv2

    def others(b, layout: R.Layout) -> list[bytes]:
        return [bytes(b[s:e]) for rid, s, e in layout.resource_blocks
                if rid not in (1033, 1036, 1060)]

    if others(doc.buf, doc.layout) != others(data, new):
        msg = fail + "an image resource other than the thumbnail or XMP changed"
        raise ClearshotError(msg)
    old_res = {rid: _resource_data(doc.buf, s) for rid, s, _ in doc.layout.resource_blocks}
    for rid, s, _e in new.resource_blocks:
        body = _resource_data(data, s)
        if rid == 1036 and body != old_res.get(1036):
            w, h, size = *struct.unpack(">II", body[4:12]), struct.unpack(">I", body[20:24])[0]
            img = cv2.imdecode(np.frombuffer(body[28:], np.uint8), cv2.IMREAD_COLOR)
            if size != len(body) - 28 or img is None or img.shape[:2] != (h, w):
                msg = fail + "the refreshed thumbnail does not decode to its stated size"
                raise ClearshotError(msg)
        elif rid == 1060 and body != old_res.get(1060):
            from .xmp import read_provenance

            if not read_provenance(body):
                msg = fail + "the XMP packet changed without the provenance in it"
                raise ClearshotError(msg)


def _verify_bytes(doc: PSDDocument, data, tmp: str, fd: int) -> R.Layout:
    new = R.locate(data, tmp)
    old = doc.layout
    src = doc._fh.fileno()
    fail = f"verification of {tmp} failed: "
    _verify_resources(doc, data, new, fail)
    expected: list[tuple[str, Any]] = []
    replaced = {e.target.index: e for e in doc._edits if e.mode == "replace"}
    after: dict[int, list[_Edit]] = {}
    for e in doc._edits:
        if e.mode == "new-layer":
            after.setdefault(doc._insert_after(e.target), []).append(e)
    for rec in old.records:
        expected.append(("old", rec))
        expected += [("new", e) for e in after.get(rec.index, [])]
    if len(new.records) != len(expected):
        msg = fail + f"{len(new.records)} layer records, expected {len(expected)}"
        raise ClearshotError(msg)
    for nrec, (kind, item) in zip(new.records, expected, strict=True):
        if kind == "new":
            if data[nrec.start : nrec.end] != item.record:
                msg = fail + f"new layer {item.new_name!r} differs"
                raise ClearshotError(msg)
            continue
        rec, e = item, replaced.get(item.index)
        if e is None:
            same = _same(src, (rec.start, rec.end), fd, (nrec.start, nrec.end)) and all(
                _same(src, a, fd, b) for a, b in zip(rec.spans, nrec.spans, strict=True))
            if not same:
                msg = fail + f"untouched layer record {rec.index} changed"
                raise ClearshotError(msg)
            continue
        le, t, r, b = e.target.rect
        n = _COLOUR_CHANNELS[doc.header.mode]
        for (cid, _), span in zip(nrec.channels, nrec.spans, strict=True):
            if 0 <= cid < n:
                got = R.decode_channel(data, span, r - le, b - t, doc.header)
                if not np.array_equal(got, e.new_pixels[:, :, cid]):
                    msg = fail + f"layer {e.target.path!r} channel {cid} does not read back"
                    raise ClearshotError(msg)
    return new


def _quantize(x: np.ndarray, depth: int) -> np.ndarray:
    if depth == 32:
        return x.astype(np.float32)
    full = _FULL[depth]
    return np.clip(np.rint(x * full), 0, full).astype(R.NATIVE_DTYPE[depth])


def _blend(orig: np.ndarray, result: np.ndarray, weight: np.ndarray, n: int,
           depth: int) -> np.ndarray:
    """orig + (result - orig) * weight on the colour channels; transparency kept."""
    out = orig.copy()
    o = orig[:, :, :n].astype(np.float32)
    v = o + (result[:, :, :n].astype(np.float32) - o) * weight[:, :, None]
    if depth == 32:
        out[:, :, :n] = v
    else:
        out[:, :, :n] = np.clip(np.rint(v), 0, _FULL[depth]).astype(orig.dtype)
    return out


def write_recipe_layers(pixels: np.ndarray, recipe: Any, out: str | os.PathLike[str], *,
                        overwrite: bool = False,
                        progress: ProgressCallback | None = None) -> dict:
    """A new layered PSD: ``pixels`` as "Background" and the recipe's layers above it.

    The one-layer document (:func:`psd_bridge.create.new_document`) is written beside ``out``,
    opened, given the recipe's layers by :meth:`PSDDocument.apply_recipe` and saved to ``out``
    with the usual verification; the temporary file is removed. Returns the save report.
    """
    from .create import new_document

    dest = Path(out)
    if dest.exists() and not overwrite:
        msg = f"{dest} exists; pass --overwrite to replace it"
        raise FileExistsError(msg)
    base = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.base.psd")
    base.write_bytes(new_document(pixels))
    try:
        with open_document(base) as doc:
            doc.apply_recipe(doc.find("Background"), recipe, progress=progress)
            return doc.save(dest, overwrite=overwrite)
    finally:
        base.unlink(missing_ok=True)


def open_document(path: str | os.PathLike[str]) -> PSDDocument:
    """Open a PSD/PSB for editing; raises PSDFormatError (a ValueError) on malformed files."""
    if not Path(path).is_file():
        msg = f"{path}: no such file"
        raise FileNotFoundError(msg)
    return PSDDocument(path)


def iter_pixel_layers(doc: PSDDocument):
    """Every layer the bridge can process, top first."""
    return (L for L in doc.layers if L.processable)
