"""Write and read little-endian float32 ``.npy`` files from raw bytes, without numpy.

The plug-in process may run in a Python without numpy (GIMP on Windows/macOS); it still has to
hand float32 pixels to the worker and take them back. ``.npy`` (format 1.0) is a fixed magic,
a header dict and the raw C-order data, so both sides stay exact and the worker can use
``numpy.load``/``numpy.save``.
"""

from __future__ import annotations

import ast
import math
import os
import struct

__all__ = ["write_npy", "read_npy"]

_MAGIC = b"\x93NUMPY"


def write_npy(path: str | os.PathLike[str], data: bytes, shape: tuple[int, ...]) -> None:
    """Write ``data`` (C-order little-endian float32 of ``shape``) as a ``.npy`` file."""
    count = math.prod(shape)
    if len(data) != 4 * count:
        msg = f"expected {4 * count} bytes for float32 {shape}, got {len(data)}"
        raise ValueError(msg)
    dims = "".join(f"{s}, " for s in shape) if len(shape) == 1 else ", ".join(map(str, shape))
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}"
    total = len(_MAGIC) + 2 + 2 + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(_MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(data)


def read_npy(path: str | os.PathLike[str]) -> tuple[bytes, tuple[int, ...]]:
    """Read a float32 ``.npy`` file; returns (raw little-endian bytes, shape)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:6] != _MAGIC:
            msg = f"{os.fspath(path)!r} is not a .npy file"
            raise ValueError(msg)
        major = head[6]
        size_fmt, size_len = ("<H", 2) if major == 1 else ("<I", 4)
        (hlen,) = struct.unpack(size_fmt, f.read(size_len))
        info = ast.literal_eval(f.read(hlen).decode("latin1"))
        data = f.read()
    if info.get("descr") != "<f4" or info.get("fortran_order"):
        msg = f"expected C-order little-endian float32, got {info}"
        raise ValueError(msg)
    shape = tuple(int(s) for s in info["shape"])
    count = math.prod(shape)
    if len(data) != 4 * count:
        msg = f"{os.fspath(path)!r}: expected {4 * count} bytes of data, found {len(data)}"
        raise ValueError(msg)
    return data, shape
