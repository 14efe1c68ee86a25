"""The stored composite (merged image data): decode, patch and re-encode only the rows an edit
touched, copying every other row's bytes from the original file.

Photoshop's composite stays exactly Photoshop's outside the edited rectangle. RAW and RLE
composites are patched row by row; a ZIP composite (one deflate stream) is decoded and
re-encoded whole.
"""

from __future__ import annotations

import struct

import numpy as np

from .records import _STORED_DTYPE, NATIVE_DTYPE, Header, PSDFormatError

__all__ = ["CompositeRows", "read_rows", "encode_with_rows"]


class CompositeRows:
    """Rows ``top..bottom`` of every composite channel, native dtype, shape (C, rows, W)."""

    def __init__(self, planes: np.ndarray, top: int, bottom: int) -> None:
        self.planes = planes
        self.top = top
        self.bottom = bottom


def _rle_table(b, start: int, header: Header):
    cs = 2 if header.version == 1 else 4
    n = header.channels * header.height
    table_end = start + 2 + n * cs
    if table_end > len(b):
        msg = "merged image data: RLE row table runs past the end of the file"
        raise PSDFormatError(msg)
    counts = np.frombuffer(b[start + 2 : table_end], ">u2" if cs == 2 else ">u4").astype(np.int64)
    offsets = table_end + np.concatenate([[0], np.cumsum(counts)])
    if offsets[-1] > len(b):
        msg = "merged image data: RLE rows run past the end of the file (truncated)"
        raise PSDFormatError(msg)
    return counts, offsets, cs


def read_rows(b, start: int, header: Header, top: int, bottom: int,
              channels: list[int] | None = None) -> CompositeRows:
    """Decode rows [top, bottom) of the merged image data at ``start``: every channel, or
    those listed (``planes[i]`` is then ``channels[i]``)."""
    from psd_tools.compression import decode_rle

    h, w = header.height, header.width
    wanted = list(range(header.channels)) if channels is None else channels
    c = len(wanted)
    dt = _STORED_DTYPE.get(header.depth)
    if dt is None:
        msg = f"{header.depth}-bit composites are not updated"
        raise PSDFormatError(msg)
    row_bytes = w * dt.itemsize
    comp = int.from_bytes(b[start : start + 2], "big")
    out = np.empty((c, bottom - top, w), NATIVE_DTYPE[header.depth])
    if comp == 0:
        need = start + 2 + header.channels * h * row_bytes
        if need > len(b):
            msg = "merged image data: raw data truncated"
            raise PSDFormatError(msg)
        for i, ch in enumerate(wanted):
            base = start + 2 + (ch * h + top) * row_bytes
            raw = b[base : base + (bottom - top) * row_bytes]
            out[i] = np.frombuffer(raw, dt).reshape(bottom - top, w)
    elif comp == 1:
        counts, offsets, cs = _rle_table(b, start, header)
        for i, ch in enumerate(wanted):
            first, last = ch * h + top, ch * h + bottom
            table = bytes(b[start + 2 + first * cs : start + 2 + last * cs])
            raw = decode_rle(table + bytes(b[offsets[first] : offsets[last]]), w, bottom - top,
                             header.depth, header.version, max_output_bytes=row_bytes * h)
            out[i] = np.frombuffer(raw, dt).reshape(bottom - top, w)
    else:
        full = _zip_planes(b, start, header, comp)
        out[:] = full[wanted, top:bottom]
    return CompositeRows(out, top, bottom)


def _zip_planes(b, start: int, header: Header, comp: int) -> np.ndarray:
    from psd_tools.compression import decompress

    h, w, c = header.height, header.width, header.channels
    dt = _STORED_DTYPE[header.depth]
    raw = decompress(bytes(b[start + 2 :]), comp, w, h * c, header.depth, header.version)
    return np.frombuffer(raw, dt).reshape(c, h, w).astype(NATIVE_DTYPE[header.depth])


def encode_with_rows(b, start: int, header: Header, rows: CompositeRows, *, mv=None) -> list:
    """The merged image data with rows replaced: a list of byte strings and ``mv[a:b]`` slices
    of the original (``mv`` defaults to a memoryview of ``b``)."""
    from psd_tools.compression import compress, encode_rle

    h, w, c = header.height, header.width, header.channels
    dt = _STORED_DTYPE[header.depth]
    row_bytes = w * dt.itemsize
    comp = int.from_bytes(b[start : start + 2], "big")
    mv = memoryview(b) if mv is None else mv
    top, bottom = rows.top, rows.bottom
    if comp == 0:
        parts: list = [mv[start : start + 2]]
        for ch in range(c):
            base = start + 2 + ch * h * row_bytes
            parts.append(mv[base : base + top * row_bytes])
            parts.append(np.ascontiguousarray(rows.planes[ch], dt).tobytes())
            parts.append(mv[base + bottom * row_bytes : base + h * row_bytes])
        return parts
    if comp == 1:
        counts, offsets, cs = _rle_table(b, start, header)
        counts = counts.copy()
        n = bottom - top
        new_rows = []
        for ch in range(c):
            block = np.ascontiguousarray(rows.planes[ch], dt).tobytes()
            enc = encode_rle(block, w, n, header.depth, header.version)  # n counts, then rows
            counts[ch * h + top : ch * h + bottom] = np.frombuffer(
                enc[: n * cs], ">u2" if cs == 2 else ">u4")
            new_rows.append(enc[n * cs :])
        table = counts.astype(">u2" if cs == 2 else ">u4").tobytes()
        parts = [mv[start : start + 2], table]
        for ch in range(c):
            first, last = ch * h + top, ch * h + bottom
            parts.append(mv[offsets[ch * h] : offsets[first]])
            parts.append(new_rows[ch])
            parts.append(mv[offsets[last] : offsets[(ch + 1) * h]])
        return parts
    full = _zip_planes(b, start, header, comp)
    full[:, top:bottom] = rows.planes
    raw = np.ascontiguousarray(full, dt).tobytes()
    return [struct.pack(">H", comp), compress(raw, comp, w, h * c, header.depth, header.version)]
