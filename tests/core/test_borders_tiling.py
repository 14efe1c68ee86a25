import numpy as np
import pytest

from core.borders import next_fast_len, padded_shape, smooth_periodic_pad
from core.tiling import process_tiled, tile_grid


def test_next_fast_len():
    for n in (1, 7, 97, 255, 1000, 3062, 4097):
        m = next_fast_len(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1


def test_padding_keeps_the_image_and_is_smooth_and_periodic():
    rng = np.random.default_rng(0)
    x = rng.random((40, 50, 2)).astype(np.float32)
    shape = padded_shape((40, 50), (9, 9))
    p = smooth_periodic_pad(x, shape)
    assert p.shape == (*shape, 2)
    np.testing.assert_array_equal(p[:40, :50], x)
    # harmonic fill: the discrete Laplacian vanishes inside the added strips
    c = p[..., 0].astype(np.float64)
    lap = 4 * c - np.roll(c, 1, 0) - np.roll(c, -1, 0) - np.roll(c, 1, 1) - np.roll(c, -1, 1)
    assert np.abs(lap[1:39, 51:-1]).max() < 1e-4
    assert np.abs(lap[41:-1, :]).max() < 1e-4
    # wrap-around jumps are no larger than jumps inside the image
    inner = np.abs(np.diff(c[:40, :50], axis=1)).max()
    assert np.abs(c[:, -1] - c[:, 0]).max() <= inner + 1e-6


def test_padding_rejects_smaller_shapes():
    with pytest.raises(ValueError, match="smaller"):
        smooth_periodic_pad(np.zeros((10, 10, 1), np.float32), (8, 12))


def test_tile_grid_partitions():
    cores = tile_grid(1000, 300)
    assert cores[0][0] == 0
    assert cores[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(cores[:-1], cores[1:], strict=True))
    assert max(b - a for a, b in cores) <= 300


def test_tiled_processing_matches_whole_image_for_local_ops():
    rng = np.random.default_rng(2)
    x = rng.random((130, 170, 3)).astype(np.float32)

    def box(t, _rep):
        out = t.copy()
        out[1:-1, 1:-1] = (t[:-2, 1:-1] + t[2:, 1:-1] + t[1:-1, :-2] + t[1:-1, 2:]) / 4
        return out

    whole = box(x, None)
    tiled = process_tiled(x, box, tile_px=48, margin_px=8)
    np.testing.assert_allclose(tiled[2:-2, 2:-2], whole[2:-2, 2:-2], atol=1e-6)
