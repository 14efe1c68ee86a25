"""Byte-level PSD/PSB records: where every part of a file lives, channel codecs, new records.

This is the lower of the bridge's two tiers (the upper is :mod:`psd_bridge.api`). It never
interprets layers beyond what writing needs: it maps a file's bytes into sections (header,
colour mode data, image resources, layer records and their channel data, global mask info,
global tagged blocks, merged image data), checks every length against the file size before
anything is allocated, decodes and encodes channels in the file's own sample type, and builds
the few byte strings the splice writer emits (a record's rectangle and channel-length table, a
new layer's record, enclosing lengths). Compression codecs come from ``psd_tools.compression``.

Offsets are absolute positions in the original file's bytes; nothing here copies the file.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field

import numpy as np

from core.errors import ClearshotError

__all__ = [
    "PSDFormatError",
    "Header",
    "RecordSpan",
    "Layout",
    "locate",
    "decode_channel",
    "decode_rows",
    "encode_channel",
    "channel_compression",
    "record_prefix",
    "new_record",
    "tagged_block",
    "NATIVE_DTYPE",
    "Span",
    "Spans",
    "skeleton",
    "MAX_LAYER_BYTES",
]

#: Layer pixel decode limit (bytes of one decoded layer, all channels) unless the caller raises
#: it; checked from the header and record rectangles before any buffer exists.
MAX_LAYER_BYTES = 4 << 30

NATIVE_DTYPE = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.float32)}
_STORED_DTYPE = {8: np.dtype(">u1"), 16: np.dtype(">u2"), 32: np.dtype(">f4")}
_SIGNATURES = (b"8BIM", b"8B64")
# Tagged blocks whose length field is 8 bytes in PSB files (the PSB spec's list, plus 'cinf').
_PSB_LONG_KEYS = frozenset(
    {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk", b"lnk2",
     b"FEid", b"FXid", b"PxSD", b"cinf"}
)
_MODES = {0: "Bitmap", 1: "Grayscale", 2: "Indexed", 3: "RGB", 4: "CMYK", 7: "Multichannel",
          8: "Duotone", 9: "Lab"}


class PSDFormatError(ClearshotError, ValueError):
    """The file is not a well-formed PSD/PSB (truncated, wrong lengths, impossible header)."""


def _fail(path: str, what: str) -> PSDFormatError:
    return PSDFormatError(f"{path}: {what}")


@dataclass(frozen=True)
class Header:
    version: int  # 1 = PSD, 2 = PSB
    channels: int
    height: int
    width: int
    depth: int
    mode: int

    @property
    def mode_name(self) -> str:
        return _MODES.get(self.mode, f"mode {self.mode}")

    @property
    def length_size(self) -> int:
        """Bytes of section and channel length fields (4 in PSD, 8 in PSB)."""
        return 4 if self.version == 1 else 8


@dataclass
class RecordSpan:
    """One layer record: its bytes in the file and where its channel data lie."""

    index: int
    start: int  # rectangle
    table_end: int  # end of the channel-length table (blend signature follows)
    end: int  # end of the record (after the extra data)
    rect: tuple[int, int, int, int]  # top, left, bottom, right
    channels: list[tuple[int, int]]  # (channel id, stored length incl. compression word)
    spans: list[tuple[int, int]] = field(default_factory=list)  # channel data, absolute
    blend: bytes = b"norm"
    opacity: int = 255
    clipping: int = 0
    flags: int = 0
    extra_start: int = 0
    mask_rect: tuple[int, int, int, int] | None = None
    mask_default: int = 0
    blend_ranges: tuple[int, int] = (0, 0)  # absolute byte range of the blending ranges data


@dataclass
class Layout:
    """Where every section of a PSD/PSB file lives (absolute offsets into its bytes)."""

    path: str
    size: int
    header: Header
    resources: tuple[int, int]  # body start, end
    resource_blocks: list[tuple[int, int, int]]  # (id, start, end) of each whole block
    layer_mask: tuple[int, int, int]  # length field offset, body start, body end
    layer_info: tuple[int, int, int, int] | None  # len offset, len size, body start, body end
    layer_info_where: str  # "section", "block" (Lr16/Lr32/Layr) or "none"
    count: int  # signed layer count as stored
    records: list[RecordSpan]
    content_end: int  # end of the last channel's data inside the layer info body
    image_data: int  # start of the merged image data (its compression word)
    image_problem: str | None = None  # why the merged image data cannot be patched, if so


def _u(b, off: int, n: int) -> int:
    return int.from_bytes(b[off : off + n], "big")


def parse_header(b, path: str = "<bytes>") -> Header:
    """The 26-byte file header, validated (signature, version, sizes, depth, mode)."""
    if len(b) < 26:
        raise _fail(path, f"file too short for a PSD header ({len(b)} bytes, need 26)")
    if bytes(b[:4]) != b"8BPS":
        raise _fail(path, f"not a PSD/PSB file (signature {bytes(b[:4])!r}, expected b'8BPS')")
    version, channels, height, width, depth, mode = struct.unpack(">H6xHIIHH", b[4:26])
    if version not in (1, 2):
        raise _fail(path, f"unknown PSD version {version} (1 = PSD, 2 = PSB)")
    side = 30000 if version == 1 else 300000
    if not (1 <= width <= side and 1 <= height <= side):
        kind = "PSD" if version == 1 else "PSB"
        msg = f"image size {width}x{height} in the header is outside 1..{side} allowed for {kind}"
        raise _fail(path, msg)
    if not 1 <= channels <= 56:
        raise _fail(path, f"{channels} channels in the header, expected 1..56")
    if depth not in (1, 8, 16, 32):
        raise _fail(path, f"bit depth {depth} in the header, expected 1, 8, 16 or 32")
    if mode not in _MODES:
        raise _fail(path, f"colour mode {mode} in the header is not a known PSD mode")
    return Header(version, channels, height, width, depth, mode)


def _blocks(b, start: int, end: int, version: int, path: str):
    """Yield (key, block start, data start, data end, length offset, length size)."""
    pos = start
    while pos + 12 <= end:
        for skip in range(4):  # writers differ in padding between blocks
            if bytes(b[pos + skip : pos + skip + 4]) in _SIGNATURES:
                pos += skip
                break
        else:
            return
        sig, key = bytes(b[pos : pos + 4]), bytes(b[pos + 4 : pos + 8])
        lsize = 8 if version == 2 and (sig == b"8B64" or key in _PSB_LONG_KEYS) else 4
        n = _u(b, pos + 8, lsize)
        data = pos + 8 + lsize
        if data + n > end:
            raise _fail(path, f"tagged block {key!r} at {pos} claims {n} bytes past its section")
        yield key, pos, data, data + n, pos + 8, lsize
        pos = data + n


def _parse_records(b, body: int, end: int, header: Header, path: str):
    lw = header.length_size
    if body + 2 > end:
        return 0, [], body
    count = struct.unpack(">h", b[body : body + 2])[0]
    pos = body + 2
    records: list[RecordSpan] = []
    for i in range(abs(count)):
        if pos + 18 > end:
            raise _fail(path, f"layer record {i} of {abs(count)} runs past the layer section")
        top, left, bottom, right, nch = struct.unpack(">4iH", b[pos : pos + 18])
        start = pos
        pos += 18
        chans = []
        for _ in range(nch):
            if pos + 2 + lw > end:
                raise _fail(path, f"layer record {i}: channel table runs past the layer section")
            cid = struct.unpack(">h", b[pos : pos + 2])[0]
            chans.append((cid, _u(b, pos + 2, lw)))
            pos += 2 + lw
        table_end = pos
        if pos + 16 > end or bytes(b[pos : pos + 4]) not in _SIGNATURES:
            raise _fail(path, f"layer record {i}: no blend-mode signature at {pos}")
        blend = bytes(b[pos + 4 : pos + 8])
        opacity, clipping, flags = b[pos + 8], b[pos + 9], b[pos + 10]
        extra = _u(b, pos + 12, 4)
        xs = pos + 16
        if xs + extra > end:
            raise _fail(path, f"layer record {i}: extra data ({extra} bytes) runs past the section")
        rec = RecordSpan(i, start, table_end, xs + extra, (top, left, bottom, right), chans,
                         blend=blend, opacity=opacity, clipping=clipping, flags=flags,
                         extra_start=xs)
        if extra >= 4:
            mlen = _u(b, xs, 4)
            if 4 + mlen > extra:
                raise _fail(path, f"layer record {i}: mask data of {mlen} bytes exceeds the record")
            if mlen >= 18:
                mt, ml, mb, mr = struct.unpack(">4i", b[xs + 4 : xs + 20])
                rec.mask_rect = (mt, ml, mb, mr)
                rec.mask_default = b[xs + 20]
            br = xs + 4 + mlen
            blen = _u(b, br, 4) if br + 4 <= xs + extra else 0
            rec.blend_ranges = (br + 4, br + 4 + blen)
        records.append(rec)
        pos = xs + extra
    for rec in records:
        for cid, n in rec.channels:
            if pos + n > end:
                raise _fail(path, f"layer record {rec.index}: channel {cid} data ({n} bytes) "
                            "runs past the layer section (file truncated or lengths wrong)")
            rec.spans.append((pos, pos + n))
            pos += n
    return count, records, pos


def locate(b, path: str = "<bytes>") -> Layout:
    """Map a whole PSD/PSB file (bytes, mmap or memoryview) into its sections.

    Every length is checked against the data before it is used, so a truncated or hostile
    file raises :class:`PSDFormatError` after reading only its section headers.
    """
    header = parse_header(b, path)
    size = len(b)
    lw = header.length_size
    pos = 26
    for what in ("colour mode data", "image resources"):
        if pos + 4 > size:
            raise _fail(path, f"file ends before the {what} section (truncated)")
        n = _u(b, pos, 4)
        if pos + 4 + n > size:
            left = size - pos - 4
            raise _fail(path, f"the {what} section claims {n} bytes but only {left} follow")
        if what == "image resources":
            res = (pos + 4, pos + 4 + n)
        pos += 4 + n
    blocks = []
    rp, rend = res
    while rp + 12 <= rend:
        if bytes(b[rp : rp + 4]) not in (b"8BIM", b"MeSa", b"AgHg", b"PHUT", b"DCSR"):
            raise _fail(path, f"image resource at {rp} has no signature")
        rid = _u(b, rp + 4, 2)
        nl = b[rp + 6]
        dpos = rp + 6 + ((nl + 2) & ~1)
        n = _u(b, dpos, 4)
        nxt = dpos + 4 + n + (n & 1)
        if nxt > rend:
            raise _fail(path, f"image resource {rid} claims {n} bytes past its section")
        blocks.append((rid, rp, nxt))
        rp = nxt
    if pos + lw > size:
        raise _fail(path, "file ends before the layer and mask section (truncated)")
    lm_len = _u(b, pos, lw)
    lm = (pos, pos + lw, pos + lw + lm_len)
    if lm[2] + 2 > size:
        raise _fail(path, f"the layer and mask section claims {lm_len} bytes but only "
                    f"{size - lm[1]} follow (file truncated?)")
    li, where, count, records, content_end = None, "none", 0, [], lm[1]
    if lm_len:
        li_len = _u(b, lm[1], lw)
        body = lm[1] + lw
        if body + li_len > lm[2]:
            raise _fail(path, f"the layer info claims {li_len} bytes past the layer section")
        if li_len >= 2 and struct.unpack(">h", b[body : body + 2])[0] != 0:
            li, where = (lm[1], lw, body, body + li_len), "section"
        gm = body + li_len
        if li is None and gm + 4 <= lm[2]:
            gpos = gm + 4 + _u(b, gm, 4)
            if gpos > lm[2]:
                raise _fail(path, "the global layer mask info runs past the layer section")
            for key, _s, ds, de, loff, lsize in _blocks(b, gpos, lm[2], header.version, path):
                if key in (b"Lr16", b"Lr32", b"Layr") and de - ds >= 2:
                    li, where = (loff, lsize, ds, de), "block"
                    break
        if li is not None:
            count, records, content_end = _parse_records(b, li[2], li[3], header, path)
    try:
        _check_image_data(b, lm[2], header, path)
        image_problem = None
    except PSDFormatError as exc:  # psd-tools and Photoshop open such files; only refuse to
        image_problem = str(exc)  # patch the composite (see Layout.image_problem)
    return Layout(path, size, header, res, blocks, lm, li, where, count, records, content_end,
                  lm[2], image_problem)


def _check_image_data(b, start: int, header: Header, path: str) -> None:
    """The merged image data must fit in the file (checked without decoding it)."""
    size = len(b)
    comp = _u(b, start, 2)
    rows = header.channels * header.height
    if comp == 0:
        need = 2 + rows * ((header.width * header.depth + 7) // 8)
        if start + need > size:
            raise _fail(path, f"merged image data: {need} raw bytes expected, "
                        f"{size - start} present (truncated, or a wrong header size)")
    elif comp == 1:
        cs = 2 if header.version == 1 else 4
        table = rows * cs
        if start + 2 + table > size:
            raise _fail(path, f"merged image data: the RLE row table needs {table} bytes, "
                        f"{size - start - 2} present (truncated, or a wrong header size)")
        counts = np.frombuffer(b[start + 2 : start + 2 + table], ">u2" if cs == 2 else ">u4")
        total = int(counts.sum(dtype=np.int64))
        if start + 2 + table + total > size:
            raise _fail(path, f"merged image data: RLE rows need {total} bytes, "
                        f"{size - start - 2 - table} present (file truncated)")
    elif comp not in (2, 3):
        raise _fail(path, f"merged image data: unknown compression {comp}")


# ----------------------------------------------------------------------------- channels
def channel_compression(b, span: tuple[int, int]) -> int:
    """Compression word of a stored channel (0 raw, 1 RLE, 2 ZIP, 3 ZIP with prediction)."""
    return _u(b, span[0], 2) if span[1] - span[0] >= 2 else 0


def decode_channel(b, span: tuple[int, int], width: int, height: int, header: Header,
                   *, what: str = "channel") -> np.ndarray:
    """One stored channel decoded to the file's own sample type, shape (height, width).

    A channel that does not decode raises :class:`PSDFormatError` (psd-tools would substitute
    black and warn; the bridge must not write black pixels back).
    """
    from psd_tools.compression import PSDDecompressionWarning, decompress

    dt = _STORED_DTYPE.get(header.depth)
    if dt is None:
        msg = f"{what}: {header.depth}-bit channels are not supported (8, 16 or 32-bit only)"
        raise PSDFormatError(msg)
    if width <= 0 or height <= 0:
        return np.zeros((max(height, 0), max(width, 0)), NATIVE_DTYPE[header.depth])
    need = width * height * dt.itemsize
    if need > MAX_LAYER_BYTES:
        msg = f"{what}: {width}x{height} would need {need >> 20} MiB, above the bridge's limit"
        raise PSDFormatError(msg)
    comp = channel_compression(b, span)
    if comp not in (0, 1, 2, 3):
        msg = f"{what}: unknown compression {comp} (expected 0..3)"
        raise PSDFormatError(msg)
    data = bytes(b[span[0] + 2 : span[1]])
    if comp == 0 and len(data) < need:
        msg = f"{what}: {len(data)} raw bytes, expected {need} (truncated)"
        raise PSDFormatError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PSDDecompressionWarning)
            raw = decompress(data, comp, width, height, header.depth, header.version,
                             max_output_bytes=need)
    except (ValueError, PSDDecompressionWarning) as exc:
        msg = f"{what}: channel data does not decode ({exc})"
        raise PSDFormatError(msg) from None
    plane = np.frombuffer(raw, dt, count=width * height).reshape(height, width)
    return plane.astype(NATIVE_DTYPE[header.depth], copy=False)  # read-only when no swap


def decode_rows(b, span: tuple[int, int], width: int, height: int, header: Header,
                y0: int, y1: int, *, what: str = "channel") -> np.ndarray:
    """Rows ``y0..y1`` of a stored channel in the file's sample type, shape (y1 - y0, width).

    RAW and RLE channels decode only those rows (RLE through its row-length table); a ZIP
    channel is one deflate stream and is decoded whole (:func:`decode_channel`) and sliced.
    """
    from psd_tools.compression import PSDDecompressionWarning, decode_rle

    if not (0 <= y0 <= y1 <= height):
        msg = f"{what}: rows {y0}..{y1} outside the channel's 0..{height}"
        raise ValueError(msg)
    comp = channel_compression(b, span)
    dt = _STORED_DTYPE.get(header.depth)
    if comp not in (0, 1) or dt is None or width <= 0 or y1 == y0:
        return decode_channel(b, span, width, height, header, what=what)[y0:y1]
    row = width * dt.itemsize
    n = y1 - y0
    if comp == 0:
        first = span[0] + 2 + y0 * row
        if span[0] + 2 + height * row > span[1]:
            msg = f"{what}: raw data shorter than {width}x{height} (truncated)"
            raise PSDFormatError(msg)
        plane = np.frombuffer(b[first : first + n * row], dt).reshape(n, width)
        return plane.astype(NATIVE_DTYPE[header.depth])
    cs = 2 if header.version == 1 else 4
    table_end = span[0] + 2 + height * cs
    if table_end > span[1]:
        msg = f"{what}: RLE row table runs past the channel data"
        raise PSDFormatError(msg)
    counts = np.frombuffer(b[span[0] + 2 : table_end], ">u2" if cs == 2 else ">u4")
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]) + table_end
    if offsets[-1] > span[1]:
        msg = f"{what}: RLE rows run past the channel data (lengths wrong)"
        raise PSDFormatError(msg)
    table = bytes(b[span[0] + 2 + y0 * cs : span[0] + 2 + y1 * cs])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PSDDecompressionWarning)
            raw = decode_rle(table + bytes(b[offsets[y0] : offsets[y1]]), width, n,
                             header.depth, header.version, max_output_bytes=n * row)
    except (ValueError, PSDDecompressionWarning) as exc:
        msg = f"{what}: channel data does not decode ({exc})"
        raise PSDFormatError(msg) from None
    if len(raw) < n * row:
        msg = f"{what}: RLE rows decode to {len(raw)} bytes, expected {n * row}"
        raise PSDFormatError(msg)
    return np.frombuffer(raw, dt, count=n * width).reshape(n, width).astype(
        NATIVE_DTYPE[header.depth])


def encode_channel(plane: np.ndarray, compression: int, header: Header) -> bytes:
    """A (H, W) plane in the file's sample type encoded as stored: compression word + data."""
    from psd_tools.compression import compress

    dt = _STORED_DTYPE[header.depth]
    h, w = plane.shape
    if h == 0 or w == 0:
        return struct.pack(">H", 0)
    if header.depth != 8 and compression == 1:
        compression = 3  # Photoshop writes ZIP with prediction above 8 bits; keep to that
    raw = np.ascontiguousarray(plane, dtype=dt).tobytes()
    return struct.pack(">H", compression) + compress(raw, compression, w, h, header.depth,
                                                     header.version)


# ----------------------------------------------------------------------------- new bytes
def record_prefix(rect: tuple[int, int, int, int], channels: list[tuple[int, int]],
                  header: Header) -> bytes:
    """A record's rectangle, channel count and channel-length table."""
    out = [struct.pack(">4iH", *rect, len(channels))]
    for cid, n in channels:
        out.append(struct.pack(">h", cid) + n.to_bytes(header.length_size, "big"))
    return b"".join(out)


def tagged_block(key: bytes, data: bytes, header: Header) -> bytes:
    """A layer tagged block ('8BIM' key length data), data padded to 4 bytes as Photoshop does."""
    data = data + b"\0" * (-len(data) % 4)
    lsize = 8 if header.version == 2 and key in _PSB_LONG_KEYS else 4
    return b"8BIM" + key + len(data).to_bytes(lsize, "big") + data


def _pascal_name(name: str) -> bytes:
    raw = name.encode("mac_roman", "replace")[:255]
    out = bytes([len(raw)]) + raw
    return out + b"\0" * (-len(out) % 4)


def new_record(*, rect: tuple[int, int, int, int], channels: list[tuple[int, int]],
               header: Header, name: str, layer_id: int, blend: bytes = b"norm",
               opacity: int = 255, clipping: int = 0, visible: bool = True,
               mask_rect: tuple[int, int, int, int] | None = None, mask_default: int = 0,
               blend_ranges: bytes = b"") -> bytes:
    """The bytes of a fresh pixel-layer record (Unicode name 'luni' and layer id 'lyid')."""
    flags = 0x08 | (0 if visible else 0x02)  # bit 3: bit 4 is meaningful (Photoshop 5+)
    if mask_rect is not None:
        mask = struct.pack(">I4iBBxx", 20, *mask_rect, mask_default, 0)
    else:
        mask = struct.pack(">I", 0)
    ranges = struct.pack(">I", len(blend_ranges)) + blend_ranges
    uname = name.encode("utf-16-be")
    blocks = tagged_block(b"luni", struct.pack(">I", len(uname) // 2) + uname, header)
    blocks += tagged_block(b"lyid", struct.pack(">I", layer_id), header)
    extra = mask + ranges + _pascal_name(name) + blocks
    fixed = b"8BIM" + blend + struct.pack(">BBBxI", opacity, clipping, flags, len(extra))
    return record_prefix(rect, channels, header) + fixed + extra


# ----------------------------------------------------------------------------- spans
@dataclass(frozen=True)
class Span:
    """Bytes ``start..end`` of the original file, copied by the writer without reading them
    into memory (``os.copy_file_range``)."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


class Spans:
    """``Spans()[a:b]`` is ``Span(a, b)``: lets code written for slices emit spans."""

    def __getitem__(self, key: slice) -> Span:
        return Span(key.start or 0, key.stop)


def skeleton(b, layout: Layout) -> bytes:
    """The file with every channel's data and the merged image reduced to a raw compression
    word: what psd-tools needs to build the layer tree (names, kinds, groups, masks' rectangles,
    tagged blocks) without reading the pixels, so opening a large file costs little memory."""
    h = layout.header
    lm_off, lm_body, lm_end = layout.layer_mask
    mv = memoryview(b)
    if layout.layer_info is None:
        lm = bytes(mv[lm_body:lm_end])
    else:
        loff, lsize, bs, be = layout.layer_info
        body = [struct.pack(">h", layout.count)]
        for rec in layout.records:
            body.append(record_prefix(rec.rect, [(c, 2) for c, _ in rec.channels], h))
            body.append(bytes(mv[rec.table_end : rec.end]))
        body.append(b"\0\0" * sum(len(rec.channels) for rec in layout.records))
        n = sum(len(x) for x in body)
        n += (be - bs - n) % 4  # same remainder mod 4 as the original (see the writer)
        lm = b"".join([bytes(mv[lm_body:loff]), n.to_bytes(lsize, "big"), *body,
                       b"\0" * (n - sum(len(x) for x in body)), bytes(mv[be:lm_end])])
    return b"".join([bytes(mv[:lm_off]), len(lm).to_bytes(h.length_size, "big"), lm, b"\0\0"])
