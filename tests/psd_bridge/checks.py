"""Part-by-part comparison of an original PSD and the bridge's output (through rawpsd only)."""

from __future__ import annotations

import io
import logging

import numpy as np
from rawpsd import Record, split

THUMBNAILS = {1033, 1036}
XMP = 1060


def assert_xmp_kept(old: list[bytes] | None, new: list[bytes]) -> list[dict]:
    """The new XMP packet is the old one plus the clearshot provenance (the trailing padding
    may shrink); returns the stored runs."""
    import re

    from psd_bridge.xmp import _OURS, read_provenance

    assert len(new) == 1
    runs = read_provenance(new[0])
    assert runs, "an XMP packet changed without clearshot provenance in it"
    if old is None:
        return runs

    def core(p: bytes) -> bytes:
        text = _OURS.sub("", p.rstrip(b"\0").decode("utf-8"), count=1)
        return re.sub(r"\s*(<\?xpacket end=)", r"\1", text).encode()

    assert core(new[0]) == core(old[0]), "the XMP packet changed beyond the provenance"
    return runs


def assert_isolated(orig: bytes, new: bytes, *, replaced: frozenset[int] = frozenset(),
                    inserted: dict[int, int] | None = None) -> list[Record]:
    """Everything but the named edits is byte-identical; returns the inserted records.

    ``replaced``: record indices whose colour channels may differ (and nothing else of them);
    ``inserted``: {record index: number of new records right above it}. The composite and the
    thumbnail resources may differ only when something was edited.
    """
    inserted = inserted or {}
    a, b = split(orig), split(new)
    assert b.header == a.header
    assert b.colour_mode == a.colour_mode
    edited = bool(replaced or inserted)
    for rid in set(a.resources) | set(b.resources):
        if rid in THUMBNAILS and edited:
            if rid in b.resources and b.resources[rid] != a.resources[rid]:
                assert rid == 1036, "only the Photoshop 5 thumbnail (1036) is refreshed"
                assert len(b.resources[rid]) == 1
                read_thumbnail(b.resources[rid][0])
            continue
        if rid == XMP and edited and b.resources.get(rid) != a.resources.get(rid):
            assert_xmp_kept(a.resources.get(rid), b.resources[rid])
            continue
        assert b.resources.get(rid) == a.resources.get(rid), f"resource {rid} changed"
    assert b.global_mask == a.global_mask
    assert b.global_blocks == a.global_blocks, "global tagged blocks changed"
    assert abs(b.count) == abs(a.count) + sum(inserted.values())
    assert (b.count < 0) == (a.count < 0)
    new_records = []
    j = 0
    for i, ra in enumerate(a.records):
        rb = b.records[j]
        assert rb.fixed == ra.fixed, f"record {i} changed"
        assert rb.blocks == ra.blocks
        if i in replaced:
            colour = {c for c in ra.channel_ids if c >= 0}
            for cid in ra.channel_ids:
                if cid not in colour:
                    assert rb.channels[cid] == ra.channels[cid], f"record {i} channel {cid}"
        else:
            assert rb.channels == ra.channels, f"channels of record {i} changed"
        j += 1
        for _ in range(inserted.get(i, 0)):
            new_records.append(b.records[j])
            j += 1
    assert j == len(b.records)
    if not edited:
        assert b.image == a.image
    return new_records


def read_thumbnail(data: bytes) -> np.ndarray:
    """Check a thumbnail resource's data (28-byte header + JFIF) and decode it, (h, w, 3) RGB."""
    import struct

    from PIL import Image

    fmt, w, h, wb, total, size, bits, planes = struct.unpack(">6I2H", data[:28])
    assert (fmt, bits, planes) == (1, 24, 1)
    assert wb == (w * 24 + 31) // 32 * 4
    assert total == wb * h
    assert size == len(data) - 28
    assert data[28:30] == b"\xff\xd8"
    assert b"JFIF" in data[28:60]
    assert max(w, h) <= 160
    with Image.open(io.BytesIO(data[28:])) as im:
        assert im.size == (w, h)
        assert im.mode == "RGB"
        return np.asarray(im)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def psd_tools_layers(data: bytes):
    """psd-tools' view of a file: its layers, bottom first (as stored). psd-tools must parse
    it without logging a warning (it logs, rather than raises, on misaligned blocks)."""
    from psd_tools import PSDImage

    log = logging.getLogger("psd_tools")
    collect = _Collect()
    log.addHandler(collect)
    try:
        psd = PSDImage.open(io.BytesIO(data))
    finally:
        log.removeHandler(collect)
    assert not collect.messages, f"psd-tools warned: {collect.messages[:3]}"
    li = psd._record._get_layer_info()
    recs = list(li.layer_records) if li is not None and li.layer_records else []
    by_rec = {id(L._record): L for L in psd.descendants()}
    return psd, [by_rec.get(id(r)) for r in recs]


def psd_tools_pixels(layer, depth: int) -> np.ndarray:
    """A layer's colour (+alpha) read by psd-tools, in the file's dtype."""
    x = layer.numpy()
    if depth == 32:
        return x.astype(np.float32)
    full = 255 if depth == 8 else 65535
    return np.rint(x * full).astype(np.uint8 if depth == 8 else np.uint16)
