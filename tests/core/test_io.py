"""Tests for core.io: round trips per format, dtype and channel count; ICC; safety rules."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from io import BytesIO

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from core import io as cio
from core.errors import ImageReadError, MissingDependencyError
from core.io import LoadedImage, output_path_for, read_image, write_image

SIZES = [(1, 1), (3, 2), (17, 31)]
LOSSLESS = [
    ("png", np.uint8),
    ("png", np.uint16),
    ("tif", np.uint8),
    ("tif", np.uint16),
    ("tif", np.float32),
]
JPEG_MAD_8BIT = 2.0  # mean absolute difference allowed for a smooth image at quality 95


# --- helpers ---------------------------------------------------------------------------------


def make_pixels(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    """Random pixels covering the dtype's range, with both extremes present."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        arr = (rng.random(shape) * 1.5 - 0.25).astype(dtype)  # HDR: below 0 and above 1
        arr.flat[0], arr.flat[-1] = 0.0, 1.0
        return arr
    top = np.iinfo(dtype).max
    arr = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
    arr.flat[0], arr.flat[-1] = top, 0
    return arr


def smooth_pixels(height: int, width: int, channels: int) -> np.ndarray:
    """A gentle uint8 gradient that JPEG reproduces closely."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [40 + 150 * x / max(width, 1), 60 + 120 * y / max(height, 1), 100 + 0 * x]
    return np.stack(planes[:channels], axis=2).round().astype(np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def gray_icc() -> bytes:
    """A small, valid ICC v2 gray profile (gamma 2.2), built by hand."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    text = b"clearshot test gray\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [
        (b"desc", desc),
        (b"wtpt", b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)),
        (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0233)),
        (b"cprt", b"text" + bytes(4) + b"public domain\x00"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + b"\x02\x10\x00\x00"
        + b"mntr"
        + b"GRAY"
        + b"XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + table + body


def big_icc(base: bytes, total: int = 150_000) -> bytes:
    """``base`` padded to ``total`` bytes with its declared size updated (needs 3 JPEG APP2s)."""
    data = bytearray(base + bytes(total - len(base)))
    data[0:4] = struct.pack(">I", total)
    return bytes(data)


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize(("ext", "dtype"), LOSSLESS, ids=lambda v: getattr(v, "__name__", v))
def test_lossless_round_trip(tmp_path, ext, dtype, channels, size):
    pixels = make_pixels((*size, channels), dtype)
    before = pixels.copy()
    path = tmp_path / f"img.{ext}"
    write_image(path, pixels)
    loaded = read_image(path)
    assert loaded.pixels.shape == (*size, channels)
    assert loaded.pixels.dtype == dtype
    np.testing.assert_array_equal(loaded.pixels, pixels)
    np.testing.assert_array_equal(pixels, before)  # input unchanged
    assert loaded.format == {"png": "png", "tif": "tiff"}[ext]
    assert loaded.path == str(path)
    assert loaded.icc_profile is None


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(tmp_path, channels, size):
    pixels = smooth_pixels(*size, channels)
    path = tmp_path / "img.jpg"
    write_image(path, pixels)
    loaded = read_image(path)
    assert loaded.format == "jpeg"
    assert loaded.pixels.shape == (*size, channels)
    assert loaded.pixels.dtype == np.uint8
    mad = np.abs(loaded.pixels.astype(np.float64) - pixels).mean()
    assert mad < JPEG_MAD_8BIT


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_two_dimensional_input_is_written_as_gray(tmp_path, ext):
    pixels = smooth_pixels(5, 7, 1)[:, :, 0]
    write_image(tmp_path / f"g.{ext}", pixels)
    loaded = read_image(tmp_path / f"g.{ext}")
    assert loaded.pixels.shape == (5, 7, 1)
    if ext != "jpg":
        np.testing.assert_array_equal(loaded.pixels[:, :, 0], pixels)


@pytest.mark.parametrize(
    ("ext", "dtype"),
    [("png", np.uint8), ("png", np.uint16), ("tif", np.uint16), ("tif", np.float32)],
)
def test_alpha_and_hidden_colour_are_bit_identical(tmp_path, ext, dtype):
    pixels = make_pixels((9, 11, 4), dtype, seed=3)
    full = 1.0 if pixels.dtype.kind == "f" else np.iinfo(dtype).max
    pixels[::2, :, 3] = 0  # fully transparent rows keep their colour values
    pixels[1::4, :, 3] = full
    write_image(tmp_path / f"a.{ext}", pixels)
    back = read_image(tmp_path / f"a.{ext}").pixels
    assert back[..., 3].tobytes() == pixels[..., 3].tobytes()
    assert back[::2, :, :3].tobytes() == pixels[::2, :, :3].tobytes()


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_non_contiguous_input(tmp_path, ext, channels):
    base = make_pixels((6, 10, 5), np.uint16)
    view = base[::-1, ::-2, 1 : 1 + channels]
    assert not view.flags.c_contiguous
    write_image(tmp_path / f"v.{ext}", view)
    np.testing.assert_array_equal(read_image(tmp_path / f"v.{ext}").pixels, view)


def test_big_endian_input(tmp_path):
    pixels = make_pixels((4, 5, 3), np.uint16)
    write_image(tmp_path / "be.tif", pixels.astype(">u2"))
    np.testing.assert_array_equal(read_image(tmp_path / "be.tif").pixels, pixels)


# --- ICC profiles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "channels"),
    [
        ("png", 1),
        ("png", 2),
        ("png", 3),
        ("png", 4),
        ("tif", 1),
        ("tif", 2),
        ("tif", 3),
        ("tif", 4),
        ("jpg", 1),
        ("jpg", 3),
    ],
)
def test_icc_round_trip(tmp_path, ext, channels):
    icc = gray_icc() if channels <= 2 else srgb_icc()
    path = tmp_path / f"icc.{ext}"
    write_image(path, smooth_pixels(6, 8, 1).repeat(channels, axis=2), icc_profile=icc)
    assert read_image(path).icc_profile == icc


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_large_icc_round_trip(tmp_path, ext):
    icc = big_icc(srgb_icc())  # JPEG splits it over several APP2 segments
    write_image(tmp_path / f"big.{ext}", smooth_pixels(4, 4, 3), icc_profile=icc)
    assert read_image(tmp_path / f"big.{ext}").icc_profile == icc


def test_gray_icc_is_a_real_profile():
    profile = ImageCms.ImageCmsProfile(BytesIO(gray_icc()))
    assert "gray" in ImageCms.getProfileDescription(profile)


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_icc_written_by_pillow_is_read(tmp_path, ext):
    icc = srgb_icc()
    path = tmp_path / f"pil.{ext}"
    Image.fromarray(smooth_pixels(5, 5, 3)).save(path, icc_profile=icc)
    assert read_image(path).icc_profile == icc


def test_icc_colour_space_must_match(tmp_path):
    with pytest.raises(ValueError, match="GRAY profile"):
        write_image(tmp_path / "g.png", smooth_pixels(3, 3, 1), icc_profile=srgb_icc())
    with pytest.raises(ValueError, match="RGB profile"):
        write_image(tmp_path / "c.png", smooth_pixels(3, 3, 3), icc_profile=gray_icc())
    with pytest.raises(ValueError, match="not an ICC profile"):
        write_image(tmp_path / "c.png", smooth_pixels(3, 3, 3), icc_profile=b"nonsense")
    with pytest.raises(TypeError, match="icc_profile must be bytes"):
        write_image(tmp_path / "c.png", smooth_pixels(3, 3, 3), icc_profile="sRGB")
    assert list(tmp_path.iterdir()) == []


# --- channel order and independent decoders --------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_files_from_opencv_come_back_rgb(tmp_path, ext):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    path = str(tmp_path / f"red.{ext}")
    assert cv2.imwrite(path, rgb[:, :, ::-1])  # OpenCV takes BGR; its TIFF default is LZW
    back = read_image(path).pixels
    assert back[..., 0].min() > 240
    assert back[..., 1:].max() < 15


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_lzw_tiff_from_opencv(tmp_path, channels):
    pixels = make_pixels((5, 6, channels), np.uint16)
    bgr = pixels if channels == 1 else pixels[:, :, [2, 1, 0, 3][:channels]]
    path = str(tmp_path / "lzw.tif")
    assert cv2.imwrite(path, np.ascontiguousarray(bgr))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.compression == 5  # LZW: the OpenCV path
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


def test_jpeg_compressed_tiff(tmp_path):
    pixels = smooth_pixels(16, 24, 3)
    Image.fromarray(pixels).save(tmp_path / "j.tif", compression="jpeg", quality=95)
    loaded = read_image(tmp_path / "j.tif")
    assert loaded.pixels.shape == pixels.shape
    assert np.abs(loaded.pixels.astype(np.float64) - pixels).mean() < JPEG_MAD_8BIT


@pytest.mark.parametrize("channels", [2, 4])
def test_8bit_lzw_tiff_with_alpha_is_not_premultiplied(tmp_path, channels):
    pixels = make_pixels((5, 6, channels), np.uint8)
    pixels[::2, :, -1] = 0  # transparent pixels with colour
    Image.fromarray(pixels).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif").pixels, pixels)


@pytest.mark.parametrize("channels", [1, 3])
def test_float_lzw_tiff_from_opencv(tmp_path, channels):
    pixels = make_pixels((5, 6, channels), np.float32)
    path = str(tmp_path / "f.tif")
    assert cv2.imwrite(path, pixels[:, :, ::-1].copy(), [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.compression == 5  # LZW: the OpenCV path
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_written_here_decodes_identically_in_pillow(tmp_path, channels):
    pixels = make_pixels((13, 7, channels), np.uint8, seed=channels)
    write_image(tmp_path / "p.png", pixels)
    with Image.open(tmp_path / "p.png") as image:
        assert image.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        np.testing.assert_array_equal(np.array(image).reshape(pixels.shape), pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_alpha_png_encoded_in_strips(tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(cio, "_PNG_STRIP_BYTES", 100)  # a few rows per strip
    pixels = make_pixels((23, 19, 2), dtype, seed=5)
    pixels[5:9] = pixels[4]  # repeated rows favour the Up filter, others Sub/Paeth
    write_image(tmp_path / "s.png", pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "s.png").pixels, pixels)


def test_16bit_gray_png_decodes_identically_in_pillow(tmp_path):
    pixels = make_pixels((9, 5, 1), np.uint16)
    write_image(tmp_path / "p16.png", pixels)
    with Image.open(tmp_path / "p16.png") as image:
        np.testing.assert_array_equal(np.array(image), pixels[:, :, 0])


def test_tiff_written_here_opens_in_pillow(tmp_path):
    pixels = make_pixels((6, 9, 3), np.uint8)
    write_image(tmp_path / "t.tif", pixels)
    with Image.open(tmp_path / "t.tif") as image:
        np.testing.assert_array_equal(np.array(image), pixels)


# --- conversions on read ---------------------------------------------------------------------


def test_palette_png_becomes_rgb_or_rgba(tmp_path):
    image = Image.fromarray(smooth_pixels(6, 6, 3)).convert("P")
    image.save(tmp_path / "p.png")
    image.save(tmp_path / "pt.png", transparency=0)
    plain, transparent = read_image(tmp_path / "p.png"), read_image(tmp_path / "pt.png")
    assert plain.pixels.shape == (6, 6, 3)
    assert plain.pixels.dtype == np.uint8
    np.testing.assert_array_equal(plain.pixels, np.array(image.convert("RGB")))
    assert transparent.pixels.shape == (6, 6, 4)
    with Image.open(tmp_path / "pt.png") as reference:
        np.testing.assert_array_equal(transparent.pixels, np.array(reference.convert("RGBA")))


def test_one_bit_png_becomes_8bit_gray(tmp_path):
    bits = np.random.default_rng(1).random((5, 9)) > 0.5
    Image.fromarray(bits).save(tmp_path / "b.png")
    loaded = read_image(tmp_path / "b.png")
    assert loaded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.pixels[:, :, 0], bits * np.uint8(255))


def test_gray_alpha_png_from_pillow(tmp_path):
    la = make_pixels((4, 7, 2), np.uint8)
    Image.fromarray(la).save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png").pixels, la)


def test_gray_colour_key_png_becomes_alpha(tmp_path):
    gray = smooth_pixels(4, 6, 1)[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "k.png", transparency=int(gray[0, 0]))
    back = read_image(tmp_path / "k.png").pixels
    assert back.shape == (4, 6, 2)
    np.testing.assert_array_equal(back[:, :, 0], gray)
    np.testing.assert_array_equal(back[:, :, 1], np.where(gray == gray[0, 0], 0, 255))


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_cmyk_becomes_rgb_and_drops_its_profile(tmp_path, ext):
    rgb = smooth_pixels(8, 8, 3)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    fake_cmyk_profile = bytearray(srgb_icc())
    fake_cmyk_profile[16:20] = b"CMYK"
    cmyk.save(tmp_path / f"c.{ext}", icc_profile=bytes(fake_cmyk_profile))
    loaded = read_image(tmp_path / f"c.{ext}")
    assert loaded.pixels.shape == (8, 8, 3)
    assert loaded.pixels.dtype == np.uint8
    assert loaded.icc_profile is None
    tolerance = 8 if ext == "jpg" else 0
    assert np.abs(loaded.pixels.astype(int) - rgb).mean() <= tolerance


def test_palette_and_bilevel_tiff(tmp_path):
    palette = Image.fromarray(smooth_pixels(5, 5, 3)).convert("P")
    palette.save(tmp_path / "p.tif")
    np.testing.assert_array_equal(
        read_image(tmp_path / "p.tif").pixels, np.array(palette.convert("RGB"))
    )
    bits = np.random.default_rng(2).random((5, 9)) > 0.5
    Image.fromarray(bits).save(tmp_path / "b.tif")
    np.testing.assert_array_equal(
        read_image(tmp_path / "b.tif").pixels[:, :, 0], bits * np.uint8(255)
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_tiffs_become_float32(tmp_path, dtype):
    pixels = make_pixels((4, 5, 3), np.float32)
    tifffile.imwrite(tmp_path / "f.tif", pixels.astype(dtype), photometric="rgb")
    loaded = read_image(tmp_path / "f.tif")
    assert loaded.pixels.dtype == np.float32
    np.testing.assert_allclose(loaded.pixels, pixels, rtol=1e-3, atol=1e-3)


def test_planar_tiff_and_first_page_only(tmp_path):
    pixels = make_pixels((5, 6, 3), np.float32)
    with tifffile.TiffWriter(tmp_path / "planar.tif") as tif:
        tif.write(np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate")
        tif.write(np.zeros((2, 2), np.uint8))  # second page, ignored
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif").pixels, pixels)


def test_unsupported_tiff_layout(tmp_path):
    tifffile.imwrite(tmp_path / "i32.tif", np.zeros((3, 3), np.int32))
    with pytest.raises(ImageReadError, match=r"i32\.tif.*not supported"):
        read_image(tmp_path / "i32.tif")


def test_exif_orientation_is_not_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(smooth_pixels(4, 10, 3)).save(tmp_path / "o.jpg", exif=exif)
    assert read_image(tmp_path / "o.jpg").pixels.shape == (4, 10, 3)


# --- read errors -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match=r"nope\.png.*no such file") as info:
        read_image(path)
    assert isinstance(info.value, OSError)


def test_folder_and_empty_file(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png.*empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_unknown_format_lists_supported_ones(tmp_path):
    Image.new("RGB", (3, 3)).save(tmp_path / "x.bmp")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    for name in ("x.bmp", "junk.png"):
        with pytest.raises(ImageReadError, match=rf"{name}.*PNG.*TIFF.*JPEG"):
            read_image(tmp_path / name)


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_file(tmp_path, ext, keep):
    good = tmp_path / f"good.{ext}"
    write_image(good, make_pixels((32, 32, 3), np.uint8))
    data = good.read_bytes()
    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageReadError, match=rf"bad\.{ext}"):
        read_image(bad)


@pytest.mark.parametrize(
    ("magic", "ext"),
    [(b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tif"), (b"\xff\xd8\xff\xe0", "jpg")],
)
def test_corrupt_after_signature(tmp_path, magic, ext):
    bad = tmp_path / f"corrupt.{ext}"
    bad.write_bytes(magic + bytes(range(256)) * 4)
    with pytest.raises(ImageReadError, match=rf"corrupt\.{ext}"):
        read_image(bad)


def test_too_many_pixels(tmp_path, monkeypatch):
    for ext in ("png", "tif", "jpg"):
        write_image(tmp_path / f"m.{ext}", smooth_pixels(4, 5, 3))
    monkeypatch.setattr(cio, "MAX_PIXELS", 19)
    for ext in ("png", "tif", "jpg"):
        with pytest.raises(ImageReadError, match=r"5 x 4 = 20 pixels.*limit of 19"):
            read_image(tmp_path / f"m.{ext}")
    with pytest.raises(ValueError, match="limit of 19"):
        write_image(tmp_path / "n.png", smooth_pixels(4, 5, 3))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` 8-bit gray but has hardly any data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
        + chunk(b"IEND", b"")
    )


def jpeg_with_header(width: int, height: int) -> bytes:
    """The markers of a baseline JPEG declaring ``width`` x ``height``, with no scan data."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0, 0, 63, 0])
    return (
        b"\xff\xd8"
        + b"\xff\xc0"
        + struct.pack(">H", 2 + len(sof))
        + sof
        + b"\xff\xda"
        + struct.pack(">H", 2 + len(sos))
        + sos
        + b"\xff\xd9"
    )


@pytest.mark.parametrize(("ext", "make"), [("png", png_with_header), ("jpg", jpeg_with_header)])
def test_huge_header_is_refused_before_decoding(tmp_path, ext, make):
    path = tmp_path / f"huge.{ext}"
    path.write_bytes(make(40_000, 30_000))  # 1.2e9 pixels: tiny file, huge image
    with pytest.raises(ImageReadError, match=r"40000 x 30000 = 1,200,000,000 pixels"):
        read_image(path)


def test_pillow_bomb_limit_does_not_apply(tmp_path):
    # 200 million pixels is over Pillow's own limit but under MAX_PIXELS: the file must fail
    # because its data is missing, not with Pillow's DecompressionBombError or warning.
    path = tmp_path / "big.png"
    path.write_bytes(png_with_header(20_000, 10_000))
    with pytest.raises(ImageReadError, match=r"big\.png.*truncated or damaged") as info:
        read_image(path)
    assert not isinstance(info.value.__cause__, Image.DecompressionBombError)


def test_tiff_without_tifffile(tmp_path, monkeypatch):
    write_image(tmp_path / "t.tif", smooth_pixels(2, 2, 3))
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(MissingDependencyError, match="pip install tifffile"):
        read_image(tmp_path / "t.tif")
    with pytest.raises(MissingDependencyError, match="pip install tifffile"):
        write_image(tmp_path / "u.tif", smooth_pixels(2, 2, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tif"]


# --- what each format cannot hold ------------------------------------------------------------


def test_float_to_png_suggests_tiff(tmp_path):
    with pytest.raises(ValueError, match=r"PNG cannot store float32.*\.tif"):
        write_image(tmp_path / "f.png", make_pixels((3, 3, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_deep_data_to_jpeg_is_refused(tmp_path, dtype):
    with pytest.raises(ValueError, match=r"JPEG stores only 8 bits.*\.png.*\.tif"):
        write_image(tmp_path / "d.jpg", make_pixels((3, 3, 3), dtype))


@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_to_jpeg_is_refused(tmp_path, channels):
    with pytest.raises(ValueError, match="JPEG has no alpha"):
        write_image(tmp_path / "a.jpg", make_pixels((3, 3, channels), np.uint8))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_floats_are_refused(tmp_path, dtype):
    with pytest.raises(ValueError, match=r"astype\(np.float32\)"):
        write_image(tmp_path / "f.tif", np.zeros((2, 2), dtype))


def test_bad_pixels(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        write_image(tmp_path / "i.png", np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "n.tif", np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty"):
        write_image(tmp_path / "e.png", np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="C in 1..4"):
        write_image(tmp_path / "c.png", np.zeros((2, 2, 5), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.bmp", "out", "out.png.txt"])
def test_unknown_extension_lists_supported(tmp_path, name):
    with pytest.raises(ValueError, match=r"\.png.*\.tif.*\.jpg"):
        write_image(tmp_path / name, smooth_pixels(2, 2, 3))


@pytest.mark.parametrize("name", ["UP.PNG", "x.TIFF", "y.Jpeg"])
def test_extension_case_is_ignored(tmp_path, name):
    write_image(tmp_path / name, smooth_pixels(2, 2, 3))
    assert read_image(tmp_path / name).pixels.shape == (2, 2, 3)


@pytest.mark.parametrize("quality", [0, 101])
def test_jpeg_quality_range(tmp_path, quality):
    with pytest.raises(ValueError, match="jpeg_quality"):
        write_image(tmp_path / "q.jpg", smooth_pixels(2, 2, 3), jpeg_quality=quality)


def test_jpeg_quality_changes_size(tmp_path):
    pixels = make_pixels((64, 64, 3), np.uint8)
    write_image(tmp_path / "lo.jpg", pixels, jpeg_quality=20)
    write_image(tmp_path / "hi.jpg", pixels, jpeg_quality=100)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


# --- overwrite and protection ----------------------------------------------------------------


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "out.png"
    write_image(path, smooth_pixels(3, 3, 3))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"out\.png.*already exists.*--overwrite"):
        write_image(path, smooth_pixels(3, 3, 1))
    assert path.read_bytes() == before
    write_image(path, smooth_pixels(3, 3, 1), overwrite=True)
    assert read_image(path).pixels.shape == (3, 3, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_refuses_to_replace_a_protected_input(tmp_path):
    (tmp_path / "sub").mkdir()
    source = tmp_path / "in.tif"
    write_image(source, make_pixels((3, 3, 3), np.uint16))
    before = source.read_bytes()
    os.symlink(source, tmp_path / "sub" / "link.tif")
    spellings = [source, str(tmp_path / "sub" / ".." / "in.tif"), tmp_path / "sub" / "link.tif"]
    for target in spellings:
        with pytest.raises(FileExistsError, match="input file.*replace it"):
            write_image(target, make_pixels((3, 3, 3), np.uint16, seed=9), protect=[source])
    with pytest.raises(FileExistsError, match="input file"):  # a single path works too
        write_image(source, make_pixels((3, 3, 3), np.uint16), protect=str(source))
    assert source.read_bytes() == before
    write_image(source, make_pixels((3, 3, 3), np.uint16, seed=9), protect=[source], overwrite=True)
    np.testing.assert_array_equal(
        read_image(source).pixels, make_pixels((3, 3, 3), np.uint16, seed=9)
    )


def test_writing_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.png"
    write_image(real, smooth_pixels(2, 2, 3))
    link = tmp_path / "link.png"
    link.symlink_to(real)
    write_image(link, smooth_pixels(2, 2, 1), overwrite=True)
    assert link.is_symlink()
    assert read_image(real).pixels.shape == (2, 2, 1)


def test_missing_folder_and_folder_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_image(tmp_path / "no" / "x.png", smooth_pixels(2, 2, 3))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(IsADirectoryError):
        write_image(tmp_path / "dir.png", smooth_pixels(2, 2, 3), overwrite=True)


# --- atomic writing --------------------------------------------------------------------------


def test_unsupported_dtype_leaves_target_untouched(tmp_path):
    path = tmp_path / "keep.png"
    write_image(path, smooth_pixels(3, 3, 3))
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="TIFF|tif"):
        write_image(path, make_pixels((3, 3, 3), np.float32), overwrite=True)
    assert snapshot(tmp_path) == before


def test_failing_encoder_leaves_target_untouched(tmp_path, monkeypatch):
    path = tmp_path / "keep.tif"
    write_image(path, smooth_pixels(3, 3, 3))
    before = snapshot(tmp_path)

    def broken(fh, arr, icc, quality):
        fh.write(b"II*\x00 half a file")
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setitem(cio._WRITERS, "tiff", broken)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, smooth_pixels(3, 3, 1), overwrite=True)
    assert snapshot(tmp_path) == before


def test_failed_verification_leaves_target_untouched(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    write_image(path, smooth_pixels(3, 3, 3))
    before = snapshot(tmp_path)
    real_writer = cio._WRITERS["png"]

    def lossy(fh, arr, icc, quality):
        real_writer(fh, arr // 2, icc, quality)

    monkeypatch.setitem(cio._WRITERS, "png", lossy)
    with pytest.raises(OSError, match="failed verification.*different pixel values"):
        write_image(path, make_pixels((3, 3, 3), np.uint8), overwrite=True)
    assert snapshot(tmp_path) == before

    def garbage(fh, arr, icc, quality):
        fh.write(b"\x89PNG\r\n\x1a\nnot really")

    monkeypatch.setitem(cio._WRITERS, "png", garbage)
    with pytest.raises(OSError, match="could not be read back"):
        write_image(tmp_path / "new.png", smooth_pixels(3, 3, 3))
    assert snapshot(tmp_path) == before


def test_temp_file_is_hidden_next_to_target_with_same_extension(tmp_path, monkeypatch):
    seen = []
    real = cio._create_temp

    def spy(dest):
        tmp = real(dest)
        seen.append(tmp)
        return tmp

    monkeypatch.setattr(cio, "_create_temp", spy)
    write_image(tmp_path / "photo.TIFF", smooth_pixels(2, 2, 3))
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith(".")
    assert tmp.endswith(".TIFF")
    assert not os.path.exists(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.TIFF"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "m.png", smooth_pixels(2, 2, 3))
    finally:
        os.umask(old)
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o644


# --- small API pieces ------------------------------------------------------------------------


def test_output_path_for():
    folder = os.path.join("a", "b")
    assert output_path_for(os.path.join(folder, "x.JPG")) == os.path.join(folder, "x-deblurred.JPG")
    assert output_path_for("x.jpg", ext="tif") == "x-deblurred.tif"
    assert output_path_for("x.jpg", suffix="_sharp", ext=".png") == "x_sharp.png"
    assert output_path_for("my.photo.tiff") == "my.photo-deblurred.tiff"
    with pytest.raises(ValueError, match=r"\.png"):
        output_path_for("x.bmp")
    with pytest.raises(ValueError, match="path separator"):
        output_path_for("x.png", suffix=os.sep + "y")


def test_loaded_image_is_frozen_and_has_a_short_repr(tmp_path):
    write_image(tmp_path / "r.png", smooth_pixels(2, 3, 3), icc_profile=srgb_icc())
    loaded = read_image(tmp_path / "r.png")
    assert isinstance(loaded, LoadedImage)
    text = repr(loaded)
    assert "shape=(2, 3, 3)" in text
    assert "bytes>" in text
    assert len(text) < 200
    with pytest.raises(AttributeError):
        loaded.format = "tiff"  # type: ignore[misc]


def test_public_api():
    assert set(cio.__all__) >= {
        "LoadedImage",
        "read_image",
        "write_image",
        "output_path_for",
        "MAX_PIXELS",
    }
    assert cio.MAX_PIXELS == 1_000_000_000
