"""core.compare.psf_picture: a kernel as a grayscale picture."""

from __future__ import annotations

import numpy as np
import pytest

from core.compare import psf_picture
from core.psf import motion_psf


def test_psf_picture_peak_white_and_enlarged_by_whole_pixels():
    k = motion_psf(9.0, 30.0)
    pic = psf_picture(k, 256)
    assert pic.dtype == np.uint8
    assert min(pic.shape) >= 256
    f = pic.shape[0] // k.shape[0]
    assert pic.shape == (k.shape[0] * f, k.shape[1] * f)
    assert pic.max() == 255
    small = pic[::f, ::f]  # nearest neighbour: every kernel pixel is an f x f square
    assert np.array_equal(np.repeat(np.repeat(small, f, 0), f, 1), pic)
    assert np.array_equal(small, np.rint(k / k.max() * 255).astype(np.uint8))


def test_psf_picture_of_a_big_kernel_and_bad_input():
    assert psf_picture(np.ones((300, 310)), 256).shape == (300, 310)
    assert psf_picture(np.zeros((3, 3)), 4).max() == 0
    with pytest.raises(ValueError, match="2-D"):
        psf_picture(np.ones(5))
