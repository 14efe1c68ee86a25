"""Reading and writing image files: the only module in ``core`` that touches the filesystem.

Everything else in ``core`` takes and returns NumPy arrays; this module is the edge used by the
command line and the tests. It owns:

* decoding PNG, TIFF and JPEG files into (H, W, C) arrays in the file's own dtype (uint8,
  uint16 or float32), RGB order, alpha last, together with the embedded ICC profile;
* encoding such arrays back, refusing any dtype or channel layout the format cannot hold
  (depth is never truncated silently);
* the safety rules for writing: never replace an existing file or an input file unless asked,
  and replace the target atomically with a file that has been read back and checked.

Supported files
---------------
=====  ==================================  ======================================
       read                                write
=====  ==================================  ======================================
PNG    1/2/4/8/16-bit gray, gray+alpha,    8/16-bit gray, gray+alpha, RGB, RGBA
       RGB, RGBA, palette
TIFF   8/16-bit, float16/32/64 gray,       8/16-bit and float32 gray, gray+alpha,
       gray+alpha, RGB, RGBA; palette,     RGB, RGBA (deflate compressed)
       1-bit, CMYK via Pillow
JPEG   8-bit gray, RGB, CMYK               8-bit gray, RGB
=====  ==================================  ======================================

Libraries
---------
* PNG: headers are parsed here and ICC profiles read by Pillow; pixels are decoded by OpenCV
  (fast, keeps 16 bits) and encoded by OpenCV, with the ``iCCP`` chunk inserted here. Gray +
  alpha, which neither OpenCV nor (at 16 bits) Pillow can write, is encoded here.
* JPEG: Pillow, which reports truncated data instead of padding it and embeds large ICC
  profiles over several APP2 segments.
* TIFF: ``tifffile`` for headers, ICC profiles, writing and decoding; LZW/JPEG-compressed
  files (which it cannot decode without ``imagecodecs``) go through Pillow (8-bit) or OpenCV.
* Palette, 1-bit and CMYK images are converted by Pillow. OpenCV's BGR order never leaves
  this module.
"""

# TIFF support uses the `tifffile` package (a dependency: pure Python, needs only numpy). It is
# imported lazily, so PNG and JPEG keep working (and TIFF raises MissingDependencyError) without it.

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from .dtype import as_hwc, check_image
from .errors import ImageReadError, MissingDependencyError

if TYPE_CHECKING:
    from .recipes import Recipe

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "LoadedImage",
    "read_image",
    "write_image",
    "output_path_for",
    "read_psf",
    "read_recipe",
]

#: Largest image (width x height) that :func:`read_image` decodes or :func:`write_image`
#: writes. Checked against the header before any pixel is decoded.
MAX_PIXELS = 1_000_000_000

#: File extensions (lower case) and the format each one selects.
SUPPORTED_EXTENSIONS = {
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
}

_SUPPORTED_TEXT = "PNG (.png), TIFF (.tif, .tiff) and JPEG (.jpg, .jpeg)"
_ICC_TAG = 34675  # TIFF InterColorProfile
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Deflate level for PNG and TIFF: on photographs, higher levels are several times slower and
# save a few percent at most (filtered sensor noise barely compresses).
_DEFLATE_LEVEL = 1
_PNG_STRIP_BYTES = 1 << 22  # rows are filtered and compressed in strips of about 4 MiB
_JPEG_FULL_CHROMA_QUALITY = 90  # at this quality and above, JPEGs are written 4:4:4
# Exceptions that decoders raise on damaged files; anything else (MemoryError, bugs) propagates.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    zlib.error,
    cv2.error,
    IndexError,
    KeyError,
)


@dataclass(frozen=True)
class LoadedImage:
    """An image file decoded by :func:`read_image`.

    Attributes
    ----------
    pixels : ndarray, uint8 | uint16 | float32, (H, W, C)
        C is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); RGB order, alpha last, values as
        stored in the file (integers are not scaled; use :func:`core.dtype.to_float32`).
    icc_profile : bytes or None
        The embedded ICC profile, byte for byte, or None when the file has none.
    format : {"png", "tiff", "jpeg"}
        The format found from the file's contents (not its name).
    path : str
        The path that was read, as given.
    """

    pixels: np.ndarray
    icc_profile: bytes | None
    format: str
    path: str

    def __repr__(self) -> str:
        icc = "None" if self.icc_profile is None else f"<{len(self.icc_profile)} bytes>"
        return (
            f"LoadedImage(path={self.path!r}, format={self.format!r}, "
            f"shape={self.pixels.shape}, dtype={self.pixels.dtype}, icc_profile={icc})"
        )


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read a PNG, TIFF or JPEG file, keeping its bit depth, alpha and ICC profile.

    Parameters
    ----------
    path : str or path-like
        The file to read. Its format is recognised from its first bytes, not its extension.

    Returns
    -------
    LoadedImage
        ``pixels`` is (H, W, C) uint8, uint16 or float32 in RGB order with alpha last, as
        stored in the file.

    Raises
    ------
    ImageReadError
        If the file is missing, is a folder, is empty, cannot be opened, is not a PNG, TIFF or
        JPEG file, is damaged, has a layout that cannot be converted, or declares more than
        :data:`MAX_PIXELS` pixels (checked from the header, before decoding). The message
        names the path, the problem and what to do. ``ImageReadError`` is an ``OSError``.
    MissingDependencyError
        For a TIFF file when ``tifffile`` is not installed.

    Notes
    -----
    * Conversions: palette images become 8-bit RGB, or RGBA when the palette has
      transparency; 1-bit images become 8-bit gray (0 or 255); CMYK images become 8-bit RGB
      by Pillow's simple formula, without colour management, and their (CMYK) ICC profile is
      dropped because it no longer describes the pixels. float16 and float64 TIFFs become
      float32. PNG colour-key transparency (``tRNS``) becomes an alpha channel, except for
      1-bit and 16-bit gray PNGs, where it is ignored.
    * EXIF orientation is **not** applied: pixels come back as stored, so a portrait photo
      from a camera may come back landscape. Writing them back keeps them as stored, too.
    * Only the first image of a multi-page TIFF is read. Alpha is returned as stored; TIFFs
      with associated (premultiplied) alpha are not un-premultiplied.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     name = os.path.join(folder, "tiny.png")
    ...     write_image(name, np.full((2, 3, 3), 40000, np.uint16))
    ...     image = read_image(name)
    >>> image.format, image.pixels.shape, image.pixels.dtype, int(image.pixels.max())
    ('png', (2, 3, 3), dtype('uint16'), 40000)
    """
    name = os.fspath(path)
    head = _open_head(name)
    fmt = _sniff_format(head)
    if fmt is None:
        msg = (
            f"cannot read {name!r}: it is not a PNG, TIFF or JPEG file (it starts with "
            f"{head[:8]!r}); supported formats are {_SUPPORTED_TEXT}. Convert it to one of "
            "them first, e.g. with GIMP's File > Export As"
        )
        raise ImageReadError(msg)
    try:
        pixels, icc = _READERS[fmt](name, head)
    except ImageReadError:
        raise
    except _DECODE_ERRORS as exc:
        msg = (
            f"cannot read {name!r} as {fmt.upper()}: {exc}. The file is probably truncated "
            "or damaged; open it in another program to check, and export it again"
        )
        raise ImageReadError(msg) from exc
    return LoadedImage(pixels=pixels, icc_profile=icc, format=fmt, path=name)


def _open_head(name: str) -> bytes:
    """Check that ``name`` is a readable, non-empty file and return its first 64 bytes."""
    if not os.path.lexists(name):
        msg = f"cannot read {name!r}: no such file; check the spelling and the folder"
        raise ImageReadError(msg)
    if os.path.isdir(name):
        msg = f"cannot read {name!r}: it is a folder, not an image file; name a file inside it"
        raise ImageReadError(msg)
    try:
        with open(name, "rb") as fh:
            head = fh.read(64)
    except PermissionError as exc:
        msg = f"cannot read {name!r}: permission denied; check the file's permissions"
        raise ImageReadError(msg) from exc
    except OSError as exc:
        msg = f"cannot read {name!r}: {exc.strerror or exc}; check that the file is accessible"
        raise ImageReadError(msg) from exc
    if not head:
        msg = (
            f"cannot read {name!r}: the file is empty (0 bytes), probably from an interrupted "
            "copy or save; export the image again"
        )
        raise ImageReadError(msg)
    return head


def _sniff_format(head: bytes) -> str | None:
    """Recognise PNG, TIFF (classic and BigTIFF) and JPEG from their signatures."""
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


def _check_pixel_count(name: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        msg = f"cannot read {name!r}: its header declares {width} x {height} pixels (no image)"
        raise ImageReadError(msg)
    if width * height > MAX_PIXELS:
        msg = (
            f"refusing to read {name!r}: its header declares {width} x {height} = "
            f"{width * height:,} pixels, more than the limit of {MAX_PIXELS:,}; crop or "
            "downscale it in another program first (or raise core.io.MAX_PIXELS if this "
            "machine has the memory)"
        )
        raise ImageReadError(msg)


def _cv2_decode(name: str) -> np.ndarray | None:
    """Decode with OpenCV as stored (IMREAD_UNCHANGED: no EXIF rotation); None on failure."""
    data = np.fromfile(name, dtype=np.uint8)  # unlike cv2.imread, works with any path on Windows
    try:
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _bgr_to_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) from OpenCV to RGB order (copies 3- and 4-channel data)."""
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def _rgb_to_bgr(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) RGB(A) to the BGR(A) order OpenCV writes (gray passes through)."""
    arr = np.ascontiguousarray(arr)
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    return arr


def _bgr_to_gray(arr: np.ndarray) -> np.ndarray:
    """Undo OpenCV's expansion of gray (+ alpha) to BGR(A): keep B (= G = R) and alpha."""
    keep = [0, 3] if arr.shape[2] == 4 else [0]
    return np.ascontiguousarray(arr[:, :, keep])


# Pillow mode -> mode returned. Associated-alpha modes ("La", "RGBa") stay premultiplied.
_PILLOW_TARGET = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "La",
    "P": "RGB",
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBa",
    "CMYK": "RGB",
    "YCbCr": "RGB",
}


def _pillow_pixels(image: Image.Image, name: str) -> tuple[np.ndarray, bool]:
    """Decode a Pillow image to an (H, W, C) uint8 array, converting palette, 1-bit and CMYK.

    Returns the array and whether the ICC profile still applies (False after a CMYK -> RGB
    conversion).
    """
    mode = image.mode
    target = _PILLOW_TARGET.get(mode)
    if target is None:
        msg = (
            f"cannot read {name!r}: pixel mode {mode!r} is not supported; save it as 8- or "
            "16-bit gray or RGB (with or without alpha), or as float32 TIFF"
        )
        raise ImageReadError(msg)
    if mode in ("L", "P") and "transparency" in image.info:
        target += "A"
    converted = image if target == mode else image.convert(target)
    return as_hwc(np.array(converted)), mode != "CMYK"


def _read_png(name: str, head: bytes) -> tuple[np.ndarray, bytes | None]:
    if len(head) < 33 or head[12:16] != b"IHDR":
        msg = f"cannot read {name!r}: its PNG header (IHDR chunk) is missing or truncated"
        raise ImageReadError(msg)
    width, height, depth, colour_type = struct.unpack(">IIBB", head[16:26])
    _check_pixel_count(name, width, height)
    # The plug-in class reads the chunks before the pixel data (ICC, tRNS) without decoding
    # and without Image.open's decompression-bomb limit (MAX_PIXELS is ours).
    with PngImagePlugin.PngImageFile(name) as image:
        icc = image.info.get("icc_profile") or None
        if image.mode == "L" and "transparency" in image.info:
            # OpenCV drops gray colour-key transparency; Pillow turns it into alpha.
            return _pillow_pixels(image, name)[0], icc
    arr = _cv2_decode(name)
    if arr is None:
        msg = (
            f"cannot read {name!r}: the PNG pixel data could not be decoded; the file is "
            "probably truncated or damaged - export it again"
        )
        raise ImageReadError(msg)
    arr = as_hwc(arr)
    if colour_type in (0, 4) and arr.shape[2] >= 3:
        arr = _bgr_to_gray(arr)
    else:
        arr = _bgr_to_rgb(arr)
    expected = np.uint16 if depth == 16 else np.uint8
    if arr.dtype != expected:
        msg = f"cannot read {name!r}: decoded {arr.dtype} data from a {depth}-bit PNG"
        raise ImageReadError(msg)
    return arr, icc


def _read_jpeg(name: str, head: bytes) -> tuple[np.ndarray, bytes | None]:
    # Pillow, unlike OpenCV, reports truncated JPEG data as an error instead of padding it.
    with JpegImagePlugin.JpegImageFile(name) as image:
        _check_pixel_count(name, *image.size)
        icc = image.info.get("icc_profile") or None
        image.load()
        arr, keep_icc = _pillow_pixels(image, name)
    return arr, icc if keep_icc else None


def _require_tifffile() -> Any:
    try:
        import tifffile
    except ImportError as exc:
        msg = "reading and writing TIFF files needs the tifffile package: pip install tifffile"
        raise MissingDependencyError(msg) from exc
    return tifffile


def _tiff_native_layout(page: Any) -> tuple[np.dtype, bool] | None:
    """(dtype, is_gray) for the sample layouts decoded as they are, else None."""
    tifffile = _require_tifffile()
    photometric = page.photometric
    spp = page.samplesperpixel
    if photometric == tifffile.PHOTOMETRIC.MINISBLACK and spp in (1, 2):
        gray = True
    elif photometric in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR) and spp in (3, 4):
        gray = False
    else:
        return None
    bits, kind = page.bitspersample, page.sampleformat
    if kind == tifffile.SAMPLEFORMAT.UINT and bits in (8, 16):
        return np.dtype(f"uint{bits}"), gray
    if kind == tifffile.SAMPLEFORMAT.IEEEFP and bits in (16, 32, 64):
        return np.dtype(f"float{bits}"), gray
    return None


def _read_tiff(name: str, head: bytes) -> tuple[np.ndarray, bytes | None]:
    tifffile = _require_tifffile()
    with tifffile.TiffFile(name) as tif:
        if len(tif.pages) == 0:
            msg = f"cannot read {name!r}: the TIFF file contains no image (or is truncated)"
            raise ImageReadError(msg)
        page = tif.pages.first
        width, height = int(page.imagewidth), int(page.imagelength)
        _check_pixel_count(name, width, height)
        icc = page.tags.valueof(_ICC_TAG)
        icc = bytes(icc) if icc else None
        layout = _tiff_native_layout(page)
        if layout is None:
            photometric = getattr(page.photometric, "name", page.photometric)
            kind = getattr(page.sampleformat, "name", page.sampleformat)
            describe = (
                f"photometric {str(photometric).lower()}, {page.samplesperpixel} "
                f"samples of {page.bitspersample}-bit {str(kind).lower()}"
            )
            with TiffImagePlugin.TiffImageFile(name) as image:
                arr, keep_icc = _pillow_pixels_or_explain(image, name, describe)
            return arr, icc if keep_icc else None
        dtype, gray = layout
        want = (height, width, int(page.samplesperpixel))
        arr = _decode_tiff_page(name, page, dtype, gray)
        if arr is None or arr.shape != want or arr.dtype != dtype:
            compression = getattr(page.compression, "name", page.compression)
            msg = (
                f"cannot read {name!r}: its {str(compression).lower()}-compressed "
                f"{page.bitspersample}-bit TIFF data could not be decoded as {want[2]} "
                "samples; install imagecodecs (pip install imagecodecs), or save it again "
                "with deflate/ZIP or no compression"
            )
            raise ImageReadError(msg)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    return arr, icc


def _decode_tiff_page(name: str, page: Any, dtype: np.dtype, gray: bool) -> np.ndarray | None:
    """Decode a TIFF page with a native layout to (H, W, C) RGB order, or None.

    tifffile decodes every sample layout exactly, but without the optional imagecodecs
    package only some compressions (none, deflate, packbits, ...). For the others (LZW, JPEG),
    8-bit data goes through Pillow, because OpenCV reads it through libtiff's RGBA interface,
    which premultiplies alpha; 16-bit and float data go through OpenCV. The caller checks the
    shape and dtype of the result.
    """
    tifffile = _require_tifffile()
    codecs = tifffile.TIFF
    if page.compression in codecs.DECOMPRESSORS and page.predictor in codecs.UNPREDICTORS:
        arr = page.asarray()
        if "S" in page.axes:
            arr = np.moveaxis(arr, page.axes.index("S"), -1)
        return np.ascontiguousarray(as_hwc(arr))
    if dtype == np.uint8:
        with TiffImagePlugin.TiffImageFile(name) as image:
            return _pillow_pixels(image, name)[0]
    arr = _cv2_decode(name)
    if arr is None:
        return None
    arr = as_hwc(arr)
    return arr if gray else _bgr_to_rgb(arr)


def _pillow_pixels_or_explain(
    image: Image.Image, name: str, describe: str
) -> tuple[np.ndarray, bool]:
    try:
        return _pillow_pixels(image, name)
    except ImageReadError as exc:
        msg = (
            f"cannot read {name!r}: its TIFF layout ({describe}) is not supported; save it as "
            "8/16-bit or float32 gray or RGB (with or without alpha)"
        )
        raise ImageReadError(msg) from exc


_READERS: dict[str, Callable[[str, bytes], tuple[np.ndarray, bytes | None]]] = {
    "png": _read_png,
    "tiff": _read_tiff,
    "jpeg": _read_jpeg,
}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
    jpeg_quality: int = 95,
) -> None:
    """Write pixels to a PNG, TIFF or JPEG file, atomically and without losing depth.

    Parameters
    ----------
    path : str or path-like
        The file to write. Its extension picks the format: ``.png``, ``.tif``/``.tiff`` or
        ``.jpg``/``.jpeg`` (any case). If it is a symbolic link, the file it points to is
        replaced and the link kept.
    pixels : ndarray, uint8 | uint16 | float32, (H, W) or (H, W, C)
        C is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); RGB order, alpha last. Written as
        they are: integers are not rescaled and float32 is not clipped. Not modified.
    icc_profile : bytes, optional
        ICC profile to embed, e.g. ``LoadedImage.icc_profile`` of the input. Its colour space
        must match the pixels (GRAY for 1-2 channels, RGB for 3-4). Default: none.
    overwrite : bool, default False
        Allow replacing an existing file, including one listed in ``protect``.
    protect : iterable of paths, default ()
        Files that must not be replaced unless ``overwrite`` is True, typically the inputs.
        Compared by identity (``os.path.samefile``), so other spellings and links count.
    jpeg_quality : int, default 95
        JPEG quality, 1 (smallest) to 100 (best). At 90 and above, colour is stored at full
        resolution (4:4:4), below at half resolution (4:2:0). Ignored for PNG and TIFF.

    Raises
    ------
    ValueError
        For an unknown extension, for data the format cannot hold (uint16 or float in a
        JPEG, float in a PNG, alpha in a JPEG, float16/float64 anywhere), for non-finite
        float values, an empty image, more than :data:`MAX_PIXELS` pixels, a mismatching or
        invalid ICC profile, or a quality outside 1..100. Nothing is written.
    TypeError
        For pixels that are not an array of a supported dtype.
    FileExistsError
        If the target exists and ``overwrite`` is False, or if it is one of the ``protect``
        files and ``overwrite`` is False.
    OSError
        If writing fails or the file read back differs from ``pixels``. The temporary file is
        removed and an existing target is left untouched.
    MissingDependencyError
        For a TIFF target when ``tifffile`` is not installed.

    Notes
    -----
    The image is written to a hidden temporary file in the target's folder
    (``.<name>.<random>.tmp<ext>``), flushed to disk (``fsync``), read back and compared with
    ``pixels`` (shape, dtype, ICC profile, and every value for PNG and TIFF), and only then
    moved onto the target in one step (``os.replace``; without ``overwrite``, by a hard link
    that fails if the target has appeared meanwhile).

    PNG and TIFF are lossless, deflate-compressed at a fast level (TIFF with the horizontal
    predictor for integer data). Metadata other than the ICC profile (EXIF, XMP, resolution)
    is not written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     name = os.path.join(folder, "out.tif")
    ...     write_image(name, np.zeros((4, 5, 4), np.float32))
    ...     write_image(name, np.ones((4, 5), np.float32), overwrite=True)
    ...     read_image(name).pixels.shape
    (4, 5, 1)
    """
    name = os.fspath(path)
    fmt = _format_for_path(name)
    arr = _prepare_pixels(pixels, fmt, name)
    icc = _check_icc(icc_profile, arr.shape[2])
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, (int, np.integer)):
        msg = f"jpeg_quality must be an integer from 1 to 100, got {jpeg_quality!r}"
        raise TypeError(msg)
    if not 1 <= jpeg_quality <= 100:
        msg = f"jpeg_quality must be from 1 (smallest) to 100 (best), got {jpeg_quality}"
        raise ValueError(msg)

    dest = os.path.realpath(name) if os.path.islink(name) else name
    _check_target(name, dest, overwrite, protect)

    tmp = _create_temp(dest)
    try:
        with open(tmp, "wb") as fh:
            _WRITERS[fmt](fh, arr, icc, int(jpeg_quality))
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.exists(dest):
            with contextlib.suppress(OSError):  # best effort: keep the replaced file's mode
                shutil.copymode(dest, tmp)
        _verify(tmp, name, arr, fmt, icc)
        _publish(tmp, dest, name, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_folder(os.path.dirname(dest) or ".")


def output_path_for(
    input_path: str | os.PathLike[str], suffix: str = "-deblurred", ext: str | None = None
) -> str:
    """Name an output file next to its input: same folder, name + ``suffix`` + extension.

    Parameters
    ----------
    input_path : str or path-like
        The input file (it need not exist).
    suffix : str, default "-deblurred"
        Appended to the file name before the extension; must not contain a path separator.
    ext : str, optional
        Output extension, with or without the dot (``".tif"`` or ``"tif"``). Default: the
        input's own extension. Must be one of :data:`SUPPORTED_EXTENSIONS`.

    Returns
    -------
    str
        The output path. Nothing is checked on disk.

    Raises
    ------
    ValueError
        If the extension is not supported or ``suffix`` contains a path separator.

    Examples
    --------
    >>> output_path_for("photos/IMG_1.JPG")
    'photos/IMG_1-deblurred.JPG'
    >>> output_path_for("photos/IMG_1.jpg", ext="tif")
    'photos/IMG_1-deblurred.tif'
    """
    folder, base = os.path.split(os.fspath(input_path))
    stem, own_ext = os.path.splitext(base)
    if any(sep and sep in suffix for sep in (os.sep, os.altsep)):
        msg = f"suffix must be part of a file name, got {suffix!r} (contains a path separator)"
        raise ValueError(msg)
    if ext is None:
        ext = own_ext
    elif ext and not ext.startswith("."):
        ext = "." + ext
    _format_for_path(stem + ext)
    return os.path.join(folder, stem + suffix + ext)


def _format_for_path(name: str) -> str:
    ext = os.path.splitext(name)[1]
    fmt = SUPPORTED_EXTENSIONS.get(ext.lower())
    if fmt is None:
        msg = (
            f"cannot choose a file format for {name!r}: extension {ext or '(none)'!r} is not "
            f"supported; use {_SUPPORTED_TEXT}"
        )
        raise ValueError(msg)
    return fmt


def _prepare_pixels(pixels: np.ndarray, fmt: str, name: str) -> np.ndarray:
    """Validate ``pixels`` for ``fmt``; return an (H, W, C) native-endian view or copy."""
    if isinstance(pixels, np.ndarray) and not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    check_image(pixels, name="pixels")
    arr = as_hwc(pixels)
    height, width, channels = arr.shape
    dtype = arr.dtype
    if dtype in (np.float16, np.float64):
        msg = (
            f"cannot write {dtype} pixels to {name!r}: files hold uint8, uint16 or float32; "
            "convert with pixels.astype(np.float32) and write a .tif to keep float data"
        )
        raise ValueError(msg)
    if fmt == "png" and dtype == np.float32:
        msg = (
            f"PNG cannot store float32 pixels ({name!r}); write a .tif/.tiff file to keep "
            "float data, or convert to 16-bit first with core.dtype.from_float32(pixels, "
            "np.uint16), which clips to [0, 1]"
        )
        raise ValueError(msg)
    if fmt == "jpeg" and dtype != np.uint8:
        msg = (
            f"JPEG stores only 8 bits per channel, so writing {dtype} pixels to {name!r} "
            "would lose depth; write a .png (8/16-bit) or .tif (8/16-bit, float32) instead, "
            "or convert explicitly with core.dtype.from_float32(core.dtype.to_float32(pixels), "
            "np.uint8)"
        )
        raise ValueError(msg)
    if fmt == "jpeg" and channels in (2, 4):
        msg = (
            f"JPEG has no alpha channel, but the pixels for {name!r} have {channels} channels "
            "(alpha last); write a .png or .tif to keep alpha, or drop it with pixels[..., :-1]"
        )
        raise ValueError(msg)
    if height * width > MAX_PIXELS:
        msg = (
            f"refusing to write {width} x {height} = {height * width:,} pixels to {name!r}: "
            f"more than the limit of {MAX_PIXELS:,} that read_image accepts"
        )
        raise ValueError(msg)
    return arr


def _check_icc(icc_profile: bytes | None, channels: int) -> bytes | None:
    if icc_profile is None:
        return None
    if not isinstance(icc_profile, (bytes, bytearray, memoryview)):
        msg = f"icc_profile must be bytes or None, got {type(icc_profile).__name__}"
        raise TypeError(msg)
    data = bytes(icc_profile)
    if len(data) < 132 or data[36:40] != b"acsp":
        msg = (
            f"icc_profile ({len(data)} bytes) is not an ICC profile (no 'acsp' signature); "
            "pass the bytes of an .icc/.icm file or LoadedImage.icc_profile, or None"
        )
        raise ValueError(msg)
    space = data[16:20]
    wanted = b"GRAY" if channels <= 2 else b"RGB "
    if space != wanted:
        kind = "gray" if channels <= 2 else "RGB"
        msg = (
            f"icc_profile describes {space.decode('latin-1').strip()!r} data but the pixels are "
            f"{kind} ({channels} channels); pass a {wanted.decode().strip()} profile or "
            "icc_profile=None"
        )
        raise ValueError(msg)
    return data


def _same_file(a: str, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare resolved paths
        real_a = os.path.normcase(os.path.realpath(a))
        return real_a == os.path.normcase(os.path.realpath(os.fspath(b)))


def _check_target(
    name: str, dest: str, overwrite: bool, protect: Iterable[str | os.PathLike[str]]
) -> None:
    if isinstance(protect, (str, bytes, os.PathLike)):
        protect = (protect,)
    if os.path.isdir(dest):
        msg = f"cannot write {name!r}: it is a folder; give a file name such as out.png"
        raise IsADirectoryError(msg)
    folder = os.path.dirname(dest) or "."
    if not os.path.isdir(folder):
        msg = f"cannot write {name!r}: folder {folder!r} does not exist; create it first"
        raise FileNotFoundError(msg)
    if not overwrite:
        for kept in protect:
            if _same_file(dest, kept):
                msg = (
                    f"refusing to write {name!r}: it is the input file {os.fspath(kept)!r} "
                    "and writing would replace it; choose another output name (e.g. "
                    f"{output_path_for(name)!r}) or pass overwrite=True (--overwrite)"
                )
                raise FileExistsError(msg)
        if os.path.lexists(name):
            msg = (
                f"{name!r} already exists; pass overwrite=True (--overwrite on the command "
                "line) to replace it, or choose another output name"
            )
            raise FileExistsError(msg)


def _create_temp(dest: str) -> str:
    """Create an empty hidden file next to ``dest`` with the same extension; return its path."""
    folder, base = os.path.split(dest)
    stem, ext = os.path.splitext(base)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{stem[:100]}.{secrets.token_hex(4)}.tmp{ext}")
        try:
            # 0o666 minus the umask: the same permissions as any newly created file.
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    msg = f"could not create a temporary file next to {dest!r}"
    raise FileExistsError(msg)


def _verify(tmp: str, name: str, arr: np.ndarray, fmt: str, icc: bytes | None) -> None:
    """Read ``tmp`` back and compare it with what should have been written."""
    try:
        back = read_image(tmp)
    except ImageReadError as exc:
        msg = f"writing {name!r} failed: the written file could not be read back ({exc})"
        raise OSError(msg) from exc
    problem = None
    if back.format != fmt:
        problem = f"format {back.format}, expected {fmt}"
    elif back.pixels.shape != arr.shape or back.pixels.dtype != arr.dtype:
        problem = f"shape {back.pixels.shape} {back.pixels.dtype}, expected {arr.shape} {arr.dtype}"
    elif fmt != "jpeg" and not np.array_equal(back.pixels, arr):
        problem = "different pixel values"
    elif back.icc_profile != icc:
        problem = "a different ICC profile"
    if problem is not None:
        msg = (
            f"writing {name!r} failed verification: reading the written file back gave "
            f"{problem}; the target was left untouched. Please report this as a bug"
        )
        raise OSError(msg)


def _publish(tmp: str, dest: str, name: str, overwrite: bool) -> None:
    """Move the verified ``tmp`` onto ``dest`` in one step."""
    if overwrite:
        os.replace(tmp, dest)
        return
    exists = (
        f"{name!r} appeared while it was being written; pass overwrite=True (--overwrite) "
        "to replace it, or choose another output name"
    )
    try:
        os.link(tmp, dest)  # unlike os.replace, fails if dest exists
    except FileExistsError:
        raise FileExistsError(exists) from None
    except OSError:  # file system without hard links: check, then rename
        if os.path.lexists(dest):
            raise FileExistsError(exists) from None
        os.replace(tmp, dest)
        return
    os.remove(tmp)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (POSIX; best effort where folders cannot be synced)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --- encoders ------------------------------------------------------------------------------


def _png_chunk(fh: IO[bytes], kind: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + kind)
    fh.write(data)
    fh.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _png_filter_rows(raw: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Filter scanlines with the PNG filter that minimises the sum of |bytes| per row.

    ``raw`` is (n, row_bytes) uint8; ``prev`` is the (n, row_bytes) scanline above each row
    (zeros above the first). Returns (n, 1 + row_bytes) uint8 with the filter type first.
    Filters work modulo 256, which is what uint8 arithmetic does.
    """
    a = np.zeros_like(raw)  # byte to the left (same sample of the previous pixel)
    a[:, bpp:] = raw[:, :-bpp]
    c = np.zeros_like(prev)  # byte above-left
    c[:, bpp:] = prev[:, :-bpp]
    b16, a16, c16 = prev.astype(np.int16), a.astype(np.int16), c.astype(np.int16)
    pa = np.abs(b16 - c16)
    pb = np.abs(a16 - c16)
    pc = np.abs(a16 + b16 - 2 * c16)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, c))
    average = ((a16 + b16) >> 1).astype(np.uint8)
    candidates = np.stack([raw, raw - a, raw - prev, raw - average, raw - paeth])
    # |byte as int8| without widening: min(v, 256 - v) in uint8.
    cost = np.minimum(candidates, 0 - candidates).sum(axis=2, dtype=np.uint32)
    best = cost.argmin(axis=0)
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    out[:, 0] = best
    out[:, 1:] = np.take_along_axis(candidates, best[None, :, None], axis=0)[0]
    return out


def _encode_png_rows(fh: IO[bytes], arr: np.ndarray) -> None:
    """Write the IDAT chunks for (H, W, C) uint8/uint16 pixels (used for gray+alpha)."""
    height = arr.shape[0]
    rows = arr.astype(">u2" if arr.dtype == np.uint16 else np.uint8, copy=False)
    rows = rows.reshape(height, -1).view(np.uint8)  # big-endian bytes, as PNG stores them
    bpp = arr.shape[2] * arr.itemsize
    step = max(1, _PNG_STRIP_BYTES // rows.shape[1])
    compressor = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    for top in range(0, height, step):
        raw = rows[top : top + step]
        prev = np.empty_like(raw)
        prev[0] = rows[top - 1] if top else 0
        prev[1:] = raw[:-1]
        data = compressor.compress(_png_filter_rows(raw, prev, bpp).tobytes())
        if data:
            _png_chunk(fh, b"IDAT", data)
    _png_chunk(fh, b"IDAT", compressor.flush())


def _write_png(fh: IO[bytes], arr: np.ndarray, icc: bytes | None, quality: int) -> None:
    channels = arr.shape[2]
    iccp = None if icc is None else b"ICC profile\x00\x00" + zlib.compress(icc, 9)
    if channels != 2:
        # libpng through OpenCV (fast); the iCCP chunk goes right after IHDR.
        ok, encoded = cv2.imencode(".png", _rgb_to_bgr(arr))
        if not ok or bytes(encoded[:8]) != _PNG_SIGNATURE or bytes(encoded[12:16]) != b"IHDR":
            msg = "OpenCV failed to encode the PNG"
            raise OSError(msg)
        data = memoryview(encoded)
        end_of_ihdr = 8 + 12 + 13
        fh.write(data[:end_of_ihdr])
        if iccp is not None:
            _png_chunk(fh, b"iCCP", iccp)
        fh.write(data[end_of_ihdr:])
        return
    # OpenCV cannot write gray+alpha, and Pillow cannot write it with 16 bits: encode here.
    height, width = arr.shape[:2]
    depth = 8 * arr.itemsize
    fh.write(_PNG_SIGNATURE)
    _png_chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 4, 0, 0, 0))
    if iccp is not None:
        _png_chunk(fh, b"iCCP", iccp)
    _encode_png_rows(fh, arr)
    _png_chunk(fh, b"IEND", b"")


def _write_tiff(fh: IO[bytes], arr: np.ndarray, icc: bytes | None, quality: int) -> None:
    tifffile = _require_tifffile()
    channels = arr.shape[2]
    tifffile.imwrite(
        fh,
        arr[:, :, 0] if channels == 1 else arr,
        photometric="minisblack" if channels <= 2 else "rgb",
        planarconfig=None if channels == 1 else "contig",
        extrasamples=(tifffile.EXTRASAMPLE.UNASSALPHA,) if channels in (2, 4) else None,
        compression="zlib",
        compressionargs={"level": _DEFLATE_LEVEL},
        # The floating-point predictor needs the optional imagecodecs package.
        predictor=arr.dtype.kind == "u",
        iccprofile=icc,
        metadata=None,
        software="clearshot",
    )


def _write_jpeg(fh: IO[bytes], arr: np.ndarray, icc: bytes | None, quality: int) -> None:
    image = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    options: dict[str, Any] = {"quality": quality}
    options["subsampling"] = 0 if quality >= _JPEG_FULL_CHROMA_QUALITY else 2
    if icc is not None:
        options["icc_profile"] = icc
    image.save(fh, format="JPEG", **options)


_WRITERS: dict[str, Callable[[IO[bytes], np.ndarray, bytes | None, int], None]] = {
    "png": _write_png,
    "tiff": _write_tiff,
    "jpeg": _write_jpeg,
}


def read_psf(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a blur kernel from ``.npy`` (2-D real array) or a grayscale PNG/TIFF/JPEG image.

    Returns the kernel normalised and centred (see :func:`core.psf.normalize_psf`). Colour
    images are averaged to gray; an alpha channel is ignored.

    Raises
    ------
    ImageReadError
        The file is missing or unreadable.
    ValueError
        The content is not a usable kernel (the message says why).
    """
    from .psf import normalize_psf

    name = os.fspath(path)
    if name.lower().endswith(".npy"):
        if not os.path.isfile(name):
            msg = f"cannot read the PSF file {name!r}: no such file"
            raise ImageReadError(msg)
        try:
            arr = np.load(name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"cannot read the PSF file {name!r} as a NumPy .npy array: {exc}"
            raise ImageReadError(msg) from exc
        return normalize_psf(arr, name=f"PSF file {name!r}")
    pixels = read_image(name).pixels.astype(np.float64)
    colour = pixels[:, :, :-1] if pixels.shape[2] in (2, 4) else pixels
    return normalize_psf(colour.mean(axis=2), name=f"PSF file {name!r}")


def read_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read a recipe file (TOML, see :mod:`core.recipes`) and validate it.

    Raises
    ------
    FileNotFoundError
        No such file (the message names it).
    ValueError
        The text is not a valid recipe (the message names the key, line and expected values).
    """
    from .recipes import parse_recipe

    name = os.fspath(path)
    if not os.path.isfile(name):
        msg = f"cannot read the recipe file {name!r}: no such file"
        raise FileNotFoundError(msg)
    if os.path.getsize(name) > 1 << 20:
        msg = f"the recipe file {name!r} is over 1 MiB; a recipe is a short TOML text"
        raise ValueError(msg)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        msg = f"the recipe file {name!r} is not UTF-8 text: {exc}"
        raise ValueError(msg) from None
    return parse_recipe(text, source=name)
