"""The thumbnail image resource (1036): Photoshop's 28-byte header and a JFIF image, at most
160 px on the long side, made from the composite after an edit.

Photoshop 5+ writes resource 1036 (RGB JPEG); 1033 is the Photoshop 4 variant (BGR) and is
dropped when the composite changes. The thumbnail is built from the composite's rows in
strips, so a large document never needs its whole composite in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

__all__ = ["MAX_SIDE", "thumbnail_size", "thumbnail_pixels", "thumbnail_data", "resource_block"]

#: Photoshop's thumbnails are at most 160 px on their long side.
MAX_SIDE = 160
_STRIP_OUT_ROWS = 16


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the thumbnail of a ``width`` x ``height`` document."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_pixels(rows: Callable[[int, int], np.ndarray], width: int, height: int,
                     depth: int) -> np.ndarray:
    """The thumbnail as uint8 (h, w, 3) RGB, from ``rows(y0, y1)`` -> (C, y1 - y0, width)
    colour planes of the composite in the file's dtype (C = 1 gray or 3 RGB; 8 or 16-bit).

    Area-averaged in strips of whole output rows."""
    import cv2

    if depth not in (8, 16):
        msg = f"thumbnails are made from 8- or 16-bit composites, got {depth}-bit"
        raise ValueError(msg)
    tw, th = thumbnail_size(width, height)
    out = np.empty((th, tw, 3), np.uint8)
    for i0 in range(0, th, _STRIP_OUT_ROWS):
        i1 = min(i0 + _STRIP_OUT_ROWS, th)
        y0, y1 = i0 * height // th, i1 * height // th
        planes = rows(y0, y1)
        img = np.moveaxis(planes, 0, 2)
        if depth == 16:
            img = np.rint(img.astype(np.float32) / 257.0).astype(np.uint8)
        small = cv2.resize(np.ascontiguousarray(img), (tw, i1 - i0), interpolation=cv2.INTER_AREA)
        small = small.reshape(i1 - i0, tw, -1)
        out[i0:i1] = small if small.shape[2] == 3 else small[:, :, :1]
    return out


def thumbnail_data(rgb: np.ndarray, *, quality: int = 90) -> bytes:
    """Resource 1036's data: the 28-byte header (format 1 = JPEG RGB, width, height, width
    bytes, total size, compressed size, 24 bits per pixel, 1 plane) and the JFIF image."""
    import cv2

    h, w = rgb.shape[:2]
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        msg = f"could not encode a {w}x{h} thumbnail as JPEG"
        raise ValueError(msg)
    data = jpeg.tobytes()
    width_bytes = (w * 24 + 31) // 32 * 4
    head = struct.pack(">6I2H", 1, w, h, width_bytes, width_bytes * h, len(data), 24, 1)
    return head + data


def resource_block(rid: int, data: bytes) -> bytes:
    """An image resource block: '8BIM', id, empty name, length, data padded to even."""
    return b"8BIM" + struct.pack(">HxxI", rid, len(data)) + data + b"\0" * (len(data) & 1)
