"""Non-blind deblurring of the 32 real Levin et al. (2009) captures with their true kernels.

Uses ../shared/data/deblur/levin09 when present (skipped otherwise). Protocol as the benchmark
(benchmarks/levin_nonblind.py): 1 % Gaussian noise, Levin's aligned PSNR. Measured 32.5 dB for
the sparse solver (blurred input 23.2 dB); the test guards against regressions.
"""

import cv2
import numpy as np
import pytest

from core.compare import psnr_aligned_db
from core.deconvolve import deconvolve_sparse, deconvolve_wiener


def _cases(root):
    levin = root / "levin09"
    ks = np.load(levin / "kernels" / "levin09_kernels.npz")
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        x = cv2.imread(str(levin / "sharp" / f"im{i}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        for j in range(1, 9):
            name = str(levin / "blurred" / f"im{i}_kernel{j}_img.png")
            y = cv2.imread(name, cv2.IMREAD_GRAYSCALE) / 255.0 + 0.01 * rng.standard_normal(x.shape)
            yield x, y.astype(np.float32)[:, :, None], ks[f"conv_k{j}"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("solver", "floor_db"), [(deconvolve_sparse, 32.3), (deconvolve_wiener, 30.6)]
)
def test_real_levin_captures(shared_deblur, solver, floor_db):
    blurred, restored = [], []
    for x, y, k in _cases(shared_deblur):
        blurred.append(psnr_aligned_db(y[:, :, 0], x))
        restored.append(psnr_aligned_db(solver(y, k)[:, :, 0], x))
    assert np.mean(blurred) < 24
    assert np.mean(restored) >= floor_db
    assert min(r - b for r, b in zip(restored, blurred, strict=True)) > 2
