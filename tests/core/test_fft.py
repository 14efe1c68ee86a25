"""The CCS (OpenCV packed) spectrum helpers agree with numpy's complex FFT."""

import numpy as np
import pytest

from core import fft


@pytest.mark.parametrize("shape", [(8, 10), (30, 42), (64, 96), (4, 4)])
def test_ccs_operations_match_numpy(shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    k = rng.random((3, 3)).astype(np.float32)
    kpad = np.zeros(shape, np.float32)
    kpad[:3, :3] = k
    kf = np.fft.rfft2(np.roll(kpad, (-1, -1), axis=(0, 1)))
    xf = np.fft.rfft2(x)
    spec_k = fft.psf_spectrum(k, shape)
    # product, conjugate product, |K|^2 division
    np.testing.assert_allclose(
        fft.idft(fft.mul(fft.dft(x), spec_k)), np.fft.irfft2(xf * kf, s=shape), atol=1e-5
    )
    np.testing.assert_allclose(
        fft.idft(fft.mul(fft.dft(x), fft.conj(spec_k))),
        np.fft.irfft2(xf * np.conj(kf), s=shape),
        atol=1e-5,
    )
    den = (np.abs(kf) ** 2 + 0.1).astype(np.float32)
    np.testing.assert_allclose(
        fft.idft(fft.dft(x) / (fft.abs2(spec_k) + np.float32(0.1))),
        np.fft.irfft2(xf / den, s=shape),
        atol=1e-4,
    )
    np.testing.assert_allclose(
        fft.idft(fft.dft(x) / fft.real_spectrum_to_ccs(den)),
        np.fft.irfft2(xf / den, s=shape),
        atol=1e-4,
    )


def test_fast_shapes_are_even_and_large_enough():
    for n in (1, 3, 255, 1001, 3062):
        h, w = fft.fast_shape(n, n + 1)
        assert h >= n
        assert w >= n + 1
        assert h % 2 == 0
        assert w % 2 == 0
