"""Whether a kernel explains a photo (core.kernel_fit)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blurred_pair8, make_scene

import core.kernel_fit as kernel_fit
from core.deblur import deblur
from core.kernel_fit import kernel_misfit
from core.psf import defocus_psf, motion_psf

ALONG = motion_psf(13, 30)
ACROSS = motion_psf(13, 120)


def _blurred(psf: np.ndarray, scene: np.ndarray | None = None) -> np.ndarray:
    sharp = make_scene(272, 272, seed=7) if scene is None else scene
    return blurred_pair8(sharp, psf, 0.005, 7)[0]


def test_the_right_kernel_explains_the_photo_and_a_wrong_one_does_not():
    photo = _blurred(ALONG)
    right = kernel_misfit(photo, deblur(photo, ALONG), ALONG)
    wrong = kernel_misfit(photo, deblur(photo, ACROSS), ACROSS)
    rounded = _blurred(defocus_psf(3.0))
    disk = kernel_misfit(rounded, deblur(rounded, defocus_psf(3.0)), defocus_psf(3.0))
    assert right < 0.15
    assert disk < 0.15
    assert wrong > 0.6


def test_one_kernel_does_not_explain_a_photo_whose_halves_blurred_differently():
    """A subject that moved: the right half blurred across the left half's motion."""
    left, right = _blurred(ALONG), _blurred(ACROSS)
    photo = left.copy()
    photo[:, 128:] = right[:, 128:]
    uniform = kernel_misfit(left, deblur(left, ALONG), ALONG)
    mixed = kernel_misfit(photo, deblur(photo, ALONG), ALONG)
    assert mixed > 0.8
    assert mixed > 5 * uniform


def test_clipped_highlights_are_left_out(monkeypatch):
    """Where highlights clip, the blur model does not hold (a 40 % clipped scene): measured
    there, even the right kernel would seem to misfit."""
    bright = np.clip(make_scene(272, 272, seed=7) * 1.6, 0, 1)
    photo = _blurred(ALONG, bright)
    assert (photo.max(axis=2) >= 250).mean() > 0.3
    restored = deblur(photo, ALONG)
    masked = kernel_misfit(photo, restored, ALONG)
    monkeypatch.setattr(kernel_fit, "SATURATED", 2.0)  # nothing counts as clipped
    unmasked = kernel_misfit(photo, restored, ALONG)
    assert masked < 0.1
    assert unmasked > 2 * masked


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_dtypes_alpha_and_inputs(dtype):
    photo8 = _blurred(ALONG)
    restored8 = deblur(photo8, ALONG)
    reference = kernel_misfit(photo8, restored8, ALONG)

    def as_dtype(a: np.ndarray) -> np.ndarray:
        f = a.astype(np.float32) / 255
        if dtype is np.float32:
            return f
        return np.rint(f * np.iinfo(dtype).max).astype(dtype)

    alpha = np.full(photo8.shape[:2] + (1,), 1.0, np.float32)
    photo = as_dtype(photo8)
    restored = as_dtype(restored8)
    with_alpha = np.concatenate([photo, as_dtype(alpha * 255)], axis=2)
    restored_alpha = np.concatenate([restored, as_dtype(alpha * 255)], axis=2)
    before = with_alpha.copy()
    value = kernel_misfit(with_alpha, restored_alpha, ALONG)
    assert np.array_equal(with_alpha, before)
    assert value == pytest.approx(reference, abs=0.02)


def test_too_small_or_flat_gives_nan_and_mismatched_shapes_a_clear_error():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    assert np.isnan(kernel_misfit(flat, flat, ALONG))
    tiny = _blurred(ALONG)[:40, :40]
    assert np.isnan(kernel_misfit(tiny, tiny, ALONG))
    photo = _blurred(ALONG)
    with pytest.raises(ValueError, match="same shape"):
        kernel_misfit(photo, photo[:100], ALONG)
    with pytest.raises(ValueError, match="tile_px"):
        kernel_misfit(photo, photo, ALONG, tile_px=4)


def test_a_restoration_that_misfits_everywhere_is_not_taken_for_noise():
    """The residual of the least-blurred tiles stands for noise, but only up to the photo's own
    noise: garbage spread evenly over the photo (flat tiles too) must still measure as misfit."""
    photo = _blurred(ALONG)
    rng = np.random.default_rng(3)
    garbage = np.clip(deblur(photo, ALONG) + rng.normal(0, 40, photo.shape), 0, 255)
    assert kernel_misfit(photo, garbage.astype(np.uint8), ALONG) > 1.0
