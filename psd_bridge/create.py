"""A new one-layer PSD from pixel data: the canvas the CLI's ``--layers OUT.psd`` builds on.

``new_document(pixels)`` returns the bytes of a PSD (version 1) holding one pixel layer,
"Background", with the image (gray or RGB, 8 or 16 bits, transparency if the pixels have
alpha) and a stored composite (the layer over white), so that :func:`psd_bridge.api
.open_document` can open it and :meth:`PSDDocument.apply_recipe` can add the recipe's layers
with the bridge's usual add-layer machinery.
"""

from __future__ import annotations

import struct

import numpy as np

from .records import Header, encode_channel, new_record

__all__ = ["new_document", "MAX_SIDE_PX"]

MAX_SIDE_PX = 30000  # PSD (version 1) limit; larger images need PSB
_DEPTH = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}
_STORED = {8: ">u1", 16: ">u2"}


def new_document(pixels: np.ndarray, *, layer_name: str = "Background") -> bytes:
    """The bytes of a one-layer PSD holding ``pixels``.

    Parameters
    ----------
    pixels : ndarray, uint8 | uint16, (H, W) or (H, W, C), C in 1..4
        Gray, gray+alpha, RGB or RGBA; alpha becomes the layer's transparency.
    layer_name : str
        The layer's (Unicode) name.

    Returns
    -------
    bytes
        PSD version 1: header, a version-info resource saying the composite is real, the
        layer (RLE at 8 bits, ZIP with prediction at 16), a raw composite (over white).
    """
    arr = pixels[:, :, None] if pixels.ndim == 2 else pixels
    depth = _DEPTH.get(arr.dtype)
    if depth is None or arr.ndim != 3 or not 1 <= arr.shape[2] <= 4:
        msg = (
            f"a layered PSD is written from 8- or 16-bit gray/RGB(A) pixels, got {arr.dtype} "
            f"{pixels.shape}; convert float images to 16 bits first"
        )
        raise ValueError(msg)
    h, w, c = arr.shape
    if max(h, w) > MAX_SIDE_PX:
        msg = f"a PSD is at most {MAX_SIDE_PX} px on a side, the image is {w}x{h}"
        raise ValueError(msg)
    ncolour = 3 if c >= 3 else 1
    alpha = arr[:, :, ncolour] if c in (2, 4) else None
    header = Header(
        version=1, channels=ncolour, height=h, width=w, depth=depth, mode=3 if ncolour == 3 else 1
    )
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, ncolour, h, w, depth, header.mode)
    version_info = struct.pack(">IBIII", 1, 1, 0, 0, 1)  # has real merged data
    resources = b"8BIM" + struct.pack(">HxxI", 1057, len(version_info)) + version_info
    resources += b"\0" * (len(version_info) % 2)  # resource data is padded to even
    chans: list[tuple[int, bytes]] = []
    if alpha is not None:
        chans.append((-1, encode_channel(alpha, 1, header)))
    chans += [(k, encode_channel(arr[:, :, k], 1, header)) for k in range(ncolour)]
    record = new_record(
        rect=(0, 0, h, w),
        channels=[(k, len(d)) for k, d in chans],
        header=header,
        name=layer_name,
        layer_id=1,
    )
    info = struct.pack(">h", 1) + record + b"".join(d for _, d in chans)
    info += b"\0" * (-len(info) % 4)
    layer_mask = struct.pack(">I", len(info)) + info + struct.pack(">I", 0)
    full = 255 if depth == 8 else 65535
    colour = arr[:, :, :ncolour]
    if alpha is not None:  # the stored composite is the layer over white
        a = alpha.astype(np.float64)[:, :, None] / full
        colour = np.rint(colour * a + full * (1 - a)).astype(arr.dtype)
    planes = np.moveaxis(colour, 2, 0).astype(_STORED[depth]).tobytes()
    return b"".join(
        [
            head,
            struct.pack(">I", 0),  # colour mode data
            struct.pack(">I", len(resources)) + resources,
            struct.pack(">I", len(layer_mask)) + layer_mask,
            struct.pack(">H", 0) + planes,  # raw composite
        ]
    )
