"""Unsharp mask: Photoshop semantics, threshold, halo limiter, alpha, dtypes."""

import numpy as np
import pytest
from conftest import make_scene
from PIL import Image, ImageFilter

from core.sharpen import UnsharpParams, unsharp_mask


def _edge(dtype=np.uint8, hi=200):
    x = np.zeros((16, 32), dtype)
    x[:, 16:] = hi
    return x


def test_amount_zero_is_identity():
    x = (make_scene(20, 24) * 255).astype(np.uint8)
    np.testing.assert_array_equal(unsharp_mask(x, 0, 2.0, 0), x)


def test_constant_image_stays_constant():
    x = np.full((20, 20, 3), 0.3, np.float32)
    np.testing.assert_allclose(unsharp_mask(x, 300, 3.0, 0), 0.3, atol=1e-6)


def test_edges_overshoot_as_in_photoshop():
    out = unsharp_mask(_edge(), 100, 1.0, 0).astype(int)
    assert out[0, 16] > 200
    assert out[0, 15] == 0
    assert out[0, 0] == 0
    assert out[0, -1] == 200


def test_matches_pillow_on_8bit():
    x = (make_scene(64, 64, seed=3) * 255).astype(np.uint8)
    ours = unsharp_mask(x, 120, 1.5, 0).astype(float)
    ref = np.asarray(Image.fromarray(x).filter(ImageFilter.UnsharpMask(1.5, 120, 0))).astype(float)
    assert np.abs(ours - ref)[4:-4, 4:-4].mean() < 1.5


def test_threshold_protects_low_contrast_detail():
    x = np.full((20, 40), 100, np.uint8)
    x[:, 20:] = 103  # a 3-level step: below a 5-level threshold
    np.testing.assert_array_equal(unsharp_mask(x, 200, 1.0, 5), x)
    assert not np.array_equal(unsharp_mask(x, 200, 1.0, 0), x)


def test_threshold_means_the_same_on_16bit():
    x8 = np.full((20, 40), 100, np.uint8)
    x8[:, 20:] = 103
    x16 = x8.astype(np.uint16) * 257
    np.testing.assert_array_equal(unsharp_mask(x16, 200, 1.0, 5), x16)


def test_halo_limiter_reduces_overshoot():
    x = _edge(np.float32, 0.5) + np.float32(0.25)
    free = unsharp_mask(x, 300, 2.0, 0)
    limited = unsharp_mask(x, 300, 2.0, 0, halo_limit=0.05)
    over_free = free.max() - x.max()
    over_lim = limited.max() - x.max()
    assert over_lim <= 0.05 * 0.5 + 1e-6 < over_free
    # the edge is still steeper than the input's one-step jump region
    assert limited[0, 16] >= x[0, 16]


def test_alpha_is_untouched_and_shapes_kept():
    rng = np.random.default_rng(0)
    x = (rng.random((24, 30, 4)) * 65535).astype(np.uint16)
    out = unsharp_mask(x, 150, 1.2, 2)
    assert out.dtype == np.uint16
    assert out.shape == x.shape
    np.testing.assert_array_equal(out[..., 3], x[..., 3])


def test_luminance_only_keeps_grey_grey():
    x = np.repeat(_edge(np.float32, 0.6)[:, :, None], 3, axis=2) + np.float32(0.2)
    out = unsharp_mask(x, 150, 1.5, 0, luminance_only=True)
    assert float((out.max(axis=2) - out.min(axis=2)).max()) < 1e-5
    assert out.max() > x.max()


def test_float_input_may_keep_hdr_with_clip_off():
    x = _edge(np.float32, 2.0)
    assert unsharp_mask(x, 100, 1.0, 0, clip=False).max() > 2.0
    assert unsharp_mask(x, 100, 1.0, 0).max() <= 1.0


def test_strips_give_the_same_result_as_one_block():
    from core import sharpen

    x = (make_scene(300, 200, seed=2) * 255).astype(np.uint8)
    whole = unsharp_mask(x, 120, 2.0, 3)
    old = sharpen._STRIP_PX
    try:
        sharpen._STRIP_PX = 200 * 20
        strips = unsharp_mask(x, 120, 2.0, 3)
    finally:
        sharpen._STRIP_PX = old
    np.testing.assert_array_equal(strips, whole)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5, 3), (3, 1, 4)])
def test_tiny_images(shape):
    x = np.full(shape, 0.5, np.float32)
    assert unsharp_mask(x, 100, 1.5, 0).shape == shape


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount_pct": -1},
        {"radius_px": 0},
        {"threshold_levels": 300},
        {"halo_limit": 2.0},
        {"space": "lab"},
    ],
)
def test_bad_parameters_name_the_parameter(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        UnsharpParams(**kwargs)
