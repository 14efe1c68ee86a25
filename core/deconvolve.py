"""Non-blind deconvolution: Wiener/Tikhonov, sparse prior (hyper-Laplacian), damped Richardson-Lucy.

Each solver restores the channels of a float32 (H, W, C) array blurred by a known PSF
(``blurred = convolve(sharp, psf)``). The image is first extended to a smooth periodic canvas
(:mod:`core.borders`), so the FFT's circular assumption holds without ringing from the borders,
then solved in the Fourier domain and cropped back.

These functions see plain channels: no alpha, no colour conversion, no dtype handling -- that is
:func:`core.deblur.deblur`'s job. They never modify their input.

Strength
--------
``strength`` in 0..100 is one monotone control shared by all methods: 0 returns the input, 50 is
the automatically tuned result (regularisation from the measured noise), values between blend
linearly, and 50..100 lowers the regularisation (or adds iterations) up to 100x more aggressive.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import fft
from .borders import padded_shape, smooth_periodic_pad
from .noise import measure_noise_sigma
from .progress import ProgressCallback, Reporter
from .psf import normalize_psf

__all__ = [
    "deconvolve_wiener",
    "deconvolve_sparse",
    "deconvolve_richardson_lucy",
    "METHODS",
]

METHODS = ("wiener", "sparse", "rl")


# ----------------------------------------------------------------------------- shared pieces
class _Canvas:
    """Spectra shared by every channel deconvolved on one canvas (CCS layout, float32)."""

    def __init__(self, psf: np.ndarray, shape: tuple[int, int]):
        self.shape = shape
        self.k = fft.psf_spectrum(psf, shape)
        self.k_abs2 = fft.abs2(self.k)
        wy, wx = fft.freq_grid(shape)
        self._a = (2 - 2 * np.cos(wx)).astype(np.float32)  # |dx|^2 on the half grid
        self._b = (2 - 2 * np.cos(wy)).astype(np.float32)  # |dy|^2

    def grad_energy(self) -> np.ndarray:
        """|dx|^2 + |dy|^2 (first derivatives), CCS layout."""
        return fft.real_spectrum_to_ccs(self._a + self._b)

    def sparse_filter_energy(self) -> np.ndarray:
        """Sum of |filter|^2 weighted as in ``_SPARSE_FILTERS``, CCS layout."""
        a, b = self._a, self._b
        return fft.real_spectrum_to_ccs(a + b + np.float32(0.5) * (a * a + b * b + a * b))


def _check_inputs(image: np.ndarray, psf: np.ndarray, strength: float) -> np.ndarray:
    if image.ndim != 3 or image.dtype != np.float32:
        msg = (
            f"expected float32 (H, W, C) channels, got {image.dtype} {image.shape}; "
            "use core.deblur.deblur for other data"
        )
        raise TypeError(msg)
    k = normalize_psf(psf)
    h, w = image.shape[:2]
    if k.shape[0] > 2 * h + 1 or k.shape[1] > 2 * w + 1:
        msg = (
            f"the PSF ({k.shape[0]}x{k.shape[1]} px) is larger than twice the image "
            f"({h}x{w} px); a blur that wide cannot be undone on this image -- check the PSF "
            "size or use a larger image"
        )
        raise ValueError(msg)
    if not (0 <= strength <= 100):
        msg = f"strength must be in 0..100, got {strength}"
        raise ValueError(msg)
    return k


def _aggressiveness(strength: float) -> float:
    """Regularisation divisor: 1 at strength <= 50, up to 100 at 100."""
    return 10 ** (max(strength - 50.0, 0.0) / 25.0)


def _blend_toward_input(image: np.ndarray, result: np.ndarray, strength: float) -> np.ndarray:
    if strength >= 50:
        return result
    t = np.float32(strength / 50.0)
    return image + t * (result - image)


def _noise_sigma(image: np.ndarray, noise_sigma: float | None) -> float:
    if noise_sigma is not None:
        if not (noise_sigma >= 0 and math.isfinite(noise_sigma)):
            msg = f"noise_sigma must be a non-negative fraction of full scale, got {noise_sigma}"
            raise ValueError(msg)
        return float(noise_sigma)
    return measure_noise_sigma(image)


def _per_channel(image, k, solve, progress: ProgressCallback | None, stage: str) -> np.ndarray:
    """Pad each channel to a smooth periodic canvas, solve, crop."""
    rep = Reporter(progress)
    h, w, c = image.shape
    canvas_info = _Canvas(k, padded_shape((h, w), k.shape))
    out = np.empty_like(image)
    buffer = np.empty((*canvas_info.shape, 1), np.float32)
    for ci in range(c):
        canvas = smooth_periodic_pad(image[:, :, ci : ci + 1], canvas_info.shape, out=buffer)[
            :, :, 0
        ]
        res = solve(canvas, canvas_info, rep.sub(ci / c, (ci + 1) / c))
        out[:, :, ci] = res[:h, :w]
    rep(1.0, stage)
    return out


# ----------------------------------------------------------------------------- Wiener
def deconvolve_wiener(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    strength: float = 50.0,
    balance: float | None = None,
    noise_sigma: float | None = None,
    clip: bool = True,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Wiener / Tikhonov deconvolution with a gradient regulariser.

    Solves ``X = conj(K) Y / (|K|^2 + balance |D|^2)`` in one pass, where ``|D|^2`` is the
    spectrum of the image-gradient operator (smooth results, little noise amplification).

    Parameters
    ----------
    image : ndarray, float32, (H, W, C)
        Blurred channels, usually linear light in [0, 1].
    psf : ndarray, 2-D
        Blur kernel (normalised and centred here).
    strength : float, 0..100, default 50
        See the module docstring.
    balance : float, optional
        Regularisation weight. Default: ``120 * noise_sigma**2`` scaled by strength (tuned on
        the real Levin et al. captures).
    noise_sigma : float, optional
        Noise standard deviation (fraction of full scale); measured when omitted.
    clip : bool, default True
        Clip the result to [0, 1] (``False`` keeps HDR values).
    progress : callable, optional
        ``progress(fraction, stage)``; returning False cancels.

    Returns
    -------
    ndarray, float32, (H, W, C)

    Notes
    -----
    Borders: smooth periodic extension (Liu & Jia 2008), so no wrap-around ringing.

    Examples
    --------
    >>> from core.psf import gaussian_psf
    >>> x = np.zeros((32, 32, 1), np.float32); x[16, 16] = 1
    >>> deconvolve_wiener(x, gaussian_psf(1.0)).shape
    (32, 32, 1)
    """
    k = _check_inputs(image, psf, strength)
    if strength == 0:
        return image.copy()
    if balance is None:
        sig = _noise_sigma(image, noise_sigma)
        balance = 120.0 * sig * sig
    bal = np.float32(balance / _aggressiveness(strength))

    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def solve(canvas, cv: _Canvas, rep):
        rep(0.0, "wiener")
        if id(cv) not in cache:  # conj(K) / (|K|^2 + balance |D|^2), once per canvas
            cache.clear()
            den = cv.grad_energy()
            den *= bal
            den += cv.k_abs2
            filt = fft.conj(cv.k)
            filt /= den
            cache[id(cv)] = (filt, den, np.empty_like(den))  # den's memory is reused below
        filt, spec, res = cache[id(cv)]
        fft.dft(canvas, out=spec)
        fft.mul(spec, filt, out=res)
        return fft.idft(res, out=spec)

    out = _per_channel(image, k, solve, progress, "wiener")
    out = _blend_toward_input(image, out, strength)
    return np.clip(out, 0, 1, out=out) if clip else out


# ----------------------------------------------------------------------------- sparse prior
_LUT_CACHE: dict[tuple[float, float, float], tuple[np.float32, np.float32, np.ndarray]] = {}
_LUT_SIZE = 16385  # odd: the middle entry is v = 0


def _shrink_lut(
    beta: float, alpha: float, v_max: float
) -> tuple[np.float32, np.float32, np.ndarray]:
    """Signed table of argmin_w |w|^alpha + beta/2 (w - v)^2 for v in [-v_max, v_max].

    For v > 0 the minimiser is 0 or the larger root of alpha w^(alpha-1) + beta (w - v) = 0;
    Newton's method from w = v finds that root, then the two candidates' costs are compared.
    """
    key = (round(beta, 6), round(alpha, 6), round(v_max, 6))
    if key not in _LUT_CACHE:
        v = np.linspace(0, v_max, _LUT_SIZE // 2 + 1)[1:]
        w = v.copy()
        for _ in range(30):
            grad = alpha * w ** (alpha - 1) + beta * (w - v)
            hess = alpha * (alpha - 1) * w ** (alpha - 2) + beta
            step = np.where(hess > 0, grad / np.where(hess > 0, hess, 1), w)
            w = np.clip(w - step, 1e-12, v)
        cost_w = w**alpha + 0.5 * beta * (w - v) ** 2
        cost_0 = 0.5 * beta * v**2
        half = np.where(cost_w < cost_0, w, 0.0)
        table = np.concatenate([-half[::-1], [0.0], half]).astype(np.float32)
        scale = (_LUT_SIZE - 1) / (2 * v_max)
        _LUT_CACHE[key] = (np.float32(scale), np.float32(v_max * scale), table)
        if len(_LUT_CACHE) > 256:
            _LUT_CACHE.pop(next(iter(_LUT_CACHE)))
    return _LUT_CACHE[key]


def _shrink(v: np.ndarray, beta: float, alpha: float, v_max: float = 4.0) -> np.ndarray:
    """Elementwise hyper-Laplacian shrinkage by table lookup (one gather per element).

    Responses beyond +-v_max are clamped to the table's end; callers pick v_max above the data's
    range (see ``deconvolve_sparse``).
    """
    scale, offset, table = _shrink_lut(beta, alpha, v_max)
    idx = v * scale
    idx += offset + np.float32(0.5)
    np.clip(idx, 0, _LUT_SIZE - 1, out=idx)
    return table[idx.astype(np.int32)]


# Periodic finite differences on the canvas (forward) and their adjoints, by slicing.
def _dx(x: np.ndarray) -> np.ndarray:
    g = np.empty_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=g[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=g[:, -1:])
    return g


def _dy(x: np.ndarray) -> np.ndarray:
    g = np.empty_like(x)
    np.subtract(x[1:], x[:-1], out=g[:-1])
    np.subtract(x[:1], x[-1:], out=g[-1:])
    return g


def _dx_t(w: np.ndarray) -> np.ndarray:
    g = np.empty_like(w)
    np.subtract(w[:, :-1], w[:, 1:], out=g[:, 1:])
    np.subtract(w[:, -1:], w[:, :1], out=g[:, :1])
    return g


def _dy_t(w: np.ndarray) -> np.ndarray:
    g = np.empty_like(w)
    np.subtract(w[:-1], w[1:], out=g[1:])
    np.subtract(w[-1:], w[:1], out=g[:1])
    return g


def _dxx(x: np.ndarray) -> np.ndarray:
    return _dx_t(_dx(x)) * np.float32(-1)  # symmetric second difference


def _dyy(x: np.ndarray) -> np.ndarray:
    return _dy_t(_dy(x)) * np.float32(-1)


def _dxy(x: np.ndarray) -> np.ndarray:
    return _dy(_dx(x))


def _dxy_t(w: np.ndarray) -> np.ndarray:
    return _dx_t(_dy_t(w))


# (filter, adjoint, prior weight): first derivatives plus weaker second derivatives, as in
# Levin et al.'s sparse deconvolution; the second-order terms curb staircasing and ringing.
_SPARSE_FILTERS = (
    (_dx, _dx_t, 1.0),
    (_dy, _dy_t, 1.0),
    (_dxx, _dxx, 0.5),
    (_dyy, _dyy, 0.5),
    (_dxy, _dxy_t, 0.5),
)


# conjugate-gradient steps per splitting step where clipped pixels are left out of the data term
# (the night scene of tests/core/test_deconvolve.py, seeds 0-2, pixels from 0.98 taken as
# clipped: 1 step 16.8-17.2 dB, 2 steps 17.1-17.6, 3 steps 17.2-17.7, 8 steps 17.3-17.9, the
# clipped pixels read as data 15.4-15.8; each step costs two FFTs and two spectrum products)
_MASKED_CG_ITERATIONS = 3
# clipped areas smaller than this are read as data (see _clipped_areas)
_MIN_CLIPPED_AREA_PX = 4


def deconvolve_sparse(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    strength: float = 50.0,
    weight: float | None = None,
    alpha: float = 0.66,
    noise_sigma: float | None = None,
    kernel_error: float = 0.0,
    beta_start: float = 16.0,
    beta_stop: float = 2048.0,
    beta_rate: float = 2.0,
    saturation: float | None = None,
    clip: bool = True,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Sparse-prior (hyper-Laplacian) deconvolution by half-quadratic splitting.

    Minimises ``weight/2 ||k * x - y||^2 + sum_f w_f |f * x|^alpha`` over first derivatives
    (weight 1) and second derivatives (weight 0.5): alternately shrink the filter responses
    (lookup table) and solve the quadratic sub-problem in the Fourier domain, raising the
    penalty ``beta`` geometrically from ``beta_start`` to ``beta_stop`` (Krishnan & Fergus 2009).
    The FFTs of the PSF, the data term and the filters are computed once and reused; each
    iteration costs one forward and one inverse real FFT.

    Parameters
    ----------
    image : ndarray, float32, (H, W, C)
    psf : ndarray, 2-D
    strength : float, 0..100, default 50
    weight : float, optional
        Data-term weight; default ``0.3 / noise_sigma**2`` scaled by strength (tuned on the
        real Levin et al. captures).
    alpha : float in (0, 1], default 0.66
        Prior exponent (1 = total variation; 0.5..0.8 suit natural images).
    kernel_error : float, default 0
        For a kernel that is itself an estimate: the rms error (fraction of full scale) it is
        assumed to leave in the blurred photo. Frequencies the kernel passes weakly are then
        trusted less than the noise alone would say (by ``(kernel_error / noise)^2`` of the
        data term, scaled by ``1 - |K|^2``), which caps the gain near the kernel's zeros:
        there a slightly wrong kernel turns the photo's remaining detail into stripes.
    beta_start, beta_stop, beta_rate : float
        Continuation schedule of the splitting penalty.
    saturation : float, optional
        The data's clipping level (same units as ``image``): clipped areas of at least
        :data:`_MIN_CLIPPED_AREA_PX` pixels at or above it are left out of the data term (each
        quadratic step is then solved by :data:`_MASKED_CG_ITERATIONS` conjugate-gradient steps
        preconditioned by the unmasked solve: about 1.9x the time, on the channels of the
        tiles that have such an area). Read as data, a clipped light's cut-off streak rings
        along the kernel's path around it. None (default): every pixel is data; nothing
        clipped gives the same result as None.
    noise_sigma, clip, progress
        As in :func:`deconvolve_wiener`.

    Returns
    -------
    ndarray, float32, (H, W, C)

    References
    ----------
    D. Krishnan, R. Fergus, "Fast image deconvolution using hyper-Laplacian priors", NIPS 2009.
    A. Levin et al., "Image and depth from a conventional camera with a coded aperture", 2007.
    S. Cho, J. Wang, S. Lee, "Handling outliers in non-blind image deconvolution", ICCV 2011
    (clipped pixels as outliers of the data term).
    """
    k = _check_inputs(image, psf, strength)
    if strength == 0:
        return image.copy()
    if not (0 < alpha <= 1):
        msg = f"alpha must be in (0, 1], got {alpha}"
        raise ValueError(msg)
    if not (0 < beta_start <= beta_stop and beta_rate > 1):
        msg = "beta schedule needs 0 < beta_start <= beta_stop and beta_rate > 1"
        raise ValueError(msg)
    if not (kernel_error >= 0 and math.isfinite(kernel_error)):
        msg = f"kernel_error must be a non-negative fraction of full scale, got {kernel_error}"
        raise ValueError(msg)
    sig = _noise_sigma(image, noise_sigma) if weight is None or kernel_error > 0 else 0.0
    if weight is None:
        weight = 0.3 / (sig * sig)
    lam = np.float32(weight * _aggressiveness(strength))
    # an uncertain kernel: its error adds to the noise where it passes little of the photo, so
    # those frequencies are trusted less (relative weight (error / noise)^2); this caps the
    # gain near the kernel's zeros, where a slightly wrong kernel stripes the photo
    distrust = (kernel_error / max(sig, 1e-12)) ** 2 if kernel_error > 0 else 0.0
    betas = []
    b = beta_start
    while b <= beta_stop * (1 + 1e-9):
        betas.append(b)
        b *= beta_rate

    def solve(canvas, cv: _Canvas, rep):
        # a clipped pixel is no measurement of the blur: its data term is dropped
        clipped = None if saturation is None else _clipped_areas(canvas, saturation)
        observed = canvas if clipped is None else canvas * (1 - clipped)
        kty = fft.mul(fft.dft(observed), cv.k, conj_b=True)
        kty *= lam
        ktk = cv.k_abs2 * lam
        if distrust > 0:
            ktk += np.float32(lam * distrust) * (np.float32(1.0) - cv.k_abs2)
        ftf = cv.sparse_filter_energy()
        # filter responses stay within a few times the data range (second differences: 4x)
        v_max = 4.0 * max(1.0, float(np.abs(canvas).max()))
        x = canvas
        x_spec = None if clipped is None else fft.dft(canvas)
        for i, beta in enumerate(betas):
            rep(i / len(betas), "sparse deconvolution")
            rhs = np.zeros_like(x)
            for f, f_t, wt in _SPARSE_FILTERS:
                # w_f * |v|^alpha + beta/2 (v - f x)^2  ->  shrink with beta / w_f
                z = f_t(_shrink(f(x), beta / wt, alpha, v_max))
                if wt != 1.0:
                    z *= np.float32(wt)
                rhs += z
            num = fft.dft(rhs)
            num *= np.float32(beta)
            num += kty
            den = ftf * np.float32(beta)
            den += ktk
            if clipped is None:
                num /= den
            else:
                num = x_spec = _solve_masked(x_spec, num, den, cv, clipped, lam)
            x = fft.idft(num)
        return x

    out = _per_channel(image, k, solve, progress, "sparse deconvolution")
    out = _blend_toward_input(image, out, strength)
    return np.clip(out, 0, 1, out=out) if clip else out


def _clipped_areas(canvas: np.ndarray, saturation: float) -> np.ndarray | None:
    """float32 1.0 on the pixels at or above ``saturation`` that belong to a clipped area of at
    least :data:`_MIN_CLIPPED_AREA_PX` (8-connected), else 0.0; None when there is none. A
    clipped pixel or two alone is noise lifting a value near full scale, or a light barely
    over it: what was cut off is a fraction of a level, not worth the slower solve."""
    at_top = (canvas >= np.float32(saturation)).astype(np.uint8)
    if not at_top.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(at_top, connectivity=8)
    large = stats[:, cv2.CC_STAT_AREA] >= _MIN_CLIPPED_AREA_PX
    large[0] = False  # the background
    if not large[1:].any():
        return None
    return large[labels].astype(np.float32)


def _solve_masked(
    x_spec: np.ndarray,
    b_spec: np.ndarray,
    den: np.ndarray,
    cv: _Canvas,
    clipped: np.ndarray,
    lam: np.float32,
    iterations: int = _MASKED_CG_ITERATIONS,
) -> np.ndarray:
    """The quadratic sub-problem with the clipped pixels' data term dropped, by conjugate
    gradients from ``x_spec``: ``(den - lam K^T C K) x = b`` (``den`` the Fourier-diagonal
    operator of the unmasked problem, C the clipped pixels), preconditioned by ``den``'s exact
    inverse (which alone solves it when nothing is clipped). Spectra in and out (CCS): two FFTs
    per step, inner products by Parseval."""
    k = cv.k
    h, w = cv.shape
    single = (np.array([0, 0, h - 1, h - 1]), np.array([0, w - 1, 0, w - 1]))

    def apply(spec: np.ndarray) -> np.ndarray:
        blurred = fft.idft(fft.mul(spec, k))
        blurred *= clipped
        back = fft.mul(fft.dft(blurred), k, conj_b=True)
        back *= lam
        out = spec * den
        out -= back
        return out

    def dot(a: np.ndarray, b: np.ndarray) -> float:
        # the real-space inner product by Parseval (a constant factor H W aside): CCS entries
        # stand for a frequency and its conjugate, twice, except the four self-conjugate ones
        return 2.0 * float(np.vdot(a, b)) - float((a[single] * b[single]).sum())

    x = x_spec.copy()
    r = b_spec - apply(x)
    z = r / den
    p = z.copy()
    rz = dot(r, z)
    for _ in range(iterations):
        ap = apply(p)
        step = np.float32(rz / max(dot(p, ap), 1e-30))
        x += step * p
        r -= step * ap
        z = r / den
        rz_new = dot(r, z)
        p *= np.float32(rz_new / max(rz, 1e-30))
        p += z
        rz = rz_new
    return x


# ----------------------------------------------------------------------------- Richardson-Lucy
def deconvolve_richardson_lucy(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    strength: float = 50.0,
    iterations: int | None = None,
    damping: float | None = None,
    noise_sigma: float | None = None,
    saturation: float | None = None,
    clip: bool = True,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Damped Richardson-Lucy deconvolution (Poisson likelihood; low-light data).

    Multiplicative updates keep the estimate non-negative. Damping (White 1994) stops the
    update where the residual is already within ``damping`` noise sigmas, which suppresses the
    noise amplification of plain RL.

    Parameters
    ----------
    image : ndarray, float32, (H, W, C), non-negative
    psf : ndarray, 2-D
    strength : float, 0..100, default 50
        Above 50 adds iterations (up to 4x); below 50 blends toward the input.
    iterations : int, optional
        Default 30 at strength 50.
    damping : float, optional
        Residual threshold in noise sigmas; default 2.
    saturation : float, optional
        The data's clipping level, as in :func:`deconvolve_sparse`: on clipped areas the
        estimate, blurred, may exceed the data (which says only "at least this"), so there the
        update only ever raises it (the ratio is kept at 1 or above).
    noise_sigma, clip, progress
        As in :func:`deconvolve_wiener`.

    Returns
    -------
    ndarray, float32, (H, W, C)
    """
    k = _check_inputs(image, psf, strength)
    if strength == 0:
        return image.copy()
    n_iter = iterations if iterations is not None else 30
    n_iter = max(1, round(n_iter * (1 + 3 * max(strength - 50, 0) / 50)))
    sig = _noise_sigma(image, noise_sigma)
    thresh = np.float32((2.0 if damping is None else damping) * sig)
    eps = np.float32(1e-6)

    def solve(canvas, cv: _Canvas, rep):
        y = np.maximum(canvas, eps)
        x = y.copy()
        clipped = None if saturation is None else _clipped_areas(canvas, saturation)
        at_top = None if clipped is None else clipped > 0
        for i in range(n_iter):
            rep(i / n_iter, "Richardson-Lucy")
            est = np.maximum(fft.idft(fft.mul(fft.dft(x), cv.k)), eps)
            ratio = y / est
            if thresh > 0:
                # White's damping: no update where |y - est| is within the noise
                u = (y - est) / thresh
                np.square(u, out=u)
                np.minimum(u, 1.0, out=u)
                ratio -= 1
                ratio *= u
                ratio += 1
            if at_top is not None:  # at least the clipping level: only "too dark" counts
                np.maximum(ratio, np.float32(1.0), out=ratio, where=at_top)
            x *= fft.idft(fft.mul(fft.dft(ratio), cv.k, conj_b=True))
        return x

    out = _per_channel(image, k, solve, progress, "Richardson-Lucy")
    out = _blend_toward_input(image, out, strength)
    return np.clip(out, 0, 1, out=out) if clip else out
