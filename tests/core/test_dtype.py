import numpy as np
import pytest

from core.dtype import as_hwc, check_image, from_float32, join_alpha, split_alpha, to_float32


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_round_trip_is_exact(dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(0).integers(0, info.max + 1, (7, 5, 3), dtype=dtype)
    f = to_float32(x)
    assert f.dtype == np.float32
    assert f.min() >= 0
    assert f.max() <= 1
    np.testing.assert_array_equal(from_float32(f, dtype), x)


def test_float_inputs_are_promoted_and_not_clipped():
    x = np.array([[-0.5, 2.0]], np.float16)
    f = to_float32(x)
    assert f.dtype == np.float32
    assert f.shape == (1, 2, 1)
    assert f.min() == -0.5
    assert f.max() == 2.0


def test_from_float32_rounds_to_nearest_and_clips():
    f = np.array([[0.5 / 255 + 1e-4, 1.7, -0.2]], np.float32)[:, :, None]
    assert from_float32(f, np.uint8).ravel().tolist() == [1, 255, 0]


def test_input_is_not_modified():
    x = np.full((3, 3), 7, np.uint8)
    to_float32(x)
    assert (x == 7).all()


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 2), bool), np.zeros((2, 2), np.int32), np.zeros((2, 2), complex)]
)
def test_unsupported_dtypes_are_refused(bad):
    with pytest.raises(TypeError, match="dtype"):
        to_float32(bad)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0, 3)])
def test_empty_images_are_refused(shape):
    with pytest.raises(ValueError, match="empty"):
        check_image(np.zeros(shape, np.float32))


def test_wrong_shapes_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="moveaxis"):
        as_hwc(np.zeros((3, 8, 8, 2)))
    with pytest.raises(ValueError, match="C in 1..4"):
        as_hwc(np.zeros((8, 8, 5)))


def test_nan_is_refused_with_the_fix():
    x = np.zeros((4, 4), np.float32)
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="nan_to_num"):
        to_float32(x)


def test_alpha_split_and_join():
    x = np.random.default_rng(1).random((4, 4, 4)).astype(np.float32)
    c, a = split_alpha(x)
    assert c.shape == (4, 4, 3)
    assert a.shape == (4, 4, 1)
    np.testing.assert_array_equal(join_alpha(c, a), x)
    c2, a2 = split_alpha(x[:, :, :3])
    assert a2 is None
    assert c2.shape == (4, 4, 3)
