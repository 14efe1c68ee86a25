"""Masks: where an operation applies. Sources (faces, eyes, subject, detail) and mask algebra.

A mask is a float32 (H, W) array in [0, 1] at image size: 1 applies the operation fully, 0
leaves the original. Sources:

* :func:`face_mask`, :func:`eye_mask`: OpenCV Haar cascades (shipped inside
  opencv-python-headless 4.x), drawn as filled ellipses; the boxes come back too.
* :func:`subject_mask`: the in-focus region of :mod:`core.blur_map`.
* :func:`detail_mask`: edges and texture (sharpen those, not skin or sky).
* :func:`mask_from_array`: any gray/RGB(A) pixel array (alpha if present, else luminance),
  e.g. a mask image loaded by :func:`core.io.read_image`.

Algebra: :func:`union` (max), :func:`intersect` (min), :func:`invert`, :func:`grow` /
:func:`shrink` (morphological), :func:`feather` (Gaussian). :func:`apply_through_mask` blends
any engine result into the original through a mask, in linear light by default; where the mask
is exactly 0 the output is the original bit for bit, where it is exactly 1 it is the result.

Pure numpy/OpenCV; no file access (the cascades are read from OpenCV's own package data).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from .blur_map import blur_map, focus_mask
from .color import REC709_LUMA, decode_to_linear, encode_from_linear
from .dtype import as_hwc, check_image, split_alpha, to_float32
from .errors import MissingDependencyError

__all__ = [
    "Detections",
    "mask_from_array",
    "face_mask",
    "eye_mask",
    "subject_mask",
    "detail_mask",
    "union",
    "intersect",
    "invert",
    "grow",
    "shrink",
    "feather",
    "apply_through_mask",
]

_DETECT_SIDE_PX = 1024  # detection runs on a copy whose long side is at most this
_FACE_XML = "haarcascade_frontalface_default.xml"
_FACE_ALT_XML = "haarcascade_frontalface_alt2.xml"  # a second opinion, see _find_faces
_EYE_XML = "haarcascade_eye.xml"
_INSTALL_HINT = (
    "install OpenCV 4.x with its Haar cascades: pip install 'opencv-python-headless>=4.8,<5' "
    "(OpenCV 5 dropped CascadeClassifier)"
)
_MAX_PX = 10_000
_STRONG_FACE = 8  # detector neighbours above which a face needs no eye to be believed
# Skin-tone plausibility (colour images only), in YCrCb of the stored 8-bit values: Y carries
# the light, so shade and highlights change it little. The ranges are broad (pale to very
# dark skin, kodak24's kodim04/15/18 all read >= 0.95 in the middle of the face box); foliage,
# stone, metal, feathers and façades read below 0.7.
_SKIN_CR = (133, 180)
_SKIN_CB = (77, 135)
_SKIN_MIN = 0.75  # fraction of skin-toned pixels in the middle half of a face box
_CHROMA_MIN = 6.0  # median |Cr-128|+|Cb-128| below this: a gray/B&W photo, no skin test
_OVERLAP = 0.3  # a face box overlapping a stronger one by more (IoU) is the same face
_SURE_FACE = 16  # neighbours of a face sure enough (with both eyes and alt2 agreeing) to pass
# the skin test anyway: a strong colour cast (shade, fluorescent light) can hide pale skin
_EYE_ZONE = 0.62  # eyes are searched in this upper fraction of a face box
_EYE_FACE_PX = 240  # faces are resized to this width for the eye search
_STEP_RESPONSE = 0.21875  # detail_mask's high-pass peak on a crisp unit step
_STRIP_PX = 1 << 20  # pixels per strip in apply_through_mask


@dataclass(frozen=True)
class Detections:
    """A detector's mask and the boxes it found.

    Attributes
    ----------
    mask : ndarray, float32, (H, W), values in [0, 1]
    boxes : tuple of (x, y, w, h) int tuples, in image pixels
    detected : tuple of bool, one per box
        True where the detector found the box, False where it was inferred (a missed eye).
    """

    mask: np.ndarray
    boxes: tuple[tuple[int, int, int, int], ...]
    detected: tuple[bool, ...] = ()


# --------------------------------------------------------------------------- validation


def _check_mask(mask: object, name: str = "mask") -> np.ndarray:
    """Validate a mask and return it as a new float32 (H, W) array."""
    if not isinstance(mask, np.ndarray):
        msg = f"{name} must be a numpy array, got {type(mask).__name__}"
        raise TypeError(msg)
    arr = mask[:, :, 0] if mask.ndim == 3 and mask.shape[2] == 1 else mask
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        msg = (
            f"{name} must be a non-empty (H, W) array, got shape {mask.shape}; "
            "build one from pixel data with mask_from_array"
        )
        raise ValueError(msg)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype.kind != "f":
        msg = (
            f"{name} must be float (values 0..1) or bool, got {arr.dtype}; "
            "convert 8/16-bit data with mask_from_array"
        )
        raise TypeError(msg)
    out = arr.astype(np.float32, copy=True)
    if not np.isfinite(out).all():
        msg = f"{name} contains NaN or infinite values; a mask must be finite, in [0, 1]"
        raise ValueError(msg)
    lo, hi = float(out.min()), float(out.max())
    if lo < 0.0 or hi > 1.0:
        msg = (
            f"{name} values must lie in [0, 1], got {lo:g}..{hi:g}; "
            "use np.clip(mask, 0, 1) or mask_from_array for pixel data"
        )
        raise ValueError(msg)
    return out


def _check_same_shape(a: np.ndarray, b: np.ndarray, names: str = "a and b") -> None:
    if a.shape != b.shape:
        msg = (
            f"{names} must have the same (H, W), got {a.shape} and {b.shape}; "
            "resize one with cv2.resize(mask, (W, H)) first"
        )
        raise ValueError(msg)


def _check_px(px: object, name: str, *, allow_negative: bool) -> float:
    if isinstance(px, bool) or not isinstance(px, (int, float, np.integer, np.floating)):
        msg = f"{name} must be a number of pixels, got {type(px).__name__}"
        raise TypeError(msg)
    v = float(px)
    lo = -_MAX_PX if allow_negative else 0
    if not (math.isfinite(v) and lo <= v <= _MAX_PX):
        msg = f"{name} must be a finite number of pixels in {lo}..{_MAX_PX}, got {px}"
        raise ValueError(msg)
    return v


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


# --------------------------------------------------------------------------- sources


def mask_from_array(pixels: np.ndarray) -> np.ndarray:
    """Turn pixel data into a mask: its alpha if it has one, else its luminance.

    Parameters
    ----------
    pixels : ndarray, uint8 | uint16 | float16 | float32 | float64, (H, W) or (H, W, C), C 1..4
        Gray, gray+alpha, RGB or RGBA. Values are taken as stored (encoded): mid-gray 128 of 255
        is a 50 % mask, as in Photoshop and GIMP layer masks.

    Returns
    -------
    ndarray, float32, (H, W), in [0, 1] (float data is clipped).

    Notes
    -----
    RGB uses Rec. 709 weights on the stored values; where R == G == B the value itself is used,
    so white is exactly 1 and black exactly 0.

    Examples
    --------
    >>> mask_from_array(np.array([[0, 255]], np.uint8)).tolist()
    [[0.0, 1.0]]
    """
    check_image(pixels, name="pixels")
    x = to_float32(pixels)
    colour, alpha = split_alpha(x)
    if alpha is not None:
        m = alpha[:, :, 0]
    elif colour.shape[2] == 3:
        m = colour @ REC709_LUMA
        gray = colour.max(axis=2) == colour.min(axis=2)
        m = np.where(gray, colour[:, :, 0], m)
    else:
        m = colour[:, :, 0]
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def _gray8(image: np.ndarray) -> np.ndarray:
    """8-bit gray of the stored (encoded) values, for the detectors."""
    colour, _ = split_alpha(as_hwc(image))
    if colour.dtype in (np.uint8, np.uint16):
        g = colour[:, :, 0]
        if colour.shape[2] == 3:  # OpenCV's transform: rounded, saturated, 5x faster
            g = cv2.transform(np.ascontiguousarray(colour), REC709_LUMA[None].astype(np.float64))
        if g.dtype == np.uint16:
            g = ((g.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return np.ascontiguousarray(g.reshape(colour.shape[:2]))
    colour = to_float32(colour)
    g = colour @ REC709_LUMA if colour.shape[2] == 3 else colour[:, :, 0]
    return np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
    cls = getattr(cv2, "CascadeClassifier", None)
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if cls is None or folder is None:
        msg = "face and eye masks need cv2.CascadeClassifier and cv2.data.haarcascades; " + (
            _INSTALL_HINT
        )
        raise MissingDependencyError(msg)
    path = os.path.join(folder, name)
    clf = cls(path) if os.path.isfile(path) else None
    if clf is None or clf.empty():
        msg = f"the Haar cascade {name} is missing or unreadable in {folder}; {_INSTALL_HINT}"
        raise MissingDependencyError(msg)
    return clf


def _check_image_for_mask(image: np.ndarray, min_face_frac: float) -> None:
    check_image(image)
    if not (0 < min_face_frac <= 1):
        msg = f"min_face_frac must be a fraction of the short side in (0, 1], got {min_face_frac}"
        raise ValueError(msg)


def _colour8(image: np.ndarray) -> np.ndarray | None:
    """The stored colour values as 8-bit RGB (H, W, 3), or None for a gray image."""
    colour, _ = split_alpha(as_hwc(image))
    if colour.shape[2] != 3:
        return None
    if colour.dtype == np.uint8:
        return colour
    if colour.dtype == np.uint16:
        return ((colour.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(to_float32(colour) * 255.0), 0, 255).astype(np.uint8)


def _chroma_is_low(colour8: np.ndarray) -> bool:
    """True for a photo with (almost) no colour: B&W scans, gray RGB; skin is not tested."""
    step = max(1, max(colour8.shape[:2]) // 256)
    ycc = cv2.cvtColor(np.ascontiguousarray(colour8[::step, ::step]), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[:, :, 1].astype(np.int16), ycc[:, :, 2].astype(np.int16)
    chroma = np.abs(cr - 128) + np.abs(cb - 128)
    return float(np.median(chroma)) < _CHROMA_MIN


def _grey_world_gains(colour8: np.ndarray) -> np.ndarray:
    """Per-channel gains that make the photo's mean gray (grey world), within 0.5..2."""
    step = max(1, max(colour8.shape[:2]) // 256)
    means = colour8[::step, ::step].reshape(-1, 3).mean(axis=0) + 1e-3
    return np.clip(means.mean() / means, 0.5, 2.0).astype(np.float32)


def _skin_fraction(
    colour8: np.ndarray, face: tuple[int, int, int, int], gains: np.ndarray | None = None
) -> float:
    """Fraction of skin-toned pixels in the middle half of a face box (cheeks, nose), as
    stored, or after ``gains`` (a colour cast removed) when that finds more."""
    x, y, w, h = face
    mid = colour8[y + h // 4 : y + h - h // 4, x + w // 4 : x + w - w // 4]
    if mid.size == 0:
        return 0.0
    crops = [np.ascontiguousarray(mid)]
    if gains is not None:
        crops.append(np.clip(np.rint(mid * gains), 0, 255).astype(np.uint8))
    best = 0.0
    for crop in crops:
        ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
        cr, cb = ycc[:, :, 1], ycc[:, :, 2]
        skin = (cr >= _SKIN_CR[0]) & (cr <= _SKIN_CR[1]) & (cb >= _SKIN_CB[0]) & (cb <= _SKIN_CB[1])
        best = max(best, float(skin.mean()))
    return best


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union_ = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union_ if union_ > 0 else 0.0


def _find_faces(
    image: np.ndarray, min_face_frac: float
) -> list[tuple[tuple[int, int, int, int], list[tuple[tuple[int, int, int, int], bool]]]]:
    """Faces (x, y, w, h) in image pixels, each with its eyes as (box, detected) pairs.

    Faces come from an equalised 8-bit gray copy whose long side is at most 1024 px. Each face's
    upper part is cut from the full-size gray, resized to 240 px wide and searched for eyes.
    A candidate is dropped as a false positive when it is weak (few detector neighbours) and
    no eye is found in it; in a colour photo also when the middle of its box is not mostly
    skin-toned (YCrCb, as stored or grey-world balanced, :data:`_SKIN_MIN`), which removes the
    faces the cascade sees in foliage, stone, sculpture, feathers and façades, unless the face
    is sure otherwise (many neighbours, both eyes, and the alt2 cascade finds it too: a colour
    cast can hide pale skin); and when it overlaps a stronger face (IoU > 0.3).
    """
    gray = _gray8(image)
    h, w = gray.shape
    scale = min(1.0, _DETECT_SIDE_PX / max(h, w))
    small = gray
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    small = cv2.equalizeHist(small)
    side = min(small.shape)
    min_px = max(24, round(min_face_frac * side))
    if min_px > side:
        return []
    found, counts = _cascade(_FACE_XML).detectMultiScale2(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(min_px, min_px)
    )
    boxes, neighbours = np.asarray(found).reshape(-1, 4), np.asarray(counts).reshape(-1)
    if len(boxes) == 0:
        return []
    colour = _colour8(image)
    if colour is not None and _chroma_is_low(colour):
        colour = None
    gains = _grey_world_gains(colour) if colour is not None else None
    alt: list[tuple[int, ...]] | None = None  # the alt2 cascade's boxes, found when needed
    kept: list[tuple[int, tuple[int, int, int, int], list[tuple[int, int, int, int]]]] = []
    for b, n in zip(boxes, neighbours, strict=True):
        x, y = round(b[0] / scale), round(b[1] / scale)
        box = (x, y, min(w - x, round(b[2] / scale)), min(h - y, round(b[3] / scale)))
        eyes = _eyes_in_face(gray, box)
        if not eyes and n < _STRONG_FACE:
            continue
        if colour is not None and _skin_fraction(colour, box, gains) < _SKIN_MIN:
            if alt is None:
                found2 = _cascade(_FACE_ALT_XML).detectMultiScale(
                    small, scaleFactor=1.1, minNeighbors=3, minSize=(min_px, min_px)
                )
                alt = [tuple(round(v / scale) for v in a)
                       for a in np.asarray(found2).reshape(-1, 4)]
            sure = n >= _SURE_FACE and len(eyes) == 2 and any(_iou(box, a) > 0.5 for a in alt)
            if not sure:
                continue
        kept.append((int(n), box, eyes))
    kept.sort(key=lambda k: -k[0])  # strongest first; a weaker overlapping box is the same face
    faces: list[tuple[tuple[int, int, int, int], list[tuple[tuple[int, int, int, int], bool]]]]
    faces = []
    for _, box, eyes in kept:
        if any(_iou(box, f) > _OVERLAP for f, _ in faces):
            continue
        faces.append((box, _complete_eyes(box, eyes)))
    faces.sort(key=lambda f: (f[0][1], f[0][0]))  # top to bottom, left to right
    return faces


def _eyes_in_face(
    gray: np.ndarray, face: tuple[int, int, int, int]
) -> list[tuple[int, int, int, int]]:
    """Up to two eyes found in the upper part of one face, in image pixels."""
    x, y, w, h = face
    top = gray[y : y + round(h * _EYE_ZONE), x : x + w]
    if top.size == 0:
        return []
    k = _EYE_FACE_PX / w
    size = (_EYE_FACE_PX, max(1, round(top.shape[0] * k)))
    interp = cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA
    roi = cv2.equalizeHist(cv2.resize(top, size, interpolation=interp))
    found, counts = _cascade(_EYE_XML).detectMultiScale2(
        roi, scaleFactor=1.05, minNeighbors=3, minSize=(24, 24), maxSize=(110, 110)
    )
    eyes = np.asarray(found).reshape(-1, 4)
    order = np.argsort(-np.asarray(counts).reshape(-1), kind="stable")
    picked: list[tuple[int, int, int, int]] = []
    for i in order:
        ex, ey, ew, eh = (int(v) for v in eyes[i])
        cy = (ey + eh / 2) / k
        if not (0.15 * h <= cy <= 0.55 * h):  # eyes sit in this band of a frontal face box
            continue
        cx = ex + ew / 2
        # one eye per side: skip one overlapping an eye already picked
        if any(abs(cx - (p[0] + p[2] / 2)) < 0.6 * max(ew, p[2]) for p in picked):
            continue
        picked.append((ex, ey, ew, eh))
        if len(picked) == 2:
            break
    return [
        (x + round(ex / k), y + round(ey / k), max(1, round(ew / k)), max(1, round(eh / k)))
        for ex, ey, ew, eh in picked
    ]


def _complete_eyes(
    face: tuple[int, int, int, int], eyes: list[tuple[int, int, int, int]]
) -> list[tuple[tuple[int, int, int, int], bool]]:
    """Add the eyes the detector missed: mirror a lone eye across the face's centre line, or
    place both where a frontal face box has them (centres 30 % / 70 % across, 38 % down)."""
    x, y, w, h = face
    out = [(e, True) for e in eyes]
    if len(eyes) == 1:
        ex, ey, ew, eh = eyes[0]
        mx = round(2 * (x + w / 2) - (ex + ew / 2) - ew / 2)
        out.append(((mx, ey, ew, eh), False))
    elif not eyes:
        s = max(1, round(0.2 * w))
        for fx in (0.3, 0.7):
            out.append(((round(x + fx * w - s / 2), round(y + 0.38 * h - s / 2), s, s), False))
    return out


def face_mask(image: np.ndarray, *, min_face_frac: float = 0.06) -> Detections:
    """Frontal faces as filled ellipses (OpenCV Haar cascade).

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    min_face_frac : float, (0, 1], default 0.06
        Smallest face to look for, as a fraction of the image's short side.

    Returns
    -------
    Detections
        ``mask``: float32 (H, W), 1 inside each face ellipse (the box widened to cover the
        forehead and chin), 0 elsewhere; ``boxes``: the detector's (x, y, w, h) boxes.

    Notes
    -----
    Detection runs on an equalised 8-bit gray copy, downscaled so the long side is at most
    1024 px. Profiles and strongly tilted faces are not found. False positives are dropped: a
    weak detection in which no eye is found; in a colour photo, a box whose middle is not
    mostly skin-toned (YCrCb, as stored or grey-world balanced; gray photos are not tested)
    unless the face is sure otherwise (many neighbours, both eyes, the alt2 cascade agrees);
    and a box overlapping a stronger one. Statues and painted faces in non-skin colours are
    therefore not found either. Raises :class:`core.errors.MissingDependencyError` when OpenCV
    lacks the cascades.
    """
    _check_image_for_mask(image, min_face_frac)
    h, w = as_hwc(image).shape[:2]
    boxes = tuple(face for face, _ in _find_faces(image, min_face_frac))
    mask = np.zeros((h, w), np.float32)
    for x, y, bw, bh in boxes:
        centre = (round(x + bw / 2), round(y + bh * 0.47))
        axes = (max(1, round(bw * 0.5)), max(1, round(bh * 0.66)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    return Detections(mask, boxes, (True,) * len(boxes))


def eye_mask(
    image: np.ndarray, *, grow_frac: float = 0.3, min_face_frac: float = 0.06
) -> Detections:
    """Eyes as filled ellipses (Haar eye cascade searched inside detected faces).

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    grow_frac : float, 0..2, default 0.3
        How much larger than the eye box each ellipse is (0.3: 30 % wider and taller), so lids
        and lashes are covered.
    min_face_frac : float, (0, 1], default 0.06
        Smallest face searched, as a fraction of the image's short side.

    Returns
    -------
    Detections
        ``mask``: float32 (H, W), 1 inside each eye ellipse; ``boxes``: two eye boxes
        (x, y, w, h) per face; ``detected``: False for an eye the cascade missed, placed from
        the other eye (mirrored across the face) or from the face box.
    """
    _check_image_for_mask(image, min_face_frac)
    if not (0 <= grow_frac <= 2):
        msg = f"grow_frac must be in 0..2 (fraction of the eye box), got {grow_frac}"
        raise ValueError(msg)
    h, w = as_hwc(image).shape[:2]
    eyes = [e for _, face_eyes in _find_faces(image, min_face_frac) for e in face_eyes]
    mask = np.zeros((h, w), np.float32)
    for (x, y, bw, bh), _ in eyes:
        centre = (round(x + bw / 2), round(y + bh / 2))
        axes = (max(1, round(bw * (1 + grow_frac) / 2)), max(1, round(bh * (1 + grow_frac) / 2)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    return Detections(mask, tuple(b for b, _ in eyes), tuple(d for _, d in eyes))


def subject_mask(
    image: np.ndarray,
    *,
    sharp_px: float = 4.0,
    blurred_px: float = 10.0,
    tile_px: int = 48,
    linear_input: bool = False,
) -> np.ndarray:
    """The in-focus region: ``focus_mask(blur_map(image))`` (see :mod:`core.blur_map`).

    Returns
    -------
    ndarray, float32, (H, W), in [0, 1]: 1 where edges are within ``sharp_px``, 0 where they
    spread beyond ``blurred_px``.
    """
    widths = blur_map(image, tile_px=tile_px, linear_input=linear_input)
    return focus_mask(widths, sharp_px=sharp_px, blurred_px=blurred_px)


def detail_mask(
    image: np.ndarray,
    *,
    threshold_levels: float = 20.0,
    window_px: int = 5,
    smooth_px: float = 2.0,
) -> np.ndarray:
    """Edges and fine detail (sharpen these, not smooth skin, sky or soft folds).

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    threshold_levels : float, 0..255, default 20
        Local contrast, in 0-255 levels of full scale, below which a pixel is not detail. The
        measure is calibrated so that a crisp step of N levels reads N. The mask ramps from 0
        at the threshold to 1 at twice the threshold (at 0: 1 wherever there is any detail).
    window_px : int, odd, 3..31, default 5
        The contrast of a pixel is the strongest found within this window around it.
    smooth_px : float, 0..100, default 2
        Gaussian sigma applied to the result (0: none).

    Returns
    -------
    ndarray, float32, (H, W), in [0, 1].

    Notes
    -----
    Works on the stored (encoded) luma, so levels mean what they do in Photoshop. The luma
    is smoothed with sigma 0.8 px (sensor noise does not count), then high-passed (minus a
    Gaussian of sigma 2 px): smooth gradients such as sky, skin shading or curtain folds give
    almost nothing, while edges and texture respond.
    """
    check_image(image)
    if not (0 <= threshold_levels <= 255):
        msg = f"threshold_levels must be in 0..255 levels, got {threshold_levels}"
        raise ValueError(msg)
    if not (isinstance(window_px, int) and 3 <= window_px <= 31 and window_px % 2 == 1):
        msg = f"window_px must be an odd integer in 3..31, got {window_px!r}"
        raise ValueError(msg)
    smooth = _check_px(smooth_px, "smooth_px", allow_negative=False)
    colour, _ = split_alpha(to_float32(image))
    luma = colour @ REC709_LUMA if colour.shape[2] == 3 else colour[:, :, 0]
    luma = np.clip(luma, 0.0, 1.0).astype(np.float32) * np.float32(255.0 / _STEP_RESPONSE)
    luma = cv2.GaussianBlur(luma, (0, 0), 0.8, borderType=cv2.BORDER_REFLECT)
    high = np.abs(luma - cv2.GaussianBlur(luma, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT))
    se = cv2.getStructuringElement(cv2.MORPH_RECT, (window_px, window_px))
    contrast = cv2.dilate(high, se)
    t = np.float32(threshold_levels)
    m = np.clip((contrast - t) / max(t, np.float32(1.0)), 0.0, 1.0).astype(np.float32)
    return feather(m, 2 * smooth) if smooth > 0 else m


# --------------------------------------------------------------------------- algebra


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixelwise maximum of two masks (either one applies), float32 (H, W).

    >>> union(np.array([[0.25, 1.0]]), np.array([[0.5, 0.0]])).tolist()
    [[0.5, 1.0]]
    """
    ma, mb = _check_mask(a, "a"), _check_mask(b, "b")
    _check_same_shape(ma, mb)
    return np.maximum(ma, mb)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixelwise minimum of two masks (both apply), float32 (H, W).

    >>> intersect(np.array([[0.25, 1.0]]), np.array([[0.5, 0.0]])).tolist()
    [[0.25, 0.0]]
    """
    ma, mb = _check_mask(a, "a"), _check_mask(b, "b")
    _check_same_shape(ma, mb)
    return np.minimum(ma, mb)


def invert(mask: np.ndarray) -> np.ndarray:
    """``1 - mask``, float32 (H, W) (exact at 0 and 1).

    >>> invert(np.array([[0.0, 0.25, 1.0]])).tolist()
    [[1.0, 0.75, 0.0]]
    """
    m = _check_mask(mask)
    return np.float32(1.0) - m


def grow(mask: np.ndarray, px: float) -> np.ndarray:
    """Grow a mask by ``px`` pixels (grayscale dilation by a disk); negative ``px`` shrinks.

    Parameters
    ----------
    mask : ndarray, float (or bool), (H, W), in [0, 1]
    px : float, -10000..10000
        Radius of the disk, rounded to whole pixels (0: an unchanged copy).

    Returns
    -------
    ndarray, float32, (H, W), in [0, 1]. Pixels outside the image count as neither inside
    nor outside (growing never pulls the border in, shrinking never eats from it).

    Examples
    --------
    >>> m = np.zeros((5, 5), np.float32); m[2, 2] = 1
    >>> int(grow(m, 1).sum()), int(grow(m, -1).sum())
    (5, 0)
    """
    m = _check_mask(mask)
    r = round(_check_px(px, "px", allow_negative=True))
    if r == 0:
        return m
    op = cv2.dilate if r > 0 else cv2.erode
    return op(m, _disk(abs(r)))


def shrink(mask: np.ndarray, px: float) -> np.ndarray:
    """Shrink a mask by ``px`` pixels (erosion by a disk): ``grow(mask, -px)``."""
    return grow(mask, -_check_px(px, "px", allow_negative=True))


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Soften a mask's edges with a Gaussian of sigma ``px / 2``.

    Parameters
    ----------
    mask : ndarray, float (or bool), (H, W), in [0, 1]
    px : float, 0..10000
        Feather width in pixels; the edge ramp is about ``2 * px`` wide (0: unchanged copy).

    Returns
    -------
    ndarray, float32, (H, W), in [0, 1].

    Notes
    -----
    Borders reflect. The kernel is cut at 3 sigma, so pixels farther than ``1.5 * px`` from
    any non-zero pixel stay exactly 0 and pixels that far inside a fully-on area stay exactly
    1. A larger ``px`` never gives a less smooth mask (Gaussians compose).
    """
    m = _check_mask(mask)
    v = _check_px(px, "px", allow_negative=False)
    if v == 0:
        return m
    sigma = v / 2.0
    r = max(1, math.ceil(3 * sigma))
    out = cv2.GaussianBlur(m, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REFLECT)
    np.clip(out, 0.0, 1.0, out=out)
    box = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
    all_zero = cv2.erode((m == 0).astype(np.uint8), box, borderType=cv2.BORDER_REFLECT)
    all_one = cv2.erode((m == 1).astype(np.uint8), box, borderType=cv2.BORDER_REFLECT)
    out[all_zero.astype(bool)] = 0.0
    out[all_one.astype(bool)] = 1.0
    return out


# --------------------------------------------------------------------------- blending


def apply_through_mask(
    original: np.ndarray, processed: np.ndarray, mask: np.ndarray, *, linear: bool = True
) -> np.ndarray:
    """Blend an engine result into the original through a mask.

    Parameters
    ----------
    original, processed : ndarray, same dtype and shape, (H, W) or (H, W, C), C 1..4
        The input of an operation and its result (any supported dtype).
    mask : ndarray, float (or bool), (H, W), in [0, 1]
        1: take ``processed``; 0: keep ``original``.
    linear : bool, default True
        Blend in linear light (sRGB-decoded); False blends the stored values.

    Returns
    -------
    ndarray, the dtype and shape of ``original``. Where ``mask == 0`` it equals ``original``
    bit for bit, where ``mask == 1`` it equals ``processed``; alpha is the original's,
    untouched.

    Examples
    --------
    >>> o = np.zeros((1, 3), np.uint8); p = np.full((1, 3), 255, np.uint8)
    >>> apply_through_mask(o, p, np.array([[0.0, 0.5, 1.0]])).tolist()
    [[0, 188, 255]]
    """
    check_image(original, name="original")
    check_image(processed, name="processed")
    if processed.shape != original.shape or processed.dtype != original.dtype:
        msg = (
            f"processed must have the shape and dtype of original, got {processed.shape} "
            f"{processed.dtype} and {original.shape} {original.dtype}; pass the operation's "
            "direct result"
        )
        raise ValueError(msg)
    m = _check_mask(mask)
    orig, proc = as_hwc(original), as_hwc(processed)
    _check_same_shape(m, orig[:, :, 0], "mask and image")
    colour_o, alpha_o = split_alpha(orig)
    colour_p, _ = split_alpha(proc)
    c = colour_o.shape[2]
    h, w = m.shape
    out = orig.copy()
    step = max(1, _STRIP_PX // max(w, 1))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        ms = m[y0:y1]
        partial = (ms > 0) & (ms < 1)
        so, sp = colour_o[y0:y1], colour_p[y0:y1]
        block = out[y0:y1, :, :c]
        block[ms == 1] = sp[ms == 1]
        if not partial.any():
            continue
        lo = decode_to_linear(so[partial], encoded=linear)
        lp = decode_to_linear(sp[partial], encoded=linear)
        t = ms[partial][:, None]
        block[partial] = encode_from_linear(lo + t * (lp - lo), orig.dtype, encoded=linear)
    if alpha_o is not None:
        out[:, :, c:] = alpha_o
    return out.reshape(original.shape)
