"""The bridge on small generated PSD/PSB files: read, select, edit, splice, verify."""

from __future__ import annotations

import numpy as np
import pytest
from checks import assert_isolated, psd_tools_layers, psd_tools_pixels, read_thumbnail
from make_psd import L, make_psd, noise
from psdfix import put
from rawpsd import split

from core.errors import ClearshotError
from psd_bridge.api import (
    LayerSelectionError,
    MaskSource,
    Operation,
    UnsupportedDocumentError,
    open_document,
    sharpen_operation,
)
from psd_bridge.records import PSDFormatError

SHARPEN = sharpen_operation(150, 1.0, 0)
FULL = {8: 255, 16: 65535, 32: 1.0}


def _ncol(mode: int) -> int:
    return 3 if mode == 3 else 1


def _doc(depth=8, mode=3, version=1, block=False, composite_compression=1):
    n = _ncol(mode)
    layers = [
        L("Background", noise(20, 24, n, depth, seed=1), layer_id=2),
        L("Group", kind="group-end"),
        L("Portrait", noise(9, 11, n, depth, seed=2, alpha=True), left=3, top=4, layer_id=5,
          mask=noise(9, 11, 1, depth, seed=3)[:, :, 0], mask_left=3, mask_top=4),
        L("Clipped", noise(5, 5, n, depth, seed=4), left=5, top=5, clipping=1, layer_id=6),
        L("Group", kind="group-open", layer_id=4),
        L("Über ✓", noise(4, 6, n, depth, seed=5), left=15, top=12, layer_id=7),
    ]
    return make_psd(layers, width=24, height=20, depth=depth, mode=mode, version=version,
                    layers_in_block=block, composite_compression=composite_compression)


CASES = [(8, 3, 1, False), (8, 3, 2, False), (16, 3, 1, False), (16, 3, 2, True),
         (32, 3, 1, True), (8, 1, 1, False), (16, 1, 2, False), (32, 1, 1, False)]


@pytest.mark.parametrize(("depth", "mode", "version", "block"), CASES)
def test_read_native_dtype_and_noop_identical(tmp_path, depth, mode, version, block):
    data = _doc(depth, mode, version, block)
    src = put(tmp_path, data, "in.psb" if version == 2 else "in.psd")
    with open_document(src) as doc:
        assert [L.path for L in doc.layers] == ["Über ✓", "Group", "Group/Clipped",
                                                "Group/Portrait", "Background"]
        px = doc.read_pixels(doc.find("Group/Portrait"))
        assert px.dtype == np.dtype({8: np.uint8, 16: np.uint16, 32: np.float32}[depth])
        assert px.shape == (9, 11, _ncol(mode) + 1)
        np.testing.assert_array_equal(px, noise(9, 11, _ncol(mode), depth, seed=2, alpha=True))
        doc.save(tmp_path / "out.psd")
    assert (tmp_path / "out.psd").read_bytes() == data


@pytest.mark.parametrize(("depth", "mode", "version", "block"), CASES)
def test_replace_pixels_isolated_and_exact(tmp_path, depth, mode, version, block):
    data = _doc(depth, mode, version, block)
    src = put(tmp_path, data)
    with open_document(src) as doc:
        target = doc.find("Group/Portrait")
        before = doc.read_pixels(target)
        doc.apply_to_layer(target, SHARPEN, mode="replace")
        expected = doc.edits[0].new_pixels
        doc.save(tmp_path / "out.psd")
    assert not np.array_equal(expected, before)
    np.testing.assert_array_equal(expected[:, :, -1], before[:, :, -1])  # alpha kept
    out = (tmp_path / "out.psd").read_bytes()
    assert_isolated(data, out, replaced=frozenset({2}))
    psd, layers = psd_tools_layers(out)
    got = psd_tools_pixels(layers[2], depth)
    np.testing.assert_array_equal(got[:, :, : _ncol(mode)], expected[:, :, : _ncol(mode)])


@pytest.mark.parametrize(("depth", "mode", "version", "block"), CASES)
def test_new_masked_layer_above_clipping_stack(tmp_path, depth, mode, version, block):
    data = _doc(depth, mode, version, block)
    src = put(tmp_path, data)
    with open_document(src) as doc:
        doc.apply_to_layer(doc.find("Portrait"), SHARPEN, mask=MaskSource.own())
        expected = doc.edits[0].new_pixels
        doc.save(tmp_path / "out.psd")
    out = (tmp_path / "out.psd").read_bytes()
    (new,) = assert_isolated(data, out, inserted={3: 1})  # above 'Clipped', inside the group
    assert new.clipping == 0
    assert set(new.channel_ids) == {-1, 0, *range(_ncol(mode)), -2}
    assert new.blocks[b"lyid"] == [(8).to_bytes(4, "big")]
    psd, layers = psd_tools_layers(out)
    layer = layers[4]
    assert layer.name == "Portrait sharpened"
    assert layer.parent.name == "Group"
    assert layer.has_mask()
    assert not layer.clipping
    np.testing.assert_array_equal(psd_tools_pixels(layer, depth), expected)
    own = split(data).records[2].channels[-2]
    assert split(out).records[4].channels[-2][2:] != b""
    assert own


def test_black_mask_keeps_composite(tmp_path):
    data = _doc()
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Über ✓"), SHARPEN)
        plan = doc.plan()
        doc.save(tmp_path / "out.psd")
    assert plan["composite"]["action"] == "kept"
    out = split((tmp_path / "out.psd").read_bytes())
    assert out.image == split(data).image
    assert out.records[-1].name == "Über ✓ sharpened".encode("mac_roman", "replace")
    assert out.records[-1].channels[-2][2:]  # black mask channel present


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("composite_compression", [0, 1])
def test_composite_exact_blend_single_layer(tmp_path, depth, composite_compression):
    px = noise(16, 20, 3, depth, seed=9)
    data = make_psd([L("Photo", px)], width=20, height=16, depth=depth,
                    composite_compression=composite_compression)
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Photo"), SHARPEN, mode="replace")
        plan = doc.plan()
        new = doc.edits[0].new_pixels
        doc.save(tmp_path / "out.psd")
    assert plan["composite"]["method"] == "exact blend"
    out = (tmp_path / "out.psd").read_bytes()
    from psd_tools import PSDImage

    comp = PSDImage.open(tmp_path / "out.psd").numpy()
    np.testing.assert_array_equal(np.rint(comp * FULL[depth]).astype(px.dtype), new)
    thumb = read_thumbnail(split(out).resources[1036][0])  # refreshed from the new composite
    assert thumb.shape == (16, 20, 3)  # under 160 px: the document's own size
    expect = new.astype(np.float32) * (255.0 / FULL[depth])
    # noise does not survive JPEG's chroma subsampling: compare each channel's mean
    got = thumb.astype(np.float32).mean(axis=(0, 1))
    np.testing.assert_allclose(got, expect.mean(axis=(0, 1)), atol=3)


def test_composite_region_only(tmp_path):
    bg, top = noise(30, 30, 3, 8, seed=1), noise(8, 8, 3, 8, seed=2)
    data = make_psd([L("Bg", bg), L("Top", top, left=10, top=12)], width=30, height=30)
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Top"), SHARPEN, mode="replace")
        doc.save(tmp_path / "out.psd")
    from psd_tools import PSDImage

    before = PSDImage.open(put(tmp_path, data, "again.psd")).numpy()
    after = PSDImage.open(tmp_path / "out.psd").numpy()
    changed = np.argwhere(np.any(before != after, axis=2))
    assert changed.size
    assert changed[:, 0].min() >= 12
    assert changed[:, 0].max() < 20
    assert changed[:, 1].min() >= 10
    assert changed[:, 1].max() < 18


def test_masked_replace_blends_through_mask(tmp_path):
    px = noise(10, 10, 3, 8, seed=3)
    m = np.zeros((10, 10), np.uint8)
    m[:, 5:] = 255
    data = make_psd([L("Bg", noise(10, 10, 3, 8)), L("M", px, mask=m)], width=10, height=10)
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Bg"), SHARPEN, mode="replace", mask=MaskSource.layer("M"))
        new = doc.edits[0].new_pixels
        old = doc.edits[0].old_pixels
    np.testing.assert_array_equal(new[:, :5], old[:, :5])
    assert not np.array_equal(new[:, 5:], old[:, 5:])


def test_mask_from_image_file(tmp_path):
    from core.io import write_image

    data = _doc()
    m = np.zeros((20, 24), np.uint8)
    m[:10] = 255
    write_image(tmp_path / "m.png", m)
    with open_document(put(tmp_path, data)) as doc:
        target = doc.find("Background")
        doc.apply_to_layer(target, SHARPEN, mode="replace",
                           mask=MaskSource.parse(f"image:{tmp_path / 'm.png'}"))
        e = doc.edits[0]
    np.testing.assert_array_equal(e.new_pixels[10:], e.old_pixels[10:])
    assert not np.array_equal(e.new_pixels[:10], e.old_pixels[:10])


def test_selection_errors_and_reasons(tmp_path):
    a = noise(4, 4, 3)
    data = make_psd([L("Same", a), L("Same", a), L("Empty", None), L("Other", a)],
                    width=4, height=4)
    with open_document(put(tmp_path, data)) as doc:
        with pytest.raises(LayerSelectionError, match="ambiguous, 2 layers match"):
            doc.find("Same")
        with pytest.raises(LayerSelectionError, match="no layer matches 'Nope'"):
            doc.find("Nope")
        todo, skipped = doc.select(["*"])
        assert [L.name for L in todo] == ["Other", "Same", "Same"]
        assert [(L.name, L.problem) for L in skipped] == [("Empty", "an empty layer (no pixels)")]
        with pytest.raises(UnsupportedDocumentError, match="empty layer"):
            doc.apply_to_layer(doc.find("Empty"), SHARPEN)
        todo, _ = doc.select(None)
        assert len(todo) == 3


def test_operation_is_a_plain_callable(tmp_path):
    def invert(px, *, linear, progress=None):
        out = px.copy()
        out[:, :, :3] = 255 - px[:, :, :3]
        return out

    data = _doc()
    with open_document(put(tmp_path, data)) as doc:
        op = Operation("invert", invert, "{target} inverted", opacity=128, blend_mode=b"mul ")
        doc.apply_to_layer(doc.find("Background"), op, mask=MaskSource("black"))
        doc.save(tmp_path / "o.psd")
    _, layers = psd_tools_layers((tmp_path / "o.psd").read_bytes())
    assert layers[1].name == "Background inverted"
    assert layers[1].opacity == 128
    assert layers[1].blend_mode.name == "MULTIPLY"


def test_save_refuses_existing_and_keeps_backup(tmp_path):
    data = _doc()
    src = put(tmp_path, data)
    with open_document(src) as doc:
        doc.apply_to_layer(doc.find("Background"), SHARPEN, mode="replace")
        with pytest.raises(FileExistsError, match="overwrite"):
            doc.save(src)
        report = doc.save(src, overwrite=True)
    assert report["backup"].endswith(".bak")
    assert (tmp_path / "in.psd.bak").read_bytes() == data
    assert src.read_bytes() != data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.psd", "in.psd.bak"]


def test_cmyk_opens_and_refuses_edits(tmp_path):
    data = make_psd([L("Ink", noise(4, 4, 4))], width=4, height=4, mode=4)
    with open_document(put(tmp_path, data)) as doc:
        (layer,) = doc.layers
        assert "CMYK" in layer.problem
        with pytest.raises(UnsupportedDocumentError, match="CMYK") as err:
            doc.apply_to_layer(layer, SHARPEN)
        assert "Image > Mode > RGB Color" in str(err.value)
        doc.save(tmp_path / "o.psd")
    assert (tmp_path / "o.psd").read_bytes() == data


@pytest.mark.parametrize("cut", [3, 20, 30, 60, 120, 200, 400, 700])
def test_truncated_files_fail_clearly(tmp_path, cut):
    data = _doc()
    src = put(tmp_path, data[:cut])
    out = tmp_path / "out.psd"
    def edit():
        with open_document(src) as doc:
            doc.apply_to_layer(doc.find("Group/Portrait"), SHARPEN)
            doc.save(out)

    with pytest.raises(PSDFormatError):
        edit()
    assert not out.exists()


def test_hostile_header_and_lengths(tmp_path):
    import struct
    import time

    data = bytearray(_doc(version=2))
    huge = bytearray(data)
    huge[14:22] = struct.pack(">II", 300000, 300000)
    t0 = time.perf_counter()
    with open_document(put(tmp_path, bytes(huge), "huge.psb")) as doc:
        doc.apply_to_layer(doc.find("Background"), SHARPEN, mode="replace")
        plan = doc.plan()["composite"]
        assert plan["action"] == "kept"
        assert "RLE row table needs" in plan["reason"]
    assert time.perf_counter() - t0 < 5
    rect = bytearray(data)  # a layer claiming 300000 x 300000 pixels of tiny channel data
    first = split(bytes(rect)).records[0]
    pos = bytes(rect).index(first.fixed[:18])
    rect[pos : pos + 16] = struct.pack(">4i", 0, 0, 300000, 300000)
    with open_document(put(tmp_path, bytes(rect), "rect.psb")) as doc:
        with pytest.raises(PSDFormatError, match="above the bridge's limit"):
            doc.apply_to_layer(doc.find("Background"), SHARPEN)
    too_big = bytearray(data)
    too_big[14:22] = struct.pack(">II", 300001, 5)
    with pytest.raises(PSDFormatError, match="outside 1..300000"):
        open_document(put(tmp_path, bytes(too_big), "big.psb"))
    wrong = bytearray(data)
    wrong[30:34] = struct.pack(">I", 10**9)  # image resources length
    with pytest.raises(PSDFormatError, match="image resources section claims"):
        open_document(put(tmp_path, bytes(wrong), "wrong.psb"))
    with pytest.raises(PSDFormatError, match="not a PSD"):
        open_document(put(tmp_path, b"GIF89a" + bytes(40), "x.psd"))
    names = ["big.psb", "huge.psb", "rect.psb", "wrong.psb", "x.psd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


@pytest.mark.parametrize("cut", [-40, -5])
def test_truncated_composite_is_reported_not_patched(tmp_path, cut):
    data = _doc()[:cut]  # Photoshop and psd-tools open such files; the layers are intact
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Group/Portrait"), SHARPEN, mode="replace")
        report = doc.save(tmp_path / "out.psd")
    assert report["composite"]["action"] == "kept"
    assert "truncated" in report["composite"]["reason"]
    assert split((tmp_path / "out.psd").read_bytes()).image == split(data).image


def test_composite_region_rendered_when_layers_above(tmp_path):
    bg = noise(30, 30, 3, 8, seed=1)
    over = noise(10, 10, 3, 8, seed=2, alpha=True)
    data = make_psd([L("Bg", bg), L("Over", over, left=5, top=5, blend=b"mul ")], width=30,
                    height=30)
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Bg"), SHARPEN, mode="replace")
        plan = doc.plan()["composite"]
        report = doc.save(tmp_path / "out.psd")
    assert plan["method"] == "psd-tools render of the region"
    assert "Over" in plan["why_render"]
    assert report["composite"]["region"] == [0, 0, 30, 30]
    from psd_tools import PSDImage

    out = PSDImage.open(tmp_path / "out.psd")
    stored = out.numpy()[:, :, :3]
    rendered = out.composite(force=True)
    rendered = np.asarray(rendered, np.float32)[:, :, :3] / 255.0
    assert np.abs(stored - rendered).max() <= 1.5 / 255


def test_two_new_layers_in_one_save(tmp_path):
    data = _doc()
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Portrait"), SHARPEN, mask=MaskSource.own())
        doc.apply_to_layer(doc.find("Background"), SHARPEN, mask=MaskSource.layer("Portrait"))
        doc.save(tmp_path / "out.psd")
    out = (tmp_path / "out.psd").read_bytes()
    new = assert_isolated(data, out, inserted={0: 1, 3: 1})
    assert [r.name for r in new] == [b"Background sharpened", b"Portrait sharpened"]
    _, layers = psd_tools_layers(out)
    assert {L.layer_id for L in layers if L is not None and L.kind == "pixel"} >= {8, 9}


@pytest.mark.parametrize("depth", [8, 16, 32])
def test_deblur_operation_all_depths(tmp_path, depth):
    from core.psf import gaussian_psf
    from psd_bridge.api import deblur_operation

    data = make_psd([L("Photo", noise(24, 28, 3, depth, seed=5, alpha=True))], width=28,
                    height=24, depth=depth, version=2)
    with open_document(put(tmp_path, data, "in.psb")) as doc:
        doc.apply_to_layer(doc.find("Photo"), deblur_operation(gaussian_psf(1.0), method="wiener"),
                           mode="replace")
        e = doc.edits[0]
        doc.save(tmp_path / "out.psb")
    assert e.new_pixels.dtype == e.old_pixels.dtype
    np.testing.assert_array_equal(e.new_pixels[:, :, 3], e.old_pixels[:, :, 3])
    assert not np.array_equal(e.new_pixels, e.old_pixels)
    _, layers = psd_tools_layers((tmp_path / "out.psb").read_bytes())
    np.testing.assert_array_equal(psd_tools_pixels(layers[0], depth)[:, :, :3],
                                  e.new_pixels[:, :, :3])


def test_mask_from_named_alpha_channel(tmp_path):
    sel = np.zeros((12, 16), np.uint8)
    sel[:, 8:] = 255
    data = make_psd([L("Photo", noise(12, 16, 3, 8, seed=6))], width=16, height=12,
                    alpha_channels={"Sky": np.zeros((12, 16), np.uint8), "Selection ✓": sel})
    with open_document(put(tmp_path, data)) as doc:
        assert doc.alpha_channel_names() == ["Sky", "Selection ✓"]
        doc.apply_to_layer(doc.find("Photo"), SHARPEN, mode="replace",
                           mask=MaskSource.parse("channel:Selection ✓"))
        e = doc.edits[0]
        with pytest.raises(ValueError, match="no alpha channel named 'Nope'"):
            doc.read_alpha_channel("Nope")
        doc.save(tmp_path / "out.psd")
    np.testing.assert_array_equal(e.new_pixels[:, :8], e.old_pixels[:, :8])
    assert not np.array_equal(e.new_pixels[:, 8:], e.old_pixels[:, 8:])
    assert split((tmp_path / "out.psd").read_bytes()).header == split(data).header


def test_new_layer_blend_mode_forces_render(tmp_path):
    data = make_psd([L("Photo", noise(10, 10, 3, 8))], width=10, height=10)
    op = Operation("same", lambda px, *, linear, progress=None: px, "{target} copy",
                   blend_mode=b"mul ")
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_to_layer(doc.find("Photo"), op)
        assert doc.plan()["composite"]["action"] == "kept"  # black mask: nothing visible
    m = np.full((10, 10), 255, np.uint8)
    data = make_psd([L("Photo", noise(10, 10, 3, 8)), L("Sel", noise(10, 10, 3, 8), mask=m,
                                                          visible=False)], width=10, height=10)
    with open_document(put(tmp_path, data, "b.psd")) as doc:
        doc.apply_to_layer(doc.find("Photo"), op, mask=MaskSource.layer("Sel"))
        assert "blend mode" in doc.plan()["composite"]["why_render"]


def _rendered(path) -> np.ndarray:
    """psd-tools' render of a whole file, (H, W, C) float32 in [0, 1]."""
    from psd_tools import PSDImage

    from psd_bridge.api import _composite_arrays

    psd = PSDImage.open(path)
    return _composite_arrays(psd, psd.viewbox)[0]


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("mode", ["replace", "new-layer"])
def test_composite_exact_through_plain_layers_above(tmp_path, depth, mode):
    """Layers above the edit (transparency, opacity, fill, masks, a group) are seen through
    exactly: the composite matches psd-tools' render of the written file within one level."""
    full = 255 if depth == 8 else 65535
    m = np.zeros((12, 12), np.uint8 if depth == 8 else np.uint16)
    m[:, 4:] = full // 2
    m[:, 8:] = full
    sel = np.zeros((20, 20), m.dtype)
    sel[5:15, 2:18] = full
    layers = [
        L("Bg", noise(30, 30, 3, depth, seed=1)),
        L("Mid", noise(20, 20, 3, depth, seed=2, alpha=True), left=3, top=4, mask=sel,
          mask_left=3, mask_top=4, mask_default=0),
        L("</Group>", kind="group-end"),
        L("Over", noise(12, 12, 3, depth, seed=3, alpha=True), left=8, top=8, opacity=180,
          mask=m, mask_left=8, mask_top=8, mask_default=255),
        L("Veil", noise(6, 25, 3, depth, seed=4, alpha=True), left=0, top=20, opacity=90,
          extra_blocks=[(b"iOpa", bytes([128, 0, 0, 0]))]),  # fill opacity 50 %
        L("Group", kind="group-open"),
        L("Hidden", noise(30, 30, 3, depth, seed=5), visible=False),
    ]
    first = put(tmp_path, make_psd(layers, width=30, height=30, depth=depth), "first.psd")
    comp = np.rint(_rendered(first) * full).astype(m.dtype)
    src = put(tmp_path, make_psd(layers, width=30, height=30, depth=depth, composite=comp))
    with open_document(src) as doc:
        if mode == "replace":
            doc.apply_to_layer(doc.find("Mid"), SHARPEN, mode="replace")
        else:
            doc.apply_to_layer(doc.find("Mid"), SHARPEN, mask=MaskSource.own())
        plan = doc.plan()["composite"]
        doc.save(tmp_path / "out.psd")
    assert plan["method"] == "exact blend", plan
    assert plan["through_layers_above"] == ["Group/Veil", "Group/Over"]
    from psd_tools import PSDImage

    stored = PSDImage.open(tmp_path / "out.psd").numpy()[:, :, :3] * full
    rendered = _rendered(tmp_path / "out.psd")[:, :, :3] * full
    assert np.abs(stored - rendered).max() <= 1.0 + 1e-3
    before = PSDImage.open(src).numpy()[:, :, :3] * full
    assert np.abs(stored - before).max() > 2  # the edit shows through


def _smooth(h: int, w: int, seed: int, alpha: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    chans = [0.5 + 0.4 * np.sin(xx / (23 + 7 * c + seed)) * np.cos(yy / (17 + seed))
             for c in range(3)]
    if alpha:
        chans.append(np.clip(xx / w + 0.3, 0, 1))
    return np.rint(np.stack(chans, axis=2) * 255).astype(np.uint8)


@pytest.mark.parametrize("blend", [b"norm", b"mul "])  # exact update / psd-tools render
def test_thumbnail_refreshed_from_new_composite(tmp_path, blend):
    import shutil
    import subprocess

    from psd_tools import PSDImage

    layers = [L("Bg", _smooth(300, 400, 1)),
              L("Over", _smooth(100, 120, 2, alpha=True), left=200, top=150, blend=blend)]
    src = put(tmp_path, make_psd(layers, width=400, height=300))
    darken = Operation("darken", lambda px, *, linear, progress=None: px // 3, "{target} dark")
    with open_document(src) as doc:
        doc.apply_to_layer(doc.find("Bg"), darken, mode="replace")
        report = doc.save(tmp_path / "out.psd")
    method = "exact blend" if blend == b"norm" else "psd-tools render of the region"
    assert report["composite"]["method"] == method
    assert report["composite"]["thumbnail"] == "refreshed (1036, 160x120 JPEG)"
    data = (tmp_path / "out.psd").read_bytes()
    assert_isolated(src.read_bytes(), data, replaced=frozenset({0}))
    thumb = read_thumbnail(split(data).resources[1036][0])
    out = PSDImage.open(tmp_path / "out.psd")
    assert out.thumbnail().size == (160, 120)  # psd-tools reads it
    import cv2

    comp = np.rint(out.numpy()[:, :, :3] * 255).astype(np.uint8)
    expect = cv2.resize(comp, (160, 120), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(thumb.astype(np.float32) - expect).mean() < 2.0
    if shutil.which("identify"):
        p = subprocess.run(["identify", str(tmp_path / "out.psd")], capture_output=True,
                           text=True, check=False)
        assert p.returncode == 0, p.stderr
        assert "400x300" in p.stdout


def test_overwrite_input_lets_go_of_it_first(tmp_path, monkeypatch):
    """Windows semantics simulated: replacing a file that is open or mapped fails. Saving over
    the input closes the document before the rename; a target held by another program is
    retried, then reported with nothing changed."""
    import os

    import psd_bridge.api as api

    data = _doc()
    src = put(tmp_path, data)
    real = os.replace
    docs: list = []
    busy = {"n": 0}

    def windows_replace(a, b):
        if any(d.buf is not None and os.path.exists(b) and os.path.samefile(b, d.path)
               for d in docs):
            raise PermissionError(13, "The process cannot access the file", b)
        if busy["n"] and os.path.abspath(b) == str(src):
            busy["n"] -= 1
            raise PermissionError(13, "held by a scanner", b)
        real(a, b)

    monkeypatch.setattr(os, "replace", windows_replace)
    monkeypatch.setattr(api, "_REPLACE_TRIES", 3)
    with open_document(src) as doc:
        docs.append(doc)
        doc.apply_to_layer(doc.find("Background"), SHARPEN, mode="replace")
        busy["n"] = 2  # two refusals, then the rename goes through
        report = doc.save(src, overwrite=True)
        assert report["document_closed"]
        with pytest.raises(ValueError, match="open it again"):
            doc.save(tmp_path / "again.psd")
    assert (tmp_path / "in.psd.bak").read_bytes() == data
    assert src.read_bytes() != data
    edited = src.read_bytes()
    with open_document(src) as doc:
        docs.append(doc)
        doc.apply_to_layer(doc.find("Background"), SHARPEN, mode="replace")
        busy["n"] = 5  # held for longer than the retries
        with pytest.raises(ClearshotError, match="another program has it open"):
            doc.save(src, overwrite=True)
    assert src.read_bytes() == edited  # nothing changed, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.psd", "in.psd.bak"]


@pytest.mark.parametrize("mode", ["replace", "new-layer"])
def test_composite_exact_with_document_transparency(tmp_path, mode):
    """No background: the composite has a transparency channel and colour stored over white.
    The exact update keeps both right (psd-tools' render of the output, within a level)."""
    full = 255
    layers = [
        L("Low", noise(20, 24, 3, 8, seed=2, alpha=True), left=2, top=3),
        L("Over", noise(10, 12, 3, 8, seed=3, alpha=True), left=8, top=6, opacity=200),
    ]
    first = put(tmp_path, make_psd(layers, width=30, height=26), "first.psd")
    from psd_tools import PSDImage

    from psd_bridge.api import _composite_arrays

    psd = PSDImage.open(first)
    colour, _, alpha = _composite_arrays(psd, psd.viewbox)
    matted = np.rint((colour * alpha + 1 - alpha) * full).astype(np.uint8)
    trans = np.rint(alpha[:, :, 0] * full).astype(np.uint8)
    src = put(tmp_path, make_psd(layers, width=30, height=26, composite=matted,
                                 transparency=trans))
    with open_document(src) as doc:
        low = doc.find("Low")
        if mode == "replace":
            doc.apply_to_layer(low, SHARPEN, mode="replace")
        else:
            import cv2

            white = tmp_path / "white.png"
            cv2.imwrite(str(white), np.full((26, 30), 255, np.uint8))
            doc.apply_to_layer(low, SHARPEN, mask=MaskSource.image(str(white)))
        plan = doc.plan()["composite"]
        assert plan["method"] == "exact blend", plan
        doc.save(tmp_path / "out.psd")
    out = PSDImage.open(tmp_path / "out.psd")
    stored = out.numpy()  # psd-tools un-mattes: straight colour and transparency
    s_alpha = stored[:, :, 3:4]
    colour, _, alpha = _composite_arrays(out, out.viewbox)
    assert np.abs(s_alpha - alpha).max() <= 1 / 255 + 1e-6
    s_matted = (stored[:, :, :3] * s_alpha + 1 - s_alpha) * full
    r_matted = (colour * alpha + 1 - alpha) * full
    assert np.abs(s_matted - r_matted).max() <= 1.0 + 1e-3


@pytest.mark.parametrize("depth", [8, 16, 32])
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("compression", [0, 1])
def test_decode_rows_matches_whole_channel(tmp_path, depth, version, compression):
    from psd_bridge import records as R

    px = noise(13, 11, 3, depth, seed=4, alpha=True)
    data = make_psd([L("P", px, compression=compression)], width=11, height=13, depth=depth,
                    version=version)
    with open_document(put(tmp_path, data, "in.psb" if version == 2 else "in.psd")) as doc:
        rec = doc.layout.records[0]
        for span in rec.spans:
            whole = R.decode_channel(doc.buf, span, 11, 13, doc.header)
            for y0, y1 in [(0, 13), (0, 1), (5, 9), (12, 13), (7, 7)]:
                got = R.decode_rows(doc.buf, span, 11, 13, doc.header, y0, y1)
                np.testing.assert_array_equal(got, whole[y0:y1])
            with pytest.raises(ValueError, match="outside"):
                R.decode_rows(doc.buf, span, 11, 13, doc.header, 3, 14)


def test_verification_catches_a_bad_thumbnail(tmp_path, monkeypatch):
    import struct

    import psd_bridge.thumbnail as thumbnail

    def broken(rgb, *, quality=90):
        jpeg = b"\xff\xd8 not a jpeg \xff\xd9"
        return struct.pack(">6I2H", 1, 20, 16, 60, 960, len(jpeg), 24, 1) + jpeg

    monkeypatch.setattr(thumbnail, "thumbnail_data", broken)
    src = put(tmp_path, make_psd([L("Photo", noise(16, 20, 3, 8))], width=20, height=16))
    with open_document(src) as doc:
        doc.apply_to_layer(doc.find("Photo"), SHARPEN, mode="replace")
        with pytest.raises(ClearshotError, match="thumbnail does not decode"):
            doc.save(tmp_path / "out.psd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.psd"]


@pytest.mark.parametrize(("over", "why"), [
    (dict(blend=b"scrn"), "blend mode"),
    (dict(extra_blocks=[(b"knko", bytes([1, 0, 0, 0]))]), "knockout"),
    (dict(clipping=1), "clipped layer"),
])
def test_layers_above_that_are_not_plain_fall_back_to_the_render(tmp_path, over, why):
    layers = [L("Bg", noise(20, 20, 3, 8, seed=1)),
              L("Mid", noise(10, 10, 3, 8, seed=2, alpha=True), left=2, top=2),
              L("Over", noise(8, 8, 3, 8, seed=3, alpha=True), left=4, top=4, **over)]
    with open_document(put(tmp_path, make_psd(layers, width=20, height=20))) as doc:
        doc.apply_to_layer(doc.find("Bg" if over.get("clipping") else "Mid"), SHARPEN,
                           mode="replace")
        plan = doc.plan()["composite"]
    assert plan["method"] == "psd-tools render of the region"
    assert why in plan["why_render"]
