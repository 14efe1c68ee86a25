"""Artefact guard: find where a network's residual looks like a failure and fade it out there.

Learned deblurrers fail in recognisable ways. This guard looks at the *residual* (network
output minus input, sRGB-encoded, per tile) in square blocks and flags three failures:

* **periodic artefacts** (checkerboards from transposed convolutions / pixel shuffles, grid
  patterns): isolated spectral peaks of the residual's luminance at Nyquist and half-Nyquist
  frequencies, far above the surrounding spectrum and absent from the input itself (a finely
  woven fabric is periodic in the input too, and then sharpening it is legitimate);
* **colour mosaic**: high-frequency energy of the residual's chroma far above that of its
  luminance, with the output holding clearly more colour detail than the input (a network that
  removes colour noise has a chroma-heavy residual too, but lowers the output's colour detail);
* **border failures**: a residual much stronger in the outermost pixels of the image than just
  inside (:func:`border_weights`).

Flagged blocks get weight 0, their neighbours are eased in, and the caller multiplies the
residual by the weight map: the result falls back to the input there (the safe answer) and the
network's result is kept everywhere else. Pure numpy/OpenCV, no model code.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "GuardSettings",
    "border_weights",
    "chroma_mosaic_ratio",
    "guard_weights",
    "periodic_artifact_score",
]


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds of the artefact guard.

    Attributes
    ----------
    block_px : int
        Side of the analysis blocks (a power of two keeps the FFT exact at Nyquist).
    periodic_score : float
        Peak-to-surround spectral ratio above which a residual is periodic (natural residuals
        score about 1-5, a checkerboard hundreds).
    periodic_amplitude : float
        Smallest periodic amplitude that matters (fraction of full scale; 0.004 ~ 1 level of 8 bit).
    mosaic_ratio : float
        Chroma/luminance high-frequency energy ratio of the residual above which a block is a
        colour mosaic, provided the output also has clearly more chroma high frequency than the
        input (so removing colour noise is never flagged).
    mosaic_amplitude : float
        Smallest RMS chroma high frequency that matters (fraction of full scale).
    mosaic_spread : float
        A mosaic speckles colour over the block, edges or not; deblurring a colour edge adds
        chroma detail on the edge. A block is a mosaic only if the share of its added chroma
        energy lying off the input's edges is at least this fraction of the share of its pixels
        that lie off them (speckle: about 1; sharpened colour edges: 0.3-0.6).
    """

    block_px: int = 64
    periodic_score: float = 12.0
    periodic_amplitude: float = 0.004
    mosaic_ratio: float = 3.0
    mosaic_amplitude: float = 0.006
    mosaic_spread: float = 0.75

    def __post_init__(self) -> None:
        if self.block_px < 16 or self.block_px & (self.block_px - 1):
            msg = f"block_px must be a power of two >= 16, got {self.block_px}"
            raise ValueError(msg)


_THIRD = np.full(3, 1.0 / 3.0, np.float32)
_AMP_CAL = 0.656  # 3x3-bin power of a Hann-windowed pure pattern -> its amplitude (measured)


def _hann(n: int) -> np.ndarray:
    w = np.hanning(n).astype(np.float32)
    return np.outer(w, w)


def _peak_bins(n: int) -> list[tuple[int, int]]:
    """Frequency bins (row, col) of Nyquist and half-Nyquist patterns in an n x n FFT."""
    fs = (0, n // 4, n // 2, 3 * n // 4)
    return [(a, b) for a in fs for b in fs if (a, b) != (0, 0)]


def periodic_artifact_score(residual: np.ndarray) -> tuple[float, float]:
    """How strongly a 2-D residual concentrates at Nyquist / half-Nyquist frequencies.

    Parameters
    ----------
    residual : ndarray, float, (n, n), n a multiple of 4 (>= 16)
        Luminance of a residual block (or any 2-D signal).

    Returns
    -------
    score : float
        The largest ratio between the power in a 3x3 bin neighbourhood around a Nyquist or
        half-Nyquist frequency and the median power of the ring of bins around it
        (1-5 for natural content, >> 10 for a checkerboard or grid).
    amplitude : float
        Estimated amplitude of that periodic component (fraction of full scale).
    """
    n = residual.shape[0]
    if residual.ndim != 2 or residual.shape[1] != n or n % 4 or n < 16:
        msg = (
            "residual must be a square 2-D block with a side multiple of 4 >= 16, "
            f"got {residual.shape}"
        )
        raise ValueError(msg)
    score, amp = _periodic_scores(residual[None].astype(np.float32))
    return float(score[0]), float(amp[0])


def _periodic_scores(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`periodic_artifact_score` over a stack of (k, n, n) blocks."""
    n = blocks.shape[-1]
    win = _hann(n)
    centred = blocks - blocks.mean(axis=(1, 2), keepdims=True)
    half = np.abs(np.fft.rfft2((centred * win).astype(np.float32))) ** 2  # (k, n, n/2 + 1)
    # the full power spectrum of real data by conjugate symmetry: P(fy, fx) = P(-fy, -fx)
    spec = np.empty(blocks.shape, np.float32)
    spec[:, :, : n // 2 + 1] = half
    neg = (-np.arange(n)) % n
    spec[:, :, n // 2 + 1 :] = half[:, neg][:, :, n - np.arange(n // 2 + 1, n)]
    k = blocks.shape[0]
    best = np.zeros(k)
    amp = np.zeros(k)
    eps = 1e-20 + 1e-12 * spec.mean(axis=(1, 2))
    ring_mask = np.ones((11, 11), bool)
    ring_mask[3:8, 3:8] = False
    wsum = float(win.sum())
    for fy, fx in _peak_bins(n):
        rows = (fy + np.arange(-5, 6)) % n
        cols = (fx + np.arange(-5, 6)) % n
        patch = spec[:, rows][:, :, cols]
        centre = patch[:, 4:7, 4:7].sum(axis=(1, 2))
        ring = np.median(patch[:, ring_mask], axis=1)
        ratio = centre / (9 * ring + eps)
        # a pattern A*cos puts |F| = A/2 * sum(win) in each conjugate bin (A * sum(win) at
        # Nyquist, which is its own conjugate); the centre power is ~|F|^2
        factor = 1.0 if (fy in (0, n // 2) and fx in (0, n // 2)) else 0.5
        better = ratio > best
        best = np.where(better, ratio, best)
        amp = np.where(better, _AMP_CAL * np.sqrt(centre) / (factor * wsum), amp)
    return best, amp


def _highpass(x: np.ndarray) -> np.ndarray:
    return x - cv2.GaussianBlur(x, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)


def _hf_energies(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel high-frequency energy of luminance and of chroma (two degrees of freedom)."""
    x = rgb.astype(np.float32, copy=False)
    hp = _highpass(x)
    hy = hp @ _THIRD
    ey = hy * hy
    # sum_c (hp_c - hy)^2 = sum_c hp_c^2 - 3 hy^2 (channel sums as matmuls: fast in numpy)
    ec = np.maximum((hp * hp) @ np.ones(3, np.float32) - 3 * ey, 0) * np.float32(0.5)
    return ey, ec


def _block_means(e: np.ndarray, ys: list[int], xs: list[int], b: int) -> np.ndarray:
    ii = cv2.integral(e.astype(np.float64))
    y0 = np.asarray(ys)[:, None]
    x0 = np.asarray(xs)[None, :]
    total = ii[y0 + b, x0 + b] - ii[y0, x0 + b] - ii[y0 + b, x0] + ii[y0, x0]
    return (total / (b * b)).ravel()


def chroma_mosaic_ratio(rgb: np.ndarray) -> tuple[float, float]:
    """(chroma / luminance high-frequency energy ratio, RMS chroma high frequency) of RGB data."""
    ey, ec = _hf_energies(rgb)
    return float(ec.mean() / (ey.mean() + 1e-12)), float(np.sqrt(ec.mean()))


def guard_weights(
    x_enc: np.ndarray, residual: np.ndarray, settings: GuardSettings | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Per-pixel weights (1 = keep the network's residual, 0 = fall back to the input).

    Parameters
    ----------
    x_enc : ndarray, float32, (H, W, 3)
        The network's input (sRGB-encoded, [0, 1]).
    residual : ndarray, float32, (H, W, 3)
        Network output minus input.
    settings : GuardSettings, optional

    Returns
    -------
    weights : ndarray, float32, (H, W)
    counts : dict
        Blocks flagged as ``periodic`` and ``mosaic``, and ``blocks`` analysed.
    """
    s = settings or GuardSettings()
    h, w = residual.shape[:2]
    b = s.block_px
    counts = {"blocks": 0, "periodic": 0, "mosaic": 0}
    if h < b or w < b:
        return np.ones((h, w), np.float32), counts
    ys = _starts(h, b)
    xs = _starts(w, b)
    counts["blocks"] = len(ys) * len(xs)
    res_y = residual @ _THIRD
    in_y = x_enc @ _THIRD
    yi = (np.asarray(ys)[:, None] + np.arange(b))[:, None, :, None]
    xi = (np.asarray(xs)[:, None] + np.arange(b))[None, :, None, :]
    blocks = res_y[yi, xi].reshape(-1, b, b)
    score, amp = _periodic_scores(blocks)
    periodic = (score > s.periodic_score) & (amp > s.periodic_amplitude)
    for idx in np.flatnonzero(periodic):  # rare: compare with the input's own periodicity
        i, j = divmod(int(idx), len(xs))
        y0, x0 = ys[i], xs[j]
        in_score, _ = periodic_artifact_score(_highpass(in_y[y0 : y0 + b, x0 : x0 + b]))
        periodic[idx] = score[idx] > 4 * in_score
    # colour mosaic: block sums of high-frequency energies through integral images
    ey_r, ec_r = _hf_energies(residual)
    e_y, e_c = _block_means(ey_r, ys, xs, b), _block_means(ec_r, ys, xs, b)
    mosaic = (e_c / (e_y + 1e-12) > s.mosaic_ratio) & (e_c > s.mosaic_amplitude**2) & ~periodic
    if mosaic.any():
        # removing chroma noise is legitimate (the output has less colour detail than the
        # input); a mosaic *adds* colour detail the input does not have
        e_in = _block_means(_hf_energies(x_enc)[1], ys, xs, b)
        e_out = _block_means(_hf_energies(x_enc + residual)[1], ys, xs, b)
        mosaic &= e_out > 1.5 * e_in + s.mosaic_amplitude**2
    if mosaic.any():
        off_edge = 1.0 - _edge_mask(x_enc)
        chroma_off = _block_means(ec_r * off_edge, ys, xs, b) / np.maximum(e_c, 1e-12)
        pixels_off = _block_means(off_edge, ys, xs, b)
        mosaic &= chroma_off >= s.mosaic_spread * pixels_off
    counts["periodic"] = int(periodic.sum())
    counts["mosaic"] = int(mosaic.sum())
    grid = np.where(periodic | mosaic, 0.0, 1.0).astype(np.float32).reshape(len(ys), len(xs))
    if grid.min() == 1.0:
        return np.ones((h, w), np.float32), counts
    # artefacts do not stop at block borders: the 8 neighbours of a flagged block keep half of
    # the residual (a full fallback there would blank a small image for one flagged block)
    around = cv2.erode(grid, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    grid = np.minimum(grid, 0.5 + 0.5 * around)
    # blocks overlap where the last start was shifted to fit; paint by block, then smooth
    weights = np.ones((h, w), np.float32)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            if grid[i, j] < 1:
                weights[y0 : y0 + b, x0 : x0 + b] = np.minimum(weights[y0 : y0 + b, x0 : x0 + b],
                                                               grid[i, j])
    weights = cv2.GaussianBlur(weights, (0, 0), b / 4, borderType=cv2.BORDER_REPLICATE)
    # hard zero where a block itself was flagged (the blur only eases the surroundings in)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            if grid[i, j] == 0 and _flagged_core(grid, i, j):
                weights[y0 : y0 + b, x0 : x0 + b] = 0.0
    return np.clip(weights, 0.0, 1.0), counts


def _edge_mask(x_enc: np.ndarray) -> np.ndarray:
    """1 within 2 px of the input's luminance edges (slope above 0.02 of full scale per px)."""
    luma = x_enc.astype(np.float32, copy=False) @ _THIRD
    slope = np.hypot(cv2.Sobel(luma, cv2.CV_32F, 1, 0), cv2.Sobel(luma, cv2.CV_32F, 0, 1)) / 8
    edges = cv2.dilate((slope > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
    return edges.astype(np.float32)


def _flagged_core(grid: np.ndarray, i: int, j: int) -> bool:
    """True when the block and its 4 neighbours are all flagged (interior of a flagged area)."""
    h, w = grid.shape
    return all(grid[min(max(i + di, 0), h - 1), min(max(j + dj, 0), w - 1)] == 0
               for di, dj in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)))


def _starts(length: int, block: int) -> list[int]:
    starts = list(range(0, length - block + 1, block))
    if starts[-1] + block < length:
        starts.append(length - block)
    return starts


def border_weights(residual: np.ndarray, *, sides: tuple[str, ...] = ("top", "bottom", "left",
                   "right"), band_px: int = 8, inner_px: int = 24, segment_px: int = 128
                   ) -> np.ndarray | None:
    """Weights (H, W) that fade out a residual failing at the image border, or None if fine.

    Along each of ``sides`` (the true image edges), in segments of ``segment_px``, the mean
    absolute residual in the outer
    ``band_px`` rows/columns is compared with the ``inner_px`` just inside; where the border is
    more than 3x stronger (and above 1 % of full scale) the band is faded out (cosine ramp).
    """
    h, w = residual.shape[:2]
    if h < 2 * (band_px + inner_px) or w < 2 * (band_px + inner_px):
        return None
    mag = np.abs(residual).mean(axis=2) if residual.ndim == 3 else np.abs(residual)
    weights: np.ndarray | None = None
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(band_px) / band_px)).astype(np.float32)
    views = {
        "top": (mag, False),
        "bottom": (mag[::-1], False),
        "left": (mag.T, True),
        "right": (mag[:, ::-1].T, True),
    }
    for side, (m, transposed) in views.items():
        if side not in sides:
            continue
        length = m.shape[1]
        for s0 in range(0, length, segment_px):
            s1 = min(length, s0 + segment_px)
            outer = float(m[:band_px, s0:s1].mean())
            inner = float(m[band_px : band_px + inner_px, s0:s1].mean())
            if outer > 3 * inner + 0.01:
                if weights is None:
                    weights = np.ones((h, w), np.float32)
                view = weights.T if transposed else weights
                if side in ("bottom", "right"):
                    view = view[::-1]
                view[:band_px, s0:s1] = np.minimum(view[:band_px, s0:s1], ramp[:, None])
    return weights
