"""Layer stack: masks exact at 0 and 1, flatten == direct application, first-pass choice."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from conftest import make_scene

from core import layer_stack
from core.crosscheck import BLIND_KERNEL_ERROR
from core.deblur import deblur
from core.diagnose import diagnose
from core.dtype import from_float32
from core.layer_stack import Layer, LayerStack, build_step_mask, run_recipe, soften
from core.masks import apply_through_mask, feather
from core.psf import gaussian_psf
from core.recipes import load_preset, parse_recipe
from core.sharpen import unsharp_mask


def _recipe(*steps: str) -> object:
    body = "".join(f"\n[[step]]\n{s}\n" for s in steps)
    return parse_recipe(f'version = 1\nname = "t"\n{body}')


def _image(dtype, channels: int = 3, h: int = 48, w: int = 64) -> np.ndarray:
    x = make_scene(h, w, seed=5)
    if channels == 1:
        x = x[:, :, :1]
    elif channels == 4:
        alpha = np.linspace(0, 1, w, dtype=np.float32)[None, :, None].repeat(h, 0)
        x = np.concatenate([x, alpha], axis=2)
    return from_float32(x, dtype)


def _square_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[10:30, 20:44] = 1.0
    return m


SHARPEN = 'op = "sharpen"\namount_pct = 150\nradius_px = 1.2\nthreshold_levels = 2\n'


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_mask_zero_is_unchanged_and_mask_one_is_the_op(dtype, channels):
    img = _image(dtype, channels)
    before = img.copy()
    sel = feather(_square_mask(*img.shape[:2]), 4)
    recipe = _recipe(SHARPEN + 'mask = "selection"')
    out = run_recipe(img, recipe, masks={"selection": sel}).flatten()
    direct = unsharp_mask(img, 150, 1.2, 2)
    np.testing.assert_array_equal(img, before)  # input untouched
    assert out.dtype == img.dtype
    assert out.shape == img.shape
    zero, one = sel == 0, sel == 1
    assert zero.any()
    assert one.any()
    np.testing.assert_array_equal(out[zero], img[zero])  # exact, every dtype
    np.testing.assert_array_equal(out[one], direct[one])
    if channels == 4:
        np.testing.assert_array_equal(out[..., 3], img[..., 3])  # alpha never filtered
    partial = (sel > 0) & (sel < 1)
    assert not np.array_equal(out[partial], img[partial])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_region_limits_every_layer_exactly(dtype):
    img = _image(dtype)
    region = _square_mask(*img.shape[:2])
    recipe = _recipe(SHARPEN, 'op = "soften"\nsigma_px = 1.0\nmask = "none"\ninvert_mask = false')
    stack = run_recipe(img, recipe, region=region)
    out = stack.flatten()
    outside = region == 0
    np.testing.assert_array_equal(out[outside], img[outside])
    assert not np.array_equal(out[~outside], img[~outside])
    for layer in stack.layers[1:]:
        assert layer.mask is not None
        assert layer.mask[outside].max() == 0
    assert stack.provenance["selection_limited"] is True


def test_black_mask_changes_nothing_but_keeps_the_layer():
    img = _image(np.uint16)
    stack = run_recipe(img, _recipe(SHARPEN + 'mask = "black"'))
    np.testing.assert_array_equal(stack.flatten(), img)
    top = stack.layers[-1]
    assert top.name == "Sharpened"
    assert top.mask is not None
    assert top.mask.max() == 0
    np.testing.assert_array_equal(top.pixels, unsharp_mask(img, 150, 1.2, 2))


@pytest.mark.parametrize("blend_space", ["linear", "encoded"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_flatten_equals_direct_application(dtype, blend_space):
    """The stack, composited from its layers alone, is the steps applied one after another."""
    sharp = make_scene(64, 80, seed=2)
    img = from_float32(sharp, dtype)
    h, w = img.shape[:2]
    sel = feather(_square_mask(h, w), 6)
    recipe = _recipe(
        'op = "deblur"\nmethod = "auto"\nmode = "focus"\nstrength = 40',
        SHARPEN + 'mask = "selection"\nopacity_pct = 80',
        'op = "clarity"\namount_pct = 30\nradius_px = 10\nmask = "detail"\nfeather_px = 2',
        'op = "soften"\nsigma_px = 0.7\nmask = "selection"\ninvert_mask = true\nfeather_px = 0',
    )
    stack = run_recipe(img, recipe, masks={"selection": sel}, blend_space=blend_space)
    linear = blend_space == "linear"

    # direct application with the engine functions
    d = diagnose(img, mode="focus")
    x1 = (
        deblur(img, d.psf, method="sparse", strength=40, kernel_error=BLIND_KERNEL_ERROR)
        if d.kind != "sharp"
        else img.copy()
    )
    x2 = apply_through_mask(img, x1, np.ones((h, w), np.float32), linear=linear)
    s = unsharp_mask(x2, 150, 1.2, 2)
    x3 = apply_through_mask(x2, s, sel * np.float32(0.8), linear=linear)
    from core.masks import detail_mask

    c = unsharp_mask(x3, 30, 10, 0, luminance_only=True)
    x4 = apply_through_mask(x3, c, feather(detail_mask(x3), 2), linear=linear)
    so = soften(x4, 0.7)
    x5 = apply_through_mask(x4, so, 1 - sel, linear=linear)

    out = stack.flatten()
    np.testing.assert_array_equal(out, x5)
    assert [layer.role for layer in stack.layers] == [
        "base",
        "deblur",
        "sharpen",
        "clarity",
        "soften",
    ]
    np.testing.assert_array_equal(stack.layers[1].pixels, x1)
    np.testing.assert_array_equal(stack.layers[0].pixels, img)


def test_flatten_uses_only_the_layers():
    img = _image(np.uint8)
    top = np.full_like(img, 255)
    m = np.zeros(img.shape[:2], np.float32)
    m[:, :10] = 1
    m[:, 10:20] = 0.5
    stack = LayerStack(
        (Layer("Background", "base", img), Layer("White", "sharpen", top, m, opacity=0.5))
    )
    out = stack.flatten()
    np.testing.assert_array_equal(out[:, 20:], img[:, 20:])
    np.testing.assert_array_equal(
        out, apply_through_mask(img, top, m * np.float32(0.5), linear=True)
    )


def test_feathered_mask_gives_a_monotone_transition():
    """Across the feathered edge of a mask, the result moves monotonically from op to input."""
    h, w = 40, 120
    img = np.full((h, w, 3), 0.3, np.float32)
    recipe = _recipe(
        'op = "soften"\nsigma_px = 1.0\nmask = "selection"\nfeather_px = 20\ninvert_mask = false'
    )
    sel = np.zeros((h, w), np.float32)
    sel[:, :60] = 1
    stack = run_recipe(img, recipe, masks={"selection": sel})
    m = stack.layers[-1].mask
    row = m[h // 2]
    assert np.all(np.diff(row) <= 0)  # monotone ramp from 1 down to 0
    assert row[0] == 1
    assert row[-1] == 0
    # a brighter op layer: the composite follows the mask monotonically
    bright = LayerStack(
        (Layer("Background", "base", img), Layer("Bright", "soften", img + 0.5, m))
    ).flatten()[h // 2, :, 0]
    assert np.all(np.diff(bright) <= 1e-7)


def test_soften_keeps_constant_alpha_and_transparent_colour():
    img = _image(np.uint16, 4)
    img[:5, :5, 3] = 0
    img[:5, :5, :3] = 12345
    out = soften(img, 1.5)
    np.testing.assert_array_equal(out[..., 3], img[..., 3])
    np.testing.assert_array_equal(out[:5, :5, :3], img[:5, :5, :3])
    const = np.full((9, 7), 0.4, np.float32)
    np.testing.assert_allclose(soften(const, 2.0), const, atol=1e-6)
    with pytest.raises(ValueError, match="sigma_px"):
        soften(img, 0.0)


def test_build_step_mask_sources_grow_feather_invert():
    img = _image(np.uint8)
    h, w = img.shape[:2]
    sel = _square_mask(h, w)
    step = _recipe(
        'op = "soften"\nmask = "selection"\ngrow_px = 2\nfeather_px = 0\ninvert_mask = true'
    ).steps[0]
    m, desc, _ = build_step_mask(img, step, host_masks={"selection": sel})
    assert desc == "inverted (selection, grown 2 px)"
    assert m[20, 30] == 0
    assert m[8, 30] == 0  # grown 2 px above the square
    assert m[0, 0] == 1
    none_step = _recipe(SHARPEN).steps[0]
    assert build_step_mask(img, none_step)[0] is None


def test_selection_mask_without_a_selection_is_explained():
    img = _image(np.uint8)
    with pytest.raises(ValueError, match=r'mask = "selection" needs the host\'s selection'):
        run_recipe(img, _recipe(SHARPEN + 'mask = "selection"'))
    with pytest.raises(ValueError, match="must be the image's size"):
        run_recipe(
            img, _recipe(SHARPEN + 'mask = "selection"'), masks={"selection": np.ones((3, 3))}
        )
    with pytest.raises(ValueError, match="may only supply 'selection'"):
        run_recipe(img, _recipe(SHARPEN), masks={"faces": np.ones(img.shape[:2])})
    with pytest.raises(TypeError, match="core.recipes.Recipe"):
        run_recipe(img, "portrait")


def test_ai_pass_is_used_when_core_ai_imports(monkeypatch):
    calls = []

    def ai_deblur(image, *, strength=50.0, linear_input=False, progress=None):
        calls.append((strength, linear_input))
        return np.clip(image.astype(np.int32) + 1, 0, 255).astype(image.dtype)

    fake = types.ModuleType("core.ai")
    fake.ai_deblur = ai_deblur
    fake.default_model_name = lambda: "fake-net"
    fake.model_info = lambda name: types.SimpleNamespace(
        name=name, version="0.1.0", sha256="ab" * 32, licence="MIT"
    )
    monkeypatch.setitem(sys.modules, "core.ai", fake)
    img = _image(np.uint8)
    stack = run_recipe(img, _recipe('op = "deblur"\nmethod = "ai"\nstrength = 70'))
    assert calls == [(70.0, False)]
    info = stack.provenance["steps"][0]
    assert info["pass"] == "ai"
    assert info["model"] == {"name": "fake-net", "version": "0.1.0", "sha256": "ab" * 32}
    np.testing.assert_array_equal(stack.flatten(), ai_deblur(img))


def test_ai_pass_falls_back_to_classical_auto_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "core.ai", None)  # import raises ImportError
    sharp = make_scene(96, 96, seed=1)
    from conftest import blur_valid

    blurred, _ = blur_valid(sharp, gaussian_psf(1.5))
    img = from_float32(blurred, np.uint8)
    stack = run_recipe(img, _recipe('op = "deblur"\nmethod = "ai"'))
    info = stack.provenance["steps"][0]
    assert info["pass"] == "classical-auto"
    assert "not installed" in info["ai_fallback_reason"]
    assert "diagnosis" in info
    d = diagnose(img)
    expected = img if d.kind == "sharp" else deblur(img, d.psf, method="sparse", strength=50)
    np.testing.assert_array_equal(stack.flatten(), expected)


def test_provenance_is_json_ready_and_carries_the_recipe():
    import json

    img = _image(np.uint8)
    recipe = load_preset("landscape")
    stack = run_recipe(img, recipe)
    text = json.dumps(stack.provenance)
    assert "landscape" in text
    assert stack.provenance["recipe"]["toml"] == recipe.to_toml()
    assert stack.provenance["recipe"]["version"] == 1
    assert [s["op"] for s in stack.provenance["steps"]] == ["deblur", "sharpen"]


def test_progress_is_monotone_and_cancel_stops():
    from core.errors import OperationCancelled

    img = _image(np.uint8)
    seen: list[float] = []
    run_recipe(img, load_preset("portrait"), progress=lambda f, s: seen.append(f))
    assert seen
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:], strict=False))
    assert seen[-1] == pytest.approx(1.0)
    with pytest.raises(OperationCancelled):
        run_recipe(img, load_preset("portrait"), progress=lambda f, s: False)


def test_module_exports():
    assert set(layer_stack.__all__) >= {"Layer", "LayerStack", "run_recipe", "soften"}


def test_region_intersects_a_selection_mask_without_squaring_it():
    img = _image(np.uint8)
    sel = feather(_square_mask(*img.shape[:2]), 6)
    stack = run_recipe(
        img, _recipe(SHARPEN + 'mask = "selection"'), masks={"selection": sel}, region=sel
    )
    np.testing.assert_array_equal(stack.layers[1].mask, sel)


@pytest.mark.parametrize("channels", [1, 2, 4])
@pytest.mark.parametrize("name", ["portrait", "old-photo"])
def test_presets_on_gray_and_alpha_images_keep_alpha(channels, name):
    x = make_scene(56, 64, seed=8)
    gray = x @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    if channels == 1:
        img = from_float32(gray, np.uint16)
    elif channels == 2:
        img = from_float32(
            np.stack([gray, np.linspace(0, 1, 64)[None].repeat(56, 0)], 2), np.uint16
        )
    else:
        img = _image(np.uint16, 4, 56, 64)
    stack = run_recipe(img, load_preset(name))
    out = stack.flatten()
    assert out.shape == img.shape
    assert out.dtype == img.dtype
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])
        for layer in stack.layers:
            np.testing.assert_array_equal(layer.pixels[..., -1], img[..., -1])


def test_portrait_preset_on_a_face_is_the_steps_applied_in_turn(shared_deblur):
    """Deblur, smooth the faces, sharpen faces and eyes: flatten() == direct application."""
    from core.io import read_image
    from core.masks import eye_mask, face_mask, union

    sharp = read_image(shared_deblur / "sharp" / "kodak24" / "kodim04.png").pixels[180:600, 60:500]
    from conftest import blur_valid

    blurred, _ = blur_valid(sharp.astype(np.float32) / 255, gaussian_psf(1.2))
    img = from_float32(blurred, np.uint8)
    stack = run_recipe(img, load_preset("portrait"))
    assert [layer.name for layer in stack.layers] == [
        "Background",
        "Deblurred",
        "Smoothed (faces)",
        "Sharpened (faces and eyes)",
    ]
    d = diagnose(img)
    from core.crosscheck import restore_checked

    # Auto's first pass: classical deblur blended with the learned pass
    x1 = img.copy() if d.kind == "sharp" else restore_checked(img, d, strength=50)[0]
    m2 = feather(face_mask(x1).mask, 6)
    assert m2.max() == 1  # a face was found
    x2 = apply_through_mask(x1, soften(x1, 0.5), m2 * np.float32(0.5), linear=True)
    s = unsharp_mask(x2, 120, 1.5, 5, halo_limit=0.0, luminance_only=True, space="linear")
    m3 = feather(union(face_mask(x2).mask, eye_mask(x2).mask), 6)
    x3 = apply_through_mask(x2, s, m3 * np.float32(0.15), linear=True)
    out = stack.flatten()
    np.testing.assert_array_equal(out, x3)
    np.testing.assert_array_equal(stack.layers[2].mask, m2)
    np.testing.assert_array_equal(stack.layers[3].mask, m3)
    outside = (m2 == 0) & (m3 == 0)
    assert outside.any()
    np.testing.assert_array_equal(out[outside], x1[outside])
