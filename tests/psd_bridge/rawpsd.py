"""An independent PSD/PSB section splitter for tests (uses neither psd-tools nor the bridge).

``split(data)`` returns a :class:`Parts` with every component of a file as raw bytes, so that
two files can be compared part by part: header, colour mode data, image resources by id, each
layer record (its bytes without the channel-length table, its tagged blocks by key, each
channel's stored bytes), global layer mask info, global tagged blocks and the merged image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_LONG_IN_PSB = {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk",
                b"lnk2", b"FEid", b"FXid", b"PxSD", b"cinf"}
_LAYER_CONTAINERS = (b"Lr16", b"Lr32", b"Layr")


class Cursor:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            msg = f"need {n} bytes at {self.pos}, section ends at {self.end}"
            raise ValueError(msg)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u(self, n: int) -> int:
        return int.from_bytes(self.read(n), "big")

    def s(self, fmt: str):
        return struct.unpack(">" + fmt, self.read(struct.calcsize(">" + fmt)))


@dataclass
class Record:
    rect: tuple[int, int, int, int]
    channel_ids: list[int]
    fixed: bytes  # the record without its channel lengths
    blocks: dict[bytes, list[bytes]]
    name: bytes
    channels: dict[int, bytes] = field(default_factory=dict)
    clipping: int = 0
    flags: int = 0


@dataclass
class Parts:
    version: int
    header: bytes
    colour_mode: bytes
    resources: dict[int, list[bytes]]
    count: int
    records: list[Record]
    global_mask: bytes
    global_blocks: dict[bytes, list[bytes]]
    image: bytes


def _tagged(data: bytes, start: int, end: int, version: int) -> list[tuple[bytes, bytes]]:
    out = []
    cur = Cursor(data, start, end)
    while cur.end - cur.pos >= 12:
        while cur.end - cur.pos >= 4 and data[cur.pos : cur.pos + 4] not in (b"8BIM", b"8B64"):
            cur.pos += 1  # padding between blocks
        if cur.end - cur.pos < 12:
            break
        sig, key = cur.read(4), cur.read(4)
        n = cur.u(8 if version == 2 and (sig == b"8B64" or key in _LONG_IN_PSB) else 4)
        out.append((key, cur.read(n)))
    return out


def _records(data: bytes, start: int, end: int, version: int) -> tuple[int, list[Record]]:
    cur = Cursor(data, start, end)
    (count,) = cur.s("h")
    recs = []
    lsize = 4 if version == 1 else 8
    lengths = []
    for _ in range(abs(count)):
        rec_start = cur.pos
        rect = cur.s("4i")
        (n,) = cur.s("H")
        ids, lens = [], []
        for _ in range(n):
            ids.append(cur.s("h")[0])
            lens.append(cur.u(lsize))
        after = cur.pos
        cur.read(8)
        _op, clip, flags, _f = cur.s("4B")
        xlen = cur.u(4)
        xstart = cur.pos
        mlen = cur.u(4)
        cur.read(mlen)
        blen = cur.u(4)
        cur.read(blen)
        nlen = data[cur.pos]
        name = cur.read(((nlen + 4) // 4) * 4)[1 : 1 + nlen]
        blocks: dict[bytes, list[bytes]] = {}
        for key, val in _tagged(data, cur.pos, xstart + xlen, version):
            blocks.setdefault(key, []).append(val)
        cur.pos = xstart + xlen
        fixed = data[rec_start : rec_start + 18] + data[after : cur.pos]
        recs.append(Record(rect, ids, fixed, blocks, name, clipping=clip, flags=flags))
        lengths.append(lens)
    for rec, lens in zip(recs, lengths, strict=True):
        for cid, n in zip(rec.channel_ids, lens, strict=True):
            rec.channels[cid] = cur.read(n)
    return count, recs


def split(data: bytes) -> Parts:
    cur = Cursor(data)
    if cur.read(4) != b"8BPS":
        msg = "not a PSD"
        raise ValueError(msg)
    (version,) = cur.s("H")
    cur.pos = 26
    colour_mode = cur.read(cur.u(4))
    rlen = cur.u(4)
    rend = cur.pos + rlen
    resources: dict[int, list[bytes]] = {}
    while cur.pos < rend:
        cur.read(4)
        (rid,) = cur.s("H")
        nl = data[cur.pos]
        cur.read((nl + 2) // 2 * 2)
        n = cur.u(4)
        resources.setdefault(rid, []).append(cur.read(n))
        cur.read(n % 2)
    lsize = 4 if version == 1 else 8
    lm_len = cur.u(lsize)
    lm_end = cur.pos + lm_len
    count, recs, gmask, gblocks = 0, [], b"", {}
    if lm_len:
        li_len = cur.u(lsize)
        li_start = cur.pos
        if li_len:
            count, recs = _records(data, li_start, li_start + li_len, version)
        cur.pos = li_start + li_len
        if lm_end - cur.pos >= 4:
            gmask = cur.read(cur.u(4))
            for key, val in _tagged(data, cur.pos, lm_end, version):
                if key in _LAYER_CONTAINERS and not recs:
                    count, recs = _records(val, 0, len(val), version)
                    val = b"<layers>"
                gblocks.setdefault(key, []).append(val)
    return Parts(version, data[:26], colour_mode, resources, count, recs, gmask, gblocks,
                 data[lm_end:])
