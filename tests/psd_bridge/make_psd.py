"""A tiny PSD/PSB writer for test fixtures, independent of psd-tools and of the bridge.

``make_psd(layers, width=, height=, depth=, mode=, version=, ...)`` writes a layered file with
RLE or raw channels, optional layer masks, groups (section-divider records) and clipping, a
version-info resource saying the composite is real, and a composite (given, or the normal-mode
"over" of the visible layers on white).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

_DT = {8: ">u1", 16: ">u2", 32: ">f4"}
_FULL = {8: 255, 16: 65535, 32: 1.0}


@dataclass
class L:
    """A layer record (bottom of the stack first in ``make_psd``'s list)."""

    name: str
    pixels: np.ndarray | None = None  # (H, W, C[+alpha]) native dtype; None for groups
    left: int = 0
    top: int = 0
    kind: str = "pixel"  # pixel | group-open | group-end
    mask: np.ndarray | None = None  # (H, W) native dtype over (mask_left, mask_top)
    mask_left: int = 0
    mask_top: int = 0
    mask_default: int = 0
    opacity: int = 255
    clipping: int = 0
    visible: bool = True
    compression: int = 1
    layer_id: int = 0
    blend: bytes = b"norm"  # 4-byte blend-mode key (flatten() treats every layer as normal)
    extra_blocks: list[tuple[bytes, bytes]] = field(default_factory=list)


def _rle_row(row: bytes) -> bytes:
    out, i, n = bytearray(), 0, len(row)
    while i < n:
        j = i
        while j + 1 < n and row[j + 1] == row[i] and j - i < 127:
            j += 1
        if j > i:
            out += bytes([257 - (j - i + 1)]) + row[i : i + 1]
            i = j + 1
            continue
        j = i
        while j + 1 < n and row[j + 1] != row[j] and j - i < 127:
            j += 1
        out += bytes([j - i]) + row[i : j + 1]
        i = j + 1
    return bytes(out)


def _channel(plane: np.ndarray, depth: int, version: int, compression: int) -> bytes:
    raw = np.ascontiguousarray(plane, _DT[depth])
    h, w = raw.shape
    if compression == 0 or h * w == 0:
        return struct.pack(">H", 0) + raw.tobytes()
    rows = [_rle_row(raw[y].tobytes()) for y in range(h)]
    fmt = ">H" if version == 1 else ">I"
    return struct.pack(">H", 1) + b"".join(struct.pack(fmt, len(r)) for r in rows) + b"".join(rows)


def _block(key: bytes, data: bytes) -> bytes:
    data += b"\0" * (-len(data) % 4)
    return b"8BIM" + key + struct.pack(">I", len(data)) + data


def _record(layer: L, ncolour: int, depth: int, version: int):
    chans: list[tuple[int, bytes]] = []
    if layer.pixels is not None:
        p = layer.pixels.reshape(layer.pixels.shape[0], layer.pixels.shape[1], -1)
        h, w = p.shape[:2]
        if p.shape[2] > ncolour:
            chans.append((-1, _channel(p[:, :, ncolour], depth, version, layer.compression)))
        for c in range(ncolour):
            chans.append((c, _channel(p[:, :, c], depth, version, layer.compression)))
    else:
        h = w = 0
        chans = [(c, struct.pack(">H", 0)) for c in [-1, *range(ncolour)]]
    if layer.mask is not None:
        chans.append((-2, _channel(layer.mask, depth, version, layer.compression)))
        mh, mw = layer.mask.shape
        mask = struct.pack(">I4iBBxx", 20, layer.mask_top, layer.mask_left, layer.mask_top + mh,
                           layer.mask_left + mw, layer.mask_default, 0)
    else:
        mask = struct.pack(">I", 0)
    ranges = struct.pack(">I", 8 * (ncolour + 1)) + b"\x00\x00\xff\xff" * 2 * (ncolour + 1)
    raw = layer.name.encode("mac_roman", "replace")[:255]
    pname = bytes([len(raw)]) + raw
    pname += b"\0" * (-len(pname) % 4)
    u = layer.name.encode("utf-16-be")
    blocks = _block(b"luni", struct.pack(">I", len(u) // 2) + u)
    if layer.layer_id:
        blocks += _block(b"lyid", struct.pack(">I", layer.layer_id))
    if layer.kind == "group-open":
        blocks += _block(b"lsct", struct.pack(">I", 1))
    elif layer.kind == "group-end":
        blocks += _block(b"lsct", struct.pack(">I", 3))
    for key, data in layer.extra_blocks:
        blocks += _block(key, data)
    extra = mask + ranges + pname + blocks
    flags = 0x08 | (0 if layer.visible else 0x02)
    lw = ">I" if version == 1 else ">Q"
    head = struct.pack(">4iH", layer.top, layer.left, layer.top + h, layer.left + w, len(chans))
    head += b"".join(struct.pack(">h", c) + struct.pack(lw, len(d)) for c, d in chans)
    head += b"8BIM" + layer.blend + struct.pack(">BBBxI", layer.opacity, layer.clipping, flags,
                                                len(extra))
    return head + extra, b"".join(d for _, d in chans)


def flatten(layers: list[L], width: int, height: int, ncolour: int, depth: int) -> np.ndarray:
    """Normal-mode 'over' of the visible pixel layers on white (masks and groups ignored)."""
    full = float(_FULL[depth])
    out = np.ones((height, width, ncolour), np.float64)
    for layer in layers:
        if layer.kind != "pixel" or layer.pixels is None or not layer.visible:
            continue
        p = layer.pixels.reshape(layer.pixels.shape[0], layer.pixels.shape[1], -1) / full
        h, w = p.shape[:2]
        a = p[:, :, ncolour] if p.shape[2] > ncolour else np.ones((h, w))
        a = a * layer.opacity / 255.0
        y0, x0 = max(layer.top, 0), max(layer.left, 0)
        y1, x1 = min(layer.top + h, height), min(layer.left + w, width)
        if y1 <= y0 or x1 <= x0:
            continue
        src = p[y0 - layer.top : y1 - layer.top, x0 - layer.left : x1 - layer.left]
        aa = a[y0 - layer.top : y1 - layer.top, x0 - layer.left : x1 - layer.left, None]
        out[y0:y1, x0:x1] = src[:, :, :ncolour] * aa + out[y0:y1, x0:x1] * (1 - aa)
    if depth == 32:
        return out.astype(np.float32)
    return np.rint(out * full).astype(np.uint8 if depth == 8 else np.uint16)


def make_psd(layers: list[L], *, width: int, height: int, depth: int = 8, mode: int = 3,
             version: int = 1, composite: np.ndarray | None = None,
             composite_compression: int = 1, layers_in_block: bool = False,
             thumbnail: bool = True, alpha_channels: dict[str, np.ndarray] | None = None,
             resources: dict[int, bytes] | None = None,
             transparency: np.ndarray | None = None) -> bytes:
    """The bytes of a PSD (version 1) or PSB (version 2) file. ``alpha_channels``: named
    (H, W) planes stored after the composite's colour channels (names in resource 1045);
    ``resources``: more image resources {id: data}, after the thumbnail; ``transparency``:
    the composite's (H, W) transparency, stored as the first extra channel with a negative
    layer count (``composite`` is then the colour over white, as Photoshop stores it)."""
    ncolour = {1: 1, 3: 3, 4: 4}[mode]
    alpha_channels = alpha_channels or {}
    nch = ncolour + len(alpha_channels) + (transparency is not None)
    header = b"8BPS" + struct.pack(">H6xHIIHH", version, nch, height, width, depth, mode)
    def resource(rid: int, data: bytes) -> bytes:
        pad = b"\0" * (len(data) % 2)
        head = b"8BIM" + struct.pack(">H", rid) + b"\0\0" + struct.pack(">I", len(data))
        return head + data + pad

    vi = struct.pack(">IBIII", 1, 1, 0, 0, 1)  # version, has real merged data, 2 names, 1
    res = resource(1057, vi)
    if alpha_channels:
        names = b"".join(struct.pack(">I", len(n)) + n.encode("utf-16-be") for n in alpha_channels)
        res += resource(1045, names)
    if thumbnail:
        res += resource(1036, b"\0" * 28 + b"\xff\xd8\xff\xd9")
    for rid, rdata in (resources or {}).items():
        res += resource(rid, rdata)
    recs, datas = [], []
    for layer in layers:
        r, d = _record(layer, ncolour, depth, version)
        recs.append(r)
        datas.append(d)
    count = -len(layers) if transparency is not None else len(layers)
    body = struct.pack(">h", count) + b"".join(recs) + b"".join(datas)
    body += b"\0" * (-len(body) % 4)
    lw = ">I" if version == 1 else ">Q"
    if layers_in_block:
        if depth == 8:
            msg = "layers_in_block is for 16/32-bit files (Photoshop's Lr16/Lr32 blocks)"
            raise ValueError(msg)
        key = b"Lr16" if depth == 16 else b"Lr32"
        blen = struct.pack(">Q" if version == 2 else ">I", len(body))
        lm = struct.pack(lw, 0) + struct.pack(">I", 0) + b"8BIM" + key + blen + body
    else:
        lm = struct.pack(lw, len(body)) + body + struct.pack(">I", 0)
    lm_section = struct.pack(lw, len(lm)) + lm
    if composite is None:
        composite = flatten(layers, width, height, ncolour, depth)
    planes = [composite.reshape(height, width, -1)[:, :, c] for c in range(ncolour)]
    if transparency is not None:
        planes.append(transparency)
    planes += list(alpha_channels.values())
    if composite_compression == 0:
        image = struct.pack(">H", 0) + b"".join(
            np.ascontiguousarray(p, _DT[depth]).tobytes() for p in planes)
    else:
        rows = [_rle_row(np.ascontiguousarray(p, _DT[depth])[y].tobytes())
                for p in planes for y in range(height)]
        fmt = ">H" if version == 1 else ">I"
        image = struct.pack(">H", 1) + b"".join(struct.pack(fmt, len(r)) for r in rows) + b"".join(
            rows)
    return header + struct.pack(">I", 0) + struct.pack(">I", len(res)) + res + lm_section + image


def noise(h: int, w: int, c: int, depth: int = 8, seed: int = 0, alpha: bool = False):
    """Smooth-ish random pixels in the native dtype (optionally with an alpha ramp)."""
    rng = np.random.default_rng(seed)
    x = rng.random((h, w, c))
    x = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1)) / 3
    if alpha:
        a = np.linspace(0.2, 1.0, w)[None, :, None].repeat(h, 0)
        x = np.concatenate([x, a], axis=2)
    if depth == 32:
        return x.astype(np.float32)
    full = _FULL[depth]
    return np.rint(x * full).astype(np.uint8 if depth == 8 else np.uint16)
