"""Checks of one real PSD/PSB, shared by the corpus tests and ``benchmarks/psd_corpus.py``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from checks import assert_isolated, psd_tools_layers, psd_tools_pixels

from psd_bridge.api import MaskSource, Operation, open_document


def _invert(pixels, *, linear, progress=None):
    """A deterministic edit that changes every colour sample (alpha kept)."""
    out = pixels.copy()
    n = 1 if pixels.shape[2] in (1, 2) else 3
    if pixels.dtype.kind == "f":
        out[:, :, :n] = 1.0 - pixels[:, :, :n]
    else:
        out[:, :, :n] = np.iinfo(pixels.dtype).max - pixels[:, :, :n]
    return out


INVERT = Operation("invert", _invert, "{target} edited ✓")


def render_check(src: Path, out: Path, region: list[int], depth: int) -> tuple[float, float]:
    """The exact composite update against psd-tools' render of the written file, over
    ``region``, on the pixels where psd-tools renders the *original* exactly as its stored
    composite (elsewhere psd-tools and Photoshop disagree before any edit): (largest difference
    in 8-bit levels, fraction of the region's pixels compared)."""
    from psd_tools import PSDImage

    from psd_bridge.api import _composite_arrays

    full = {8: 255.0, 16: 65535.0}[depth]
    le, t, r, b = region
    old, new = PSDImage.open(src), PSDImage.open(out)
    n = 1 if old.channels < 3 or old.color_mode.name == "GRAYSCALE" else 3
    def matted(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        # as stored: over white (psd-tools un-mattes on reading; low alphas amplify rounding)
        c = colour[:, :, :n] if alpha is None else colour[:, :, :n] * alpha + (1.0 - alpha)
        return np.rint(c * full)

    def stored(psd) -> np.ndarray:
        x = psd.numpy()[t:b, le:r]
        return matted(x, x[:, :, n : n + 1] if x.shape[2] > n else None)

    def rendered(psd) -> np.ndarray:
        colour, _, alpha = _composite_arrays(psd, tuple(region))
        return matted(colour, alpha)

    stored_old, stored_new = stored(old), stored(new)
    rend_old, rend_new = rendered(old), rendered(new)
    agree = (rend_old == stored_old).all(axis=2)
    if not agree.any():
        return 0.0, 0.0
    diff = np.abs(stored_new - rend_new)[agree].max() * 255.0 / full
    return float(diff), float(agree.mean())


def check_file(path: Path, *, compare_render: bool = False) -> dict:
    """Open, no-op save, replace one pixel layer, add one masked layer; returns what held.

    Raises AssertionError on any violation. Keys: opened, noop_identical, editable, edit_isolated,
    layer_added, composite (what the edit did to the composite), and with ``compare_render``
    render_diff (see :func:`render_check`) where the composite was updated exactly.
    """
    res = dict(opened=False, noop_identical=False, editable=False, edit_isolated=False,
               layer_added=False, composite=None, render_diff=None)
    data = path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("out" + path.suffix)
        with open_document(path) as doc:
            res["opened"] = True
            doc.save(out)
            targets = [L for L in doc.layers if L.processable]
        assert out.read_bytes() == data, "no-op save changed bytes"
        res["noop_identical"] = True
        if not targets:
            return res
        res["editable"] = True
        target = min(targets, key=lambda L: L.index)  # deterministic: lowest record
        os.unlink(out)
        with open_document(path) as doc:
            ref = [L for L in doc.layers if L.index == target.index][0]
            doc.apply_to_layer(ref, INVERT, mode="replace")
            expected = doc.edits[0].new_pixels
            depth = doc.header.depth
            report = doc.save(out)
        c = report["composite"]
        res["composite"] = c["action"] + (":" + c["method"] if c["action"] == "update" else "")
        if c["action"] == "update" and c.get("through_layers_above"):
            res["composite"] += " through layers above"
        if compare_render and c["action"] == "update" and c["method"] == "exact blend":
            res["render_diff"] = render_check(path, out, c["region"], depth)
        new = out.read_bytes()
        assert_isolated(data, new, replaced=frozenset({target.index}))
        _, layers = psd_tools_layers(new)
        got = psd_tools_pixels(layers[target.index], depth)
        n = expected.shape[2] - (1 if expected.shape[2] in (2, 4) else 0)
        np.testing.assert_array_equal(got[:, :, :n], expected[:, :, :n])
        res["edit_isolated"] = True
        os.unlink(out)
        with open_document(path) as doc:
            ref = [L for L in doc.layers if L.index == target.index][0]
            mask = MaskSource.own() if doc.read_mask(ref) is not None else None
            doc.apply_to_layer(ref, INVERT, mask=mask)
            after = doc._insert_after(ref)
            doc.save(out)
        new = out.read_bytes()
        (rec,) = assert_isolated(data, new, inserted={after: 1})
        assert -2 in rec.channel_ids
        _, layers = psd_tools_layers(new)
        added = layers[after + 1]
        assert added.name == f"{target.name} edited ✓"
        assert added.has_mask()
        res["layer_added"] = True
    return res
