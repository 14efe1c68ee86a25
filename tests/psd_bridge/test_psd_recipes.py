"""Recipes in PSD files: the layer stack as new masked layers, or the flattened result."""

from __future__ import annotations

import numpy as np
import pytest
from checks import assert_isolated, psd_tools_layers, psd_tools_pixels
from conftest import make_scene
from make_psd import L, make_psd, noise
from psdfix import put
from rawpsd import split

from core.cli import main
from core.dtype import from_float32
from core.layer_stack import LayerStack
from core.recipes import load_preset, parse_recipe
from psd_bridge.api import MaskSource, open_document, recipe_operation

RECIPE = parse_recipe(
    """
version = 1
name = "test"

[[step]]
op = "deblur"
method = "auto"
mode = "focus"

[[step]]
op = "sharpen"
name = "Sharpened"
amount_pct = 150
radius_px = 1.0
threshold_levels = 2
opacity_pct = 60
mask = "selection"
"""
)


def _photo(depth: int = 8, alpha: bool = False) -> np.ndarray:
    x = make_scene(40, 48, seed=6)
    if alpha:
        a = np.clip(np.linspace(0.2, 1.4, 48, dtype=np.float32), 0, 1)[None, :, None]
        x = np.concatenate([x, np.repeat(a, 40, 0)], axis=2)
    return from_float32(x, {8: np.uint8, 16: np.uint16, 32: np.float32}[depth])


def _data(depth: int = 8, alpha: bool = False) -> bytes:
    sel = np.zeros((40, 48), {8: np.uint8, 16: np.uint16, 32: np.float32}[depth])
    sel[8:32, 10:40] = {8: 255, 16: 65535, 32: 1.0}[depth]
    return make_psd(
        [
            L("Background", noise(40, 48, 3, depth, seed=1), layer_id=2),
            L("Photo", _photo(depth, alpha), layer_id=3, mask=sel),
        ],
        width=48,
        height=40,
        depth=depth,
    )


@pytest.mark.parametrize(("depth", "alpha"), [(8, False), (16, True), (32, False)])
def test_recipe_layers_go_above_the_target_with_their_masks(tmp_path, depth, alpha):
    data = _data(depth, alpha)
    with open_document(put(tmp_path, data)) as doc:
        target = doc.find("Photo")
        pixels = doc.read_pixels(target)
        stack = doc.apply_recipe(target, RECIPE, mask=MaskSource.own())
        plan = doc.plan()
        doc.save(tmp_path / "out.psd")
    out = (tmp_path / "out.psd").read_bytes()
    new = assert_isolated(data, out, inserted={1: 2})  # target and background untouched
    assert [r.name for r in new] == [b"Photo deblurred", b"Photo sharpened"]  # bottom to top
    assert [c["new_layer"] for c in plan["changes"]] == ["Photo deblurred", "Photo sharpened"]
    assert plan["changes"][1]["params"]["recipe"] == "test"
    assert stack.blend_space == "encoded"
    np.testing.assert_array_equal(stack.layers[0].pixels, pixels)
    _, layers = psd_tools_layers(out)
    for k, layer in enumerate(layers[2:]):
        want = stack.layers[k + 1]
        assert layer.has_mask()
        assert layer.opacity == round(255 * want.opacity)
        got = psd_tools_pixels(layer, depth)
        np.testing.assert_array_equal(got[:, :, :3], want.pixels[:, :, :3])
    assert layers[3].opacity == 153  # 60 %
    # the sharpened layer's mask is the target's own mask (the recipe's "selection")
    sharp_mask = stack.layers[2].mask
    assert sharp_mask[20, 20] == 1
    assert sharp_mask[2, 2] == 0
    assert stack.layers[1].mask is None  # the first pass shows everywhere (white mask)


def test_composite_is_the_flattened_stack(tmp_path):
    """Opaque top layer, 8-bit: the stored composite is the stack composited as Photoshop
    does (stored values), within a level of rounding."""
    data = _data(8)
    with open_document(put(tmp_path, data)) as doc:
        stack = doc.apply_recipe(doc.find("Photo"), RECIPE, mask=MaskSource.own())
        plan = doc.plan()
        doc.save(tmp_path / "out.psd")
    assert plan["composite"]["method"] == "exact blend"
    from psd_tools import PSDImage

    stored = np.rint(PSDImage.open(tmp_path / "out.psd").numpy()[:, :, :3] * 255).astype(int)
    quantized = [stack.layers[0]] + [
        type(layer)(
            layer.name, layer.role, layer.pixels, layer.mask, round(255 * layer.opacity) / 255
        )
        for layer in stack.layers[1:]
    ]
    want = LayerStack(tuple(quantized), blend_space="encoded").flatten().astype(int)
    assert np.abs(stored - want).max() <= 1


def test_black_mask_recipe_keeps_the_composite(tmp_path):
    from core.recipes import with_mask

    data = _data(8)
    with open_document(put(tmp_path, data)) as doc:
        recipe = with_mask(load_preset("landscape"), "black")
        recipe = parse_recipe(recipe.to_toml().replace('mask = "none"', 'mask = "black"'))
        doc.apply_recipe(doc.find("Photo"), recipe)
        doc.save(tmp_path / "out.psd")
    assert split((tmp_path / "out.psd").read_bytes()).image == split(data).image


def test_cli_recipe_new_layers_and_replace(tmp_path, capsys):
    src = put(tmp_path, _data(8))
    out = tmp_path / "o.psd"
    assert main(["psd", str(src), "-o", str(out), "--layer", "Photo", "--recipe", "portrait"]) == 0
    text = capsys.readouterr().out
    assert "new layer 'Photo deblurred'" in text
    assert "new layer 'Photo smoothed (faces)'" in text
    assert "new layer 'Photo sharpened (faces and eyes)'" in text
    names = [r.name for r in split(out.read_bytes()).records]
    assert names[2:] == [
        b"Photo deblurred",
        b"Photo smoothed (faces)",
        b"Photo sharpened (faces and eyes)",
    ]
    assert "recipe provenance: stored in the XMP metadata" in text
    from psd_bridge.xmp import read_provenance

    (run,) = read_provenance(split(out.read_bytes()).resources[1060][0])
    assert run["recipe"]["name"] == "portrait"
    assert run["new_layers"] == [
        "Photo deblurred",
        "Photo smoothed (faces)",
        "Photo sharpened (faces and eyes)",
    ]
    rc = main(
        [
            "psd",
            str(src),
            "-o",
            str(out),
            "--layer",
            "Photo",
            "--recipe",
            "landscape",
            "--replace-pixels",
            "--overwrite",
            "-q",
        ]
    )
    assert rc == 0
    recs = split(out.read_bytes()).records
    assert len(recs) == 2
    assert recs[1].channels[0] != split(_data(8)).records[1].channels[0]
    assert (
        main(
            [
                "psd",
                str(src),
                "-o",
                str(tmp_path / "x.psd"),
                "--recipe",
                "portrait",
                "--mode",
                "deblur",
                "--gaussian",
                "1",
            ]
        )
        == 2
    )
    assert "cannot be combined" in capsys.readouterr().err


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, 3), (np.uint16, 4), (np.uint8, 1)])
def test_cli_deblur_recipe_writes_a_layered_psd(tmp_path, capsys, dtype, channels):
    from psd_tools import PSDImage

    from core.io import read_image, write_image

    x = make_scene(40, 48, seed=9)
    if channels == 1:
        x = x @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    elif channels == 4:
        x = np.concatenate([x, np.full((40, 48, 1), 1.0, np.float32)], axis=2)
        x[:4, :, 3] = 0.5
    img = from_float32(x, dtype)
    src = tmp_path / "in.png"
    write_image(src, img)
    flat, layered = tmp_path / "out.png", tmp_path / "out.psd"
    rc = main(
        ["deblur", str(src), "-o", str(flat), "--recipe", "landscape", "--layers", str(layered)]
    )
    assert rc == 0
    assert f"wrote {layered} (Background, Background deblurred, Background sharpened" in (
        capsys.readouterr().out
    )
    psd = PSDImage.open(layered)
    names = [layer.name for layer in psd]
    assert names == ["Background", "Background deblurred", "Background sharpened (detail)"]
    assert psd[2].has_mask()
    assert psd.depth == (8 if dtype == np.uint8 else 16)
    base = psd_tools_pixels(psd[0], psd.depth)
    np.testing.assert_array_equal(
        base[:, :, : min(channels, 3)],
        read_image(src).pixels.reshape(40, 48, -1)[:, :, : min(channels, 3)],
    )
    assert flat.exists()
    assert (
        main(
            [
                "deblur",
                str(src),
                "-o",
                str(tmp_path / "o2.png"),
                "--recipe",
                "landscape",
                "--layers",
                str(layered),
            ]
        )
        == 2
    )  # exists
    assert (
        main(
            [
                "deblur",
                str(src),
                "-o",
                str(tmp_path / "o3.png"),
                "--recipe",
                "landscape",
                "--layers",
                str(tmp_path / "x.tif"),
            ]
        )
        == 2
    )


PLAIN = parse_recipe(
    """
version = 1
name = "plain"

[[step]]
op = "sharpen"
name = "Sharpened"
amount_pct = 150
radius_px = 1.0
threshold_levels = 2
opacity_pct = 60
"""
)

_XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 9.1">\n'
        b' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        b'  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        b' xmp:CreatorTool="Adobe Photoshop 26.0"/>\n'
        b' </rdf:RDF>\n</x:xmpmeta>\n' + b" " * 3000 + b'\n<?xpacket end="w"?>')


@pytest.mark.parametrize("xmp", [_XMP, None])
def test_recipe_provenance_stored_in_xmp(tmp_path, xmp):
    import json
    import shutil
    import subprocess

    from checks import assert_xmp_kept
    from psd_tools import PSDImage
    from psd_tools.constants import Resource

    from psd_bridge.xmp import NAMESPACE, read_provenance

    data = make_psd([L("Background", noise(40, 48, 3, 8, seed=1)), L("Photo", _photo())],
                    width=48, height=40, resources={1060: xmp} if xmp else None)
    with open_document(put(tmp_path, data)) as doc:
        stack = doc.apply_recipe(doc.find("Photo"), PLAIN)
        report = doc.save(tmp_path / "once.psd")
    assert report["provenance"].startswith("stored in the XMP metadata")
    once = (tmp_path / "once.psd").read_bytes()
    assert_isolated(data, once, inserted={1: 1})  # the XMP packet: old one + provenance only
    packet = PSDImage.open(tmp_path / "once.psd").image_resources.get_data(Resource.XMP_METADATA)
    (run,) = read_provenance(packet)
    assert run["layer"] == "Photo"
    assert run["new_layers"] == ["Photo sharpened"]
    assert run["recipe"]["name"] == "plain"
    assert run["steps"] == json.loads(json.dumps(stack.provenance["steps"], default=str))
    if xmp is not None:
        assert len(split(once).resources[1060][0]) == len(xmp)  # taken from the padding
        assert b"Adobe Photoshop 26.0" in packet
    # a second run (flattened into the pixels) appends to the same sequence
    with open_document(tmp_path / "once.psd") as doc:
        doc.apply_to_layer(doc.find("Photo"), recipe_operation(PLAIN), mode="replace")
        doc.save(tmp_path / "twice.psd")
    twice = (tmp_path / "twice.psd").read_bytes()
    runs = assert_xmp_kept(split(once).resources[1060], split(twice).resources[1060])
    assert [r["output"] for r in runs] == ["new-layers", "replace-pixels"]
    if shutil.which("convert"):  # ImageMagick reads the file and hands the XMP back
        p = subprocess.run(["convert", f"{tmp_path / 'twice.psd'}[0]", "xmp:-"],
                           capture_output=True, check=False)
        assert p.returncode == 0, p.stderr
        assert NAMESPACE.encode() in p.stdout
        assert len(read_provenance(p.stdout)) == 2


def test_unsafe_xmp_packet_is_left_alone(tmp_path):
    bad = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x:xmpmeta/>'
    data = make_psd([L("Photo", _photo())], width=48, height=40, resources={1060: bad})
    with open_document(put(tmp_path, data)) as doc:
        doc.apply_recipe(doc.find("Photo"), PLAIN)
        report = doc.save(tmp_path / "out.psd")
    assert report["provenance"] == "not stored: the XMP packet declares a DOCTYPE or entities"
    assert split((tmp_path / "out.psd").read_bytes()).resources[1060] == [bad]
