"""The learned deblur pass: shipped model, pixel contract, tiling, cancel, strength, quality."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, blur_valid, blurred_pair8, make_scene

from core.ai import (
    ModelIntegrityError,
    ai_deblur,
    default_model_name,
    list_models,
    load_restorer,
    model_info,
    strength_gain,
)
from core.ai.guard import periodic_artifact_score
from core.ai.infer import COARSE_FROM_PX
from core.ai.registry import MODELS_DIR, verified_path
from core.color import linear_to_srgb, srgb_to_linear
from core.compare import psnr_db
from core.errors import OperationCancelled
from core.psf import defocus_psf, motion_psf

ROOT = Path(__file__).resolve().parents[2]


def _blurred_pair(side: int = 160, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(blurred, sharp) uint8 RGB: a drawn scene, or a Set14 crop when ../shared is present."""
    set14 = SHARED / "data" / "deblur" / "sharp" / "set14" / "monarch.png"
    if set14.is_file():
        img = cv2.cvtColor(cv2.imread(str(set14)), cv2.COLOR_BGR2RGB)
        sharp = img[100 : 100 + side + 24, 200 : 200 + side + 24].astype(np.float32) / 255
    else:
        sharp = make_scene(side + 24, side + 24, seed=seed)
    return blurred_pair8(sharp, defocus_psf(2.5), 0.005, seed)


# ----------------------------------------------------------------------------- the shipped model
def test_shipped_model_loads_and_its_sha256_matches_the_registry():
    info = model_info(default_model_name())
    assert info.path.parent == MODELS_DIR
    assert info.path.stat().st_size <= 10 * 1024 * 1024
    assert hashlib.sha256(info.path.read_bytes()).hexdigest() == info.sha256
    assert verified_path(info) == info.path
    assert info.licence
    assert info.training_data
    net = load_restorer()
    x = np.full((1, 3, 32, 48), 0.5, np.float32)
    assert net.run(x).shape == x.shape
    assert [m.name for m in list_models()][0] == info.name


def test_a_tampered_model_is_refused_with_a_clear_message():
    info = replace(model_info(default_model_name()), sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="reinstall"):
        verified_path(info)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_the_model_ships_in_the_package_data():
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "core.ai" in conf["packages"]
    assert "core.ai.models" in conf["packages"]
    data = conf["package-data"]["core.ai.models"]
    assert "*.onnx" in data
    assert "*.json" in data
    runtime_deps = " ".join((conf_all := tomllib.loads((ROOT / "pyproject.toml").read_text())
                             )["project"]["dependencies"])
    assert "torch" not in runtime_deps
    assert "onnx" not in runtime_deps
    assert "torch" in " ".join(conf_all["project"]["optional-dependencies"]["train"])


def test_runtime_never_imports_torch_or_onnx():
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text()
        assert "import torch" not in text, path
        assert "import onnx\n" not in text, path


# ----------------------------------------------------------------------------- quality
def test_ai_deblur_gains_psnr_on_a_blurred_image():
    blurred, gt = _blurred_pair()
    out = ai_deblur(blurred)
    gain = psnr_db(out, gt) - psnr_db(blurred, gt)
    assert gain > 1.0, f"PSNR gain {gain:.2f} dB"


def _grid_locked_periodic_levels(restore, img: np.ndarray) -> float:
    """Largest (half-)Nyquist amplitude, in 8-bit levels, of the part of ``restore``'s residual
    that stays with the pixel grid when the photo moves under it.

    A checkerboard or grid from strided layers is anchored to the tiles' stride grid; detail
    the photo itself has at those frequencies (fine stripes, sharpened edges) moves with the
    photo. The image is cropped by 1 or 2 px (so the photo shifts against the grid), restored
    again and the two residuals are compared on the same photo pixels: content cancels, a
    grid-locked pattern does not (half their difference is its amplitude, for each pattern
    that one of the shifts flips).
    """

    def lum_res(x: np.ndarray) -> np.ndarray:
        return (restore(x).astype(np.float32) - x.astype(np.float32)).mean(axis=2) / 255

    h, w = img.shape[:2]
    worst = 0.0
    for dy, dx in ((1, 0), (0, 1), (2, 0), (0, 2)):
        ra = lum_res(img[: h - dy, : w - dx])[dy:, dx:]
        rb = lum_res(img[dy:, dx:])[: h - 2 * dy, : w - 2 * dx]
        d = (ra - rb) / 2
        for y in range(0, d.shape[0] - 63, 48):
            for x in range(0, d.shape[1] - 63, 48):
                score, amp = periodic_artifact_score(d[y : y + 64, x : x + 64])
                if score > 12:  # a spectral peak (natural content scores 1-8)
                    worst = max(worst, amp * 255)
    return worst


def test_the_grid_locked_measure_finds_a_faint_checkerboard():
    blurred, _ = _blurred_pair()
    yy, xx = np.mgrid[: blurred.shape[0], : blurred.shape[1]]
    board = np.where((yy + xx) % 2, 2.0, -2.0)[..., None]  # +-2 levels, anchored at the origin

    def with_board(x: np.ndarray) -> np.ndarray:
        out = ai_deblur(x, guard=False).astype(np.float32)
        return np.clip(out + board[: x.shape[0], : x.shape[1]], 0, 255)

    assert _grid_locked_periodic_levels(with_board, blurred) > 1.5
    grid4 = np.where(yy % 4 < 2, 1.5, -1.5)[..., None]  # a 4-px stride grid, +-1.5 levels

    def with_grid(x: np.ndarray) -> np.ndarray:
        out = ai_deblur(x, guard=False).astype(np.float32)
        return np.clip(out + grid4[: x.shape[0], : x.shape[1]], 0, 255)

    assert _grid_locked_periodic_levels(with_grid, blurred) > 1.0


def test_output_has_no_periodic_artefacts():
    # the network's own result (strength 50, guard off): any checkerboard or grid it adds must
    # stay below one 8-bit level of amplitude, i.e. invisible
    blurred, _ = _blurred_pair()
    level = _grid_locked_periodic_levels(lambda x: ai_deblur(x, guard=False), blurred)
    assert level < 1.0, f"grid-locked periodic residual of {level:.2f} levels"


def test_sharp_input_is_left_nearly_alone():
    sharp = (make_scene(96, 96, seed=5) * 255).round().astype(np.uint8)
    out = ai_deblur(sharp)
    assert np.abs(out.astype(int) - sharp).mean() < 3.0


# ----------------------------------------------------------------------------- pixel contract
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_dtype_shape_and_alpha_round_trip(dtype, channels):
    rng = np.random.default_rng(channels)
    base = make_scene(37, 45, seed=1)
    colour = base[..., :1] if channels in (1, 2) else base
    alpha = rng.random((37, 45, 1)).astype(np.float32)
    alpha[:5] = 0.0
    arr = np.concatenate([colour, alpha], axis=2) if channels in (2, 4) else colour
    if np.dtype(dtype).kind == "u":
        img = np.rint(arr * np.iinfo(dtype).max).astype(dtype)
    else:
        img = arr.astype(dtype)
    if channels == 1:
        img = img[..., 0]
    before = img.copy()
    out = ai_deblur(img)
    assert out.dtype == img.dtype
    assert out.shape == img.shape
    np.testing.assert_array_equal(img, before)
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])
        c = channels - 1
        # fully transparent pixels keep their colour values
        np.testing.assert_array_equal(out[:5, :, :c], img[:5, :, :c])


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 3, 3), (2, 7), (17, 1, 4)])
def test_tiny_images(shape):
    img = np.full(shape, 0.25, np.float32)
    out = ai_deblur(img)
    assert out.shape == img.shape
    assert np.isfinite(out).all()


def test_hdr_values_above_one_survive():
    img = make_scene(48, 48, seed=2) * 4.0
    out = ai_deblur(img)
    assert out.max() > 1.5
    assert np.isfinite(out).all()
    assert out.min() >= 0


def test_linear_input_round_trip_is_close():
    sharp = make_scene(64, 64, seed=4)
    out_enc = ai_deblur(sharp)
    out_lin = ai_deblur(srgb_to_linear(sharp), linear_input=True)
    assert np.abs(linear_to_srgb(out_lin) - out_enc).max() < 0.02


# ----------------------------------------------------------------------------- strength
def test_strength_zero_is_identity_and_change_is_monotone():
    blurred, _ = _blurred_pair(96)
    np.testing.assert_array_equal(ai_deblur(blurred, strength=0), blurred)
    # guard on: it once took this drawn scene's sharpened colour edges for a colour mosaic
    # and, on a 2x2-block image, blanked every change
    changes = [
        np.abs(ai_deblur(blurred, strength=s).astype(float) - blurred).mean()
        for s in (10, 25, 50, 75, 100)
    ]
    assert all(a < b for a, b in zip(changes, changes[1:], strict=False)), changes
    assert strength_gain(0) == 0
    assert strength_gain(50) == 1
    assert 1.5 <= strength_gain(100) <= 2
    with pytest.raises(ValueError, match="0..100"):
        ai_deblur(blurred, strength=120)


# ----------------------------------------------------------------------------- tiling, cancel
def test_tiled_equals_untiled():
    img = (make_scene(600, 600, seed=6) * 65535).round().astype(np.uint16)
    whole = ai_deblur(img, tile_px=1024).astype(np.int64)
    tiled = ai_deblur(img, tile_px=160).astype(np.int64)
    assert np.abs(whole - tiled).max() <= 2  # 16-bit levels: float rounding only


def test_progress_reaches_the_end_and_cancel_raises():
    img = make_scene(300, 300, seed=7)
    seen: list[float] = []
    ai_deblur(img, tile_px=128, progress=lambda f, s: seen.append(f))
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert len(seen) >= 9
    calls = []

    def cancel(fraction: float, stage: str) -> bool:
        calls.append(fraction)
        return len(calls) < 3

    with pytest.raises(OperationCancelled):
        ai_deblur(img, tile_px=128, progress=cancel)
    assert len(calls) == 3


# ----------------------------------------------------------------------------- CLI
def test_cli_ai_method_and_models(tmp_path, capsys):
    from core.cli import main
    from core.io import read_image, write_image

    blurred, gt = _blurred_pair(96)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, blurred)
    assert main(["deblur", str(src), "-o", str(out), "--method", "ai", "-q"]) == 0
    np.testing.assert_array_equal(read_image(out).pixels, ai_deblur(blurred))
    assert main(["deblur", str(src), "-o", str(tmp_path / "o2.png"), "--method", "ai",
                 "--model", "no-such-model", "-q"]) == 2
    assert "shipped models are" in capsys.readouterr().err
    assert main(["deblur", str(src), "-o", str(tmp_path / "o3.png"), "--method", "ai",
                 "--motion", "9,30", "-q"]) == 2
    assert main(["models"]) == 0
    assert default_model_name() in capsys.readouterr().out


def test_motion_blur_also_gains():
    set14 = make_scene(200, 200, seed=11)
    blurred, gt = blur_valid(srgb_to_linear(set14), motion_psf(9, 30))
    b8 = np.rint(linear_to_srgb(np.clip(blurred, 0, 1)) * 255).astype(np.uint8)
    g8 = np.rint(linear_to_srgb(gt) * 255).astype(np.uint8)
    # shipped model: +0.4 dB here (+2.8 dB on the defocused Set14 crop above)
    assert psnr_db(ai_deblur(b8), g8) > psnr_db(b8, g8) + 0.3


# ----------------------------------------------------------------------------- large blur
def test_a_large_blur_gains_from_the_coarse_pass():
    # an 18 px defocus disk (36 px across; the network was trained on blur up to ~21 px): one
    # pass 16.64 dB (blurred 16.61), with the coarse pass 17.58 (seeds 3 and 7 alike)
    blurred, sharp = blurred_pair8(make_scene(440, 440, seed=1), defocus_psf(18), 0.005, 1)

    def psnr(x: np.ndarray) -> float:
        return psnr_db(x.astype(np.float32) / 255, sharp.astype(np.float32) / 255)

    one = psnr(ai_deblur(blurred))
    assert psnr(ai_deblur(blurred, blur_px=COARSE_FROM_PX)) > one + 0.6
    # a blur the network knows (or none given) runs once, as before
    np.testing.assert_array_equal(ai_deblur(blurred, blur_px=30), ai_deblur(blurred))


@pytest.mark.parametrize("dtype", [np.uint16, np.float16, np.float32])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_the_coarse_pass_keeps_dtype_shape_and_alpha(dtype, channels):
    base = make_scene(170, 190, seed=2)
    colour = base[..., :1] if channels in (1, 2) else base
    arr = np.concatenate([colour, np.full((170, 190, 1), 0.75, np.float32)], axis=2)
    arr = arr if channels in (2, 4) else colour
    img = np.rint(arr * 65535).astype(dtype) if dtype == np.uint16 else arr.astype(dtype)
    if channels == 1:
        img = img[..., 0]
    before = img.copy()
    out = ai_deblur(img, blur_px=36)  # scaled by 2.4: 71x79 px
    assert out.dtype == img.dtype
    assert out.shape == img.shape
    np.testing.assert_array_equal(img, before)
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])
    assert not np.array_equal(out, ai_deblur(img))  # the coarse pass ran


def test_the_coarse_pass_follows_strength_progress_and_cancel():
    blurred, _ = blurred_pair8(make_scene(300, 300, seed=3), defocus_psf(10), 0.005, 3)
    np.testing.assert_array_equal(ai_deblur(blurred, strength=0, blur_px=40), blurred)
    changes = [
        np.abs(ai_deblur(blurred, strength=s, blur_px=40).astype(float) - blurred).mean()
        for s in (25, 50, 100)
    ]
    assert changes == sorted(changes), changes
    seen: list[float] = []
    ai_deblur(blurred, blur_px=40, tile_px=128, progress=lambda f, s: seen.append(f))
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert any(0.0 < f < 0.25 for f in seen)  # the coarse pass reports too
    calls: list[float] = []

    def cancel(fraction: float, stage: str) -> bool:
        calls.append(fraction)
        return len(calls) < 2

    with pytest.raises(OperationCancelled):
        ai_deblur(blurred, blur_px=40, progress=cancel)
    with pytest.raises(ValueError, match="blur_px"):
        ai_deblur(blurred, blur_px=float("nan"))
    # too small to scale down that far: one pass
    small = blurred[:100, :100]
    np.testing.assert_array_equal(ai_deblur(small, blur_px=200), ai_deblur(small))
