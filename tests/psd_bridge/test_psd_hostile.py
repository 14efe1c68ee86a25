"""Corrupt files: truncated, bytes flipped, lengths overwritten. Each either opens and saves (the
damage is inside pixel data the bridge copies as it is) or raises PSDFormatError quickly; no
other exception, no warning, and the output path is created only on success."""

from __future__ import annotations

import random
import time

import pytest
from make_psd import L, make_psd, noise
from psdfix import corpus_files, put

from psd_bridge.api import open_document, sharpen_operation
from psd_bridge.records import PSDFormatError

OP = sharpen_operation(150, 1, 0)


def _generated() -> list[tuple[str, bytes]]:
    layers = [L("Bg", noise(12, 14, 3, 8)), L("G", kind="group-end"),
              L("A", noise(6, 7, 3, 8, seed=2, alpha=True), left=2, top=3,
                mask=noise(6, 7, 1, 8)[:, :, 0], mask_left=2, mask_top=3),
              L("G", kind="group-open")]
    out = [("gen8.psd", make_psd(layers, width=14, height=12)),
           ("gen16.psb", make_psd([L("Bg", noise(12, 14, 3, 16))], width=14, height=12,
                                  depth=16, version=2, layers_in_block=True))]
    small = [p for p in corpus_files() if p.stat().st_size < 40_000]
    random.Random(7).shuffle(small)
    out += [(p.name, p.read_bytes()) for p in small[:6]]
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.choice(["truncate", "flip", "length"])
    if kind == "truncate":
        return bytes(b[: rng.randrange(len(b))])
    if kind == "flip":
        for _ in range(4):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    p = rng.randrange(26, len(b) - 4)
    b[p : p + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\0\0\0\0", b"\0\1\0\0"])
    return bytes(b)


@pytest.mark.parametrize(("name", "data"), _generated(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_mutated_files_fail_cleanly(tmp_path, name, data):
    rng = random.Random(name)
    suffix = name[-4:]
    for k in range(25):
        src = put(tmp_path, _mutate(data, rng), f"in{k}{suffix}")
        out = tmp_path / f"out{k}{suffix}"
        t0 = time.perf_counter()
        try:
            with open_document(src) as doc:
                todo = [L for L in doc.layers if L.processable]
                if todo:
                    doc.apply_to_layer(todo[0], OP, mode=rng.choice(["replace", "new-layer"]))
                doc.save(out)
        except PSDFormatError:
            assert not out.exists()
        assert time.perf_counter() - t0 < 10
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
