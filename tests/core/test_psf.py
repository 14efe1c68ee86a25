import numpy as np
import pytest

from core.psf import MAX_PSF_SIDE_PX, defocus_psf, gaussian_psf, motion_psf, normalize_psf


def _centroid_offset(k):
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    c = (k.shape[0] - 1) / 2
    return abs(float((k * yy).sum()) - c), abs(float((k * xx).sum()) - c)


@pytest.mark.parametrize(
    "k",
    [
        gaussian_psf(0.3),
        gaussian_psf(2.5),
        defocus_psf(0.4),
        defocus_psf(4.2),
        motion_psf(1, 0),
        motion_psf(9, 0),
        motion_psf(15, 37),
        motion_psf(20.5, 100),
    ],
)
def test_kernels_are_normalised_centred_and_odd(k):
    assert k.dtype == np.float32
    assert k.ndim == 2
    assert k.shape[0] % 2 == 1
    assert k.shape[1] % 2 == 1
    assert (k >= 0).all()
    assert abs(float(k.sum()) - 1) < 1e-5
    dy, dx = _centroid_offset(k)
    assert dy < 1e-3
    assert dx < 1e-3


def test_motion_psf_extends_along_its_angle():
    k = motion_psf(15, 0)
    rows = np.nonzero(k.sum(axis=1) > 1e-3)[0]
    cols = np.nonzero(k.sum(axis=0) > 1e-3)[0]
    assert len(rows) <= 2
    assert 14 <= len(cols) <= 17
    kv = motion_psf(15, 90)
    np.testing.assert_allclose(kv, k.T, atol=1e-6)


def test_motion_is_symmetric_in_direction():
    np.testing.assert_allclose(motion_psf(11, 30), motion_psf(11, 210), atol=1e-6)


def test_defocus_disk_radius():
    k = defocus_psf(5)
    row = k[k.shape[0] // 2]
    assert 10 <= int((row > 1e-4).sum()) <= 12


def test_normalize_psf_accepts_uneven_and_off_centre_kernels():
    raw = np.zeros((6, 8))
    raw[1, 2:6] = 3
    k = normalize_psf(raw)
    assert k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1) < 1e-5
    assert max(_centroid_offset(k)) <= 0.5  # an even-length streak cannot do better


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((5, 5)), "no positive"),
        (np.zeros((0, 3)), "non-empty"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.ones((MAX_PSF_SIDE_PX + 2, 3)), "supported"),
    ],
)
def test_bad_kernels_get_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        normalize_psf(bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: gaussian_psf(0),
        lambda: defocus_psf(-1),
        lambda: motion_psf(0.5, 0),
        lambda: motion_psf(5, float("nan")),
    ],
)
def test_bad_parameters_are_refused(call):
    with pytest.raises(ValueError, match="must"):
        call()


def test_path_psf_draws_the_path_it_is_given():
    from core.psf import path_psf

    straight = path_psf(np.linspace(0, 1, 200) * np.exp(1j * np.deg2rad(30)), 15)
    assert abs(float(straight.sum()) - 1) < 1e-6
    ys, xs = np.nonzero(straight > 0.2 * straight.max())
    assert np.ptp(xs) >= 10  # a streak about 15 px long at 30 deg
    assert np.ptp(ys) >= 5
    assert np.corrcoef(xs, -ys)[0, 1] > 0.95  # rising to the right (y up)
    arc = path_psf(np.exp(1j * np.linspace(0, np.pi, 300)), 21)
    assert arc[arc.shape[0] // 2, arc.shape[1] // 2] < 0.2 * arc.max()  # hollow: a curve
    with pytest.raises(ValueError, match="at least 2 finite"):
        path_psf(np.array([1 + 1j]), 9)
    with pytest.raises(ValueError, match="extent_px"):
        path_psf(np.array([0, 1j]), 0.5)
