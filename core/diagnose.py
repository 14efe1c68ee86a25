"""Blur diagnosis: what went wrong (motion, camera shake, out of focus, or nothing) and how much.

``diagnose(image)`` picks a well-textured, unsaturated region, estimates the blur kernel there
blindly (:mod:`core.psf_estimate`), and explains it:

* fits the parametric models -- linear motion (length, angle), defocus disk (radius),
  Gaussian (sigma) -- to the estimated kernel; a close fit names the blur and gives clean
  parameters, otherwise the kernel is an arbitrary camera-shake path and is used as is;
* the image's power spectrum tells round blur (defocus, Gaussian: every direction attenuated
  alike) from directional blur (motion, shake) without trusting the kernel's shape, which blind
  estimators get wrong for disks; it also sizes a disk from its zero rings, and its cepstrum
  (the inverse FFT of its log) pins a linear motion's angle and length;
* a linear motion must show its regular zeros in the spectrum (else the streak is looked for at
  any angle, and failing that the blur is a shake path), and a round blur must explain the
  spectrum's ring averages far better than no blur (a shake path spares some directions);
* the spectrum overrides the kernel where it speaks plainly: the cepstrum's deepest line,
  its zeros confirmed, is the motion whatever the kernel looks like, and a spectrum even in
  direction that a round blur explains far better than none is round; between a small disk
  and a Gaussian (whose spectra differ only below the noise) the kernel's two fits decide;
* edges no wider than in a sharp photo, or a kernel no wider than about a pixel, mean the photo
  is already sharp;
* a very long blur is flagged as beyond what deconvolution can recover well.

The result carries the kernel to deblur with, a confidence, the parameters and a one-line
explanation for people. Pure numpy/OpenCV; no file access.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from .color import gray_linear, linear_to_srgb
from .dtype import check_image
from .noise import estimate_noise_sigma
from .progress import ProgressCallback, Reporter
from .psf import defocus_psf, gaussian_psf, motion_psf, normalize_psf
from .psf_estimate import BlindParams, estimate_psf

__all__ = [
    "Diagnosis",
    "diagnose",
    "fit_parametric",
    "edge_width_px",
    "edge_widths_px",
    "spectral_anisotropy",
    "fit_round_spectrum",
    "streak_bend",
    "kernel_frame_mass",
    "kernel_spectrum_consistency",
    "motion_cepstrum",
    "deepest_cepstrum_line",
    "KINDS",
]

KINDS = ("sharp", "motion", "shake", "defocus")
SCHEMA_VERSION = 1

_TOO_BLURRY_PX = 80.0  # blur extent beyond which recovery is poor
# Decision rules on the estimated kernel, tuned on the seeded synthetic set of
# benchmarks/diagnosis.py (estimated kernels are softer than true ones, hence loose fits).
_SHARP_BASE_WIDTH_PX = 2.5  # what the edge-width measure gives on perfectly sharp edges
_SHARP_SPREAD_PX = 0.9  # rms radius of a kernel no wider than a pixel (a Gaussian of sigma 0.64)
_SHARP_EDGE_PX = 7.0  # steepest edges (31-px window) spread less than this: the photo is sharp
# ...unless the power spectrum plainly shows a round blur of at least this size (sigma px,
# a disk counting as radius / 1.75) explaining it this much better than no blur at all. No sharp
# original here (Kodak, McMaster, Set3c/5/12/14, the GoPro sharp frames; 97 photos) fits a
# disk over 1.25 px or a Gaussian over 0.75 px at all, whatever the ratio; disks of radius
# 2.4-3.3 px on busy photos (comic, zebra; seeds 22 and 24) fit 0.034-0.040, so 0.03 called
# them sharp.
_SPECTRUM_BLUR_SIGMA_PX = 1.0
_SPECTRUM_BLUR_FIT = 0.1
_MOTION_ANISOTROPY = 2.45  # edges across the motion this much wider than along it: motion
_SOME_ANISOTROPY = 1.6  # a streak-shaped kernel must also show some directional blur
_MOTION_ELONGATION = 2.3  # sqrt(major/minor variance) of a straight streak
_MOTION_BEND = 0.05  # a streak bending more than this (streak_bend) is a shake path...
_CLEARLY_DIRECTIONAL = 3.0  # ...unless the edges say so plainly (edge anisotropy)
_MOTION_VS_ROUND = 1.7  # a streak fits a line at most this much worse than a disk
_ROUND_ELONGATION = 1.8  # defocus and Gaussian kernels are round
_ROUND_FIT = 0.765  # relative residual to the best disk or Gaussian
# power-spectrum anisotropy (see spectral_anisotropy): round blur leaves only the content's own
# directionality; below the first value the blur is round whatever the kernel estimate says,
# below the second a compact (not elongated) kernel is taken as round, and above the third it
# is not (11 of the 32 real Levin shake captures have compact, disk-like kernel estimates)
# a motion of length L widens the edges across it to about base + 0.6 L (0.42 L at the least
# over the 30 true motions of held-out seeds 9-12); a fitted streak the edges do not show is the
# estimator's artefact along the photo's dominant edges (blur along an edge leaves no trace on it)
_MOTION_EDGE_SUPPORT = 0.35
# ...and the spectrum agrees (true motions gave 1.56 and more: same seeds and 20-22)
_STREAK_SPECTRUM = 1.5
# where a kernel keeps under 2 % of the power, a photo it blurred has lost most of it; keeping
# 90 % of the ring's mean there (log ratio above -0.1) means the kernel is not this photo's blur
# (real photos' good estimates: -0.4 to -1.8; 48 synthetic shake estimates: -0.11 and below)
_KERNEL_INCONSISTENT = -0.1
_FALLBACK_CONFIDENCE = 0.25  # the mild round blur assumed then is a safe guess, not a finding
_ROUND_SPECTRUM = 0.85
# ...or nearly as even in direction while a round blur explains the radial spectrum this many
# times better than no blur (_round_spectrum_gain): whatever the kernel looks like, the blur is
# round. Seeds 1-28 of benchmarks/diagnosis.py: 0 of 448 motions and shake paths (closest:
# 0.85 / 17x, 1.12 / 20x, 1.13 / 22x), 214 of 448 disks and Gaussians, among them six a
# streak-shaped or wrong-sized blind kernel had called shake paths.
_PLAIN_ROUND_SPECTRUM = 1.1
_PLAIN_ROUND_GAIN = 25.0
_COMPACT_SPECTRUM = 1.05
_DIRECTIONAL_SPECTRUM = 1.4  # above this the blur is directional, however round the kernel looks
_USE_MODEL_FIT = 0.6  # deblur with the clean model kernel when it fits this closely
# A blind kernel comes out softer than the blur, the more so the less cleanly it is round: the
# Gaussian fitted to it is scaled by _KERNEL_SIGMA_SCALE[0] - _KERNEL_SIGMA_SCALE[1] x its fit
# residual (0.85-1.05). Seeds 1-28 of benchmarks/diagnosis.py, 214 Gaussians called round:
# true / fitted sigma 1.04 at residual 0-0.3, 0.93 at 0.7-0.8; within 15 % 194 (a constant 0.96)
# -> 201 of 214.
_KERNEL_SIGMA_SCALE = (1.1, 0.26)
# The kernel's disk and Gaussian fits tell a disk from a Gaussian better than the spectrum of a
# small blur can (its zero rings drown in the noise): a disk fitting the kernel at most
# _KERNEL_DISK_EDGE worse than the Gaussian is a disk, sized by the spectrum's zero rings (seeds
# 1-28: 198 of 224 disks, 12 of 224 Gaussians); one fitting it better keeps the kernel's radius
# (real photos: the spectrum sized Köhler's Blurry1_8 and Lai's pietro 1.25 px, the kernel 8.3
# and 4.2). The spectrum's plain disk (below) needs the kernel's fits to agree within
# _KERNEL_DISK_CAP. Round blurs of seeds 1-28 within tolerance 392 -> 405 of 431.
_KERNEL_DISK_EDGE = 0.03
_KERNEL_DISK_CAP = 0.1
# A blind kernel blurs a disk's sharp rim, so a Gaussian often fits it best and sizes it badly
# (2 sigma 35-70 % off the radius). The spectrum keeps the disk's zero rings: a disk that fits
# it this much better than any Gaussian is taken, with the spectrum's radius (seeds 1-4 of
# benchmarks/diagnosis.py: 7 of 8 such disks, no Gaussian taken for a disk).
_SPECTRUM_DISK = 0.3
_SPECTRUM_DISK_WIDE = 0.7  # ...or this much better when no Gaussian up to sigma 5 px fits
_SPECTRUM_SIGMA_MAX_PX = 5.0  # widest Gaussian fit_round_spectrum tries
# A kernel taken for a shake path is a disk after all when the spectrum's zero rings say so this
# plainly (disk residual under this fraction of the Gaussian's; shake and motion cases of seeds
# 1-4: 0.58 at least)
_SPECTRUM_DISK_PLAIN = 0.1
# Linear motion's angle and length are refined where the cepstrum (inverse FFT of the log power
# spectrum) dips: a box of length L puts zeros every 1/L along the motion into the spectrum, a
# negative peak at distance L into the cepstrum. Searched this far around the kernel's reading
# (seeds 1-4 of benchmarks/diagnosis.py, 30 motions called motion: angle within 5 deg and length
# within 15 % 20 -> 27 of them).
_CEPSTRUM_SPAN_DEG = 12.0
_CEPSTRUM_PATCH_PX = 256
# A linear motion of length L leaves zeros every 1/L along it in the photo's spectrum; a line the
# spectrum does not confirm (kernel_spectrum_consistency of the fitted line above this) is not
# the blur. Seeds 1-12 of benchmarks/diagnosis.py: 92 of 96 true motions -1.26 and below (the
# other 4 had the angle 21-33 deg off); shake paths the classifier took for lines -1.54 to
# -0.08, 12 of 14 above -1.2. The line is then looked for at any angle before the blur is called
# a shake path. A kernel that fits a line closely (_USE_MODEL_FIT) is not questioned: the
# shake paths taken for lines fitted one 0.72-2.5, and a clean 18 px streak of held-out seed 15
# tested only -0.94.
_LINE_CONFIRMED = -1.2
# The cepstrum's dip itself confirms a line when it is this deep away from the search's
# shortest lengths, where periodic texture (fences, stripes) dips too. Seeds 1-28 of
# benchmarks/diagnosis.py, the deepest dip over every angle and 6-35 px: 126 of 224 true
# motions (all with angle and length within tolerance there), none of 224 shake paths and 224
# sharp photos (the 13 of those at -0.065 or deeper all sat at 6-7 px).
_CEPSTRUM_LINE = -0.065
_CEPSTRUM_LINE_SHORTEST_PX = 8.0
# The cepstrum's deepest line from 8 px up (deepest_cepstrum_line), when it dips to
# _SPECTRUM_LINE_DIP and the spectrum shows its zeros plainly (kernel_spectrum_consistency at
# most _SPECTRUM_LINE_CONSISTENCY), is the blur, before any rule on the blind kernel. Seeds 1-28
# of benchmarks/diagnosis.py (35 px longest): 183 of 224 true motions, 182 of them with angle
# and length within tolerance there; none of 224 shake paths, 448 disks and Gaussians and 224
# sharp photos (loosest of those: dip -0.02 with -1.5, two Gaussians on one photo).
_SPECTRUM_LINE_DIP = -0.03
_SPECTRUM_LINE_CONSISTENCY = -2.0
# A round blur attenuates every direction alike, so some disk or Gaussian explains the photo's
# radial power spectrum far better than no blur; a shake path attenuates some directions and
# spares others, and the ring averages fit a round blur poorly. Seeds 1-12 of
# benchmarks/diagnosis.py: 184 of 186 true disks and Gaussians called round gained 4.4x and
# more (two Gaussians on the 276-px face photo, sized 24 % and 200 % off, 1.9-2.1x); 8 of the 13
# shake paths called round 1.2-3.3x. Below this gain a blur is not called round.
_ROUND_SPECTRUM_GAIN = 4.0
# The kernel is first estimated in a 35-px frame (most blur, faster and steadier); when more
# than _FRAME_MASS of its mass lies within _FRAME_BAND_PX of the frame, the blur is larger than
# the frame and the kernel is estimated again in the largest frame allowed (max_blur_px).
_FIRST_KERNEL_PX = 35
_FRAME_BAND_PX = 2
_FRAME_MASS = 0.005
# A round blur whose kernel fits no disk or Gaussian closely (relative residual above
# _CLOUDY_ROUND) came out as a cloud: a mild blur estimated in a frame far larger than itself
# spreads speckle over the spare room and the fitted size grows with it (seeds 13-16 of
# benchmarks/diagnosis.py: Gaussians of sigma 2.0-3.2 px sized 37-111 % too wide). Such a
# kernel is estimated again in a _SMALL_KERNEL_PX frame, and that estimate is kept when a round
# model fits it better.
_CLOUDY_ROUND = 0.75
_SMALL_KERNEL_PX = 15


@dataclass(frozen=True)
class Diagnosis:
    """What the blur is. ``kind`` is one of ``KINDS``; ``psf`` is the kernel to deblur with."""

    kind: str
    confidence: float
    params: dict[str, float]
    psf: np.ndarray
    explanation: str
    recoverable: bool
    region: tuple[int, int, int, int]  # x, y, width, height of the analysed crop
    timings_s: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, float] = field(default_factory=dict)  # the measurements behind the call

    @property
    def extent_px(self) -> float:
        """The blur's extent in px: a motion's length, a disk's diameter, a shake path's span
        (0 for a photo found sharp)."""
        return 0.0 if self.kind == "sharp" else _extent_of(self.kind, self.params, self.psf)

    def to_json(self) -> dict:
        """A stable, machine-readable description (schema version 1)."""
        return {
            "schema": SCHEMA_VERSION,
            "type": self.kind,
            "confidence": round(self.confidence, 3),
            "params": {k: round(v, 3) for k, v in self.params.items()},
            "kernel_size_px": list(self.psf.shape),
            "recoverable": self.recoverable,
            "explanation": self.explanation,
            "region": {
                "x": self.region[0],
                "y": self.region[1],
                "width": self.region[2],
                "height": self.region[3],
            },
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
            "evidence": {k: round(v, 3) for k, v in self.evidence.items()},
        }


# ----------------------------------------------------------------------------- kernel moments
def _moments(k: np.ndarray) -> tuple[float, float, float]:
    """(major variance, minor variance, major-axis angle in degrees, CCW from +x, y up)."""
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]].astype(np.float64)
    m = k / k.sum()
    cy, cx = (m * yy).sum(), (m * xx).sum()
    dy, dx = yy - cy, xx - cx
    cov = np.array(
        [[(m * dx * dx).sum(), (m * dx * dy).sum()], [(m * dx * dy).sum(), (m * dy * dy).sum()]]
    )
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[0, 1], vecs[1, 1]
    angle = math.degrees(math.atan2(-vy, vx)) % 180.0
    return float(vals[1]), float(vals[0]), angle


def _residual(k: np.ndarray, model: np.ndarray) -> float:
    """Relative L2 distance between two centred kernels placed on a common canvas."""
    n = max(k.shape[0], model.shape[0])
    a = np.zeros((n, n))
    b = np.zeros((n, n))
    oa, ob = (n - k.shape[0]) // 2, (n - model.shape[0]) // 2
    a[oa : oa + k.shape[0], oa : oa + k.shape[1]] = k
    b[ob : ob + model.shape[0], ob : ob + model.shape[1]] = model
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))


def fit_parametric(psf: np.ndarray) -> dict[str, tuple[float, dict[str, float], np.ndarray]]:
    """Fit linear motion, defocus disk and Gaussian models to a kernel.

    Returns ``{name: (relative residual, params, model kernel)}`` for "motion", "defocus" and
    "gaussian". Starting points come from the kernel's second moments (a segment of length L
    has variance L^2/12 along it; a disk of radius R has mean squared radius R^2/2); a small
    search refines them.
    """
    k = normalize_psf(psf).astype(np.float64)
    major, minor, angle = _moments(k)
    fits: dict[str, tuple[float, dict[str, float], np.ndarray]] = {}

    best = None
    length0 = max(1.0, math.sqrt(12 * max(major - minor, 0.0)) + 1.0)
    for length in np.linspace(0.75 * length0, 1.3 * length0, 12):
        for a in np.linspace(angle - 6, angle + 6, 13):
            if length < 1:
                continue
            m = motion_psf(float(length), float(a))
            r = _residual(k, m)
            if best is None or r < best[0]:
                best = (r, {"length_px": float(length), "angle_deg": float(a % 180)}, m)
    # an estimated kernel is a slightly blurred streak: its length is better read from the
    # plateau of its profile along the streak (area / height) than from the best fit
    angle_best = best[1]["angle_deg"]
    plateau = _streak_length(k, angle_best)
    refined = None
    for length in np.linspace(0.9 * plateau, 1.1 * plateau, 9):
        model = motion_psf(max(1.0, float(length)), angle_best)
        r = _residual(k, model)
        if refined is None or r < refined[0]:
            refined = (r, {"length_px": max(1.0, float(length)), "angle_deg": angle_best}, model)
    fits["motion"] = refined  # type: ignore[assignment]

    radius0 = max(0.5, math.sqrt(2 * (major + minor)))
    fits["defocus"] = _best_round_fit(k, defocus_psf, "radius_px", radius0)
    sigma0 = max(0.3, math.sqrt((major + minor) / 2))
    fits["gaussian"] = _best_round_fit(k, gaussian_psf, "sigma_px", sigma0)
    return fits


def _best_round(fits: dict[str, tuple[float, dict[str, float], np.ndarray]]):
    """The better fitting of fit_parametric's disk and Gaussian (lower residual)."""
    return min(fits["defocus"], fits["gaussian"], key=lambda f: f[0])


def _best_round_fit(k: np.ndarray, make, name: str, start: float):
    """Best (residual, {name: value}, model) for a one-parameter round kernel near ``start``."""
    best = None
    for value in np.linspace(0.7 * start, 1.35 * start, 16):
        model = make(float(value))
        r = _residual(k, model)
        if best is None or r < best[0]:
            best = (r, {name: float(value)}, model)
    return best


def streak_bend(k: np.ndarray) -> float:
    """How far a streak-like kernel bends away from a straight line, relative to its length.

    Along the kernel's major axis (1-px bins), the mass centre across the axis is taken per bin;
    a weighted straight line is fitted to those centres; the result is the weighted rms
    deviation from that line over the streak length (sqrt(12 * major variance)). A straight
    streak, however thick, gives under 0.05; a curved camera-shake path 0.04-0.16.
    """
    m = normalize_psf(k).astype(np.float64)
    major, _, angle = _moments(m)
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]].astype(np.float64)
    cy, cx = (m * yy).sum(), (m * xx).sum()
    a = math.radians(angle)
    along = (xx - cx) * math.cos(a) - (yy - cy) * math.sin(a)
    across = (xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)
    bins = np.round(along).astype(int)
    bins -= bins.min()
    mass = np.bincount(bins.ravel(), m.ravel())
    moment = np.bincount(bins.ravel(), (m * across).ravel())
    keep = mass > 0.02 * mass.max()
    if keep.sum() < 3:
        return 0.0
    centre = moment[keep] / mass[keep]
    weight = mass[keep] / mass[keep].sum()
    pos = np.nonzero(keep)[0].astype(np.float64)
    sw = np.sqrt(weight)
    design = np.stack([pos * sw, sw], axis=1)
    slope, offset = np.linalg.lstsq(design, centre * sw, rcond=None)[0]
    deviation = math.sqrt(float((weight * (centre - slope * pos - offset) ** 2).sum()))
    return deviation / math.sqrt(12 * max(major, 1e-6))


def _streak_length(k: np.ndarray, angle_deg: float) -> float:
    """Length of a streak kernel: its mass over the plateau height of its profile along
    ``angle_deg`` (1-px bins), robust to the soft ends of an estimated kernel."""
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]].astype(np.float64)
    c = (k.shape[0] - 1) / 2
    a = math.radians(angle_deg)
    t = (xx - c) * math.cos(a) - (yy - c) * math.sin(a)
    bins = np.round(t).astype(int)
    bins -= bins.min()
    profile = np.bincount(bins.ravel(), weights=k.ravel())
    body = profile[profile > 0.25 * profile.max()]
    if body.size == 0:
        return 1.0
    height = float(np.median(body))
    return max(1.0, float(profile.sum() / height))


def edge_widths_px(gray_linear: np.ndarray, bins: int = 8) -> np.ndarray:
    """Typical width of the strongest edges per edge orientation, in px (``bins`` over 180 deg).

    A step blurred over w pixels rises by its range over about w pixels, so local range / max
    slope measures w without knowing the kernel (on gamma-encoded values, where photos have
    their contrast). On the steepest 2 % of edges of each orientation, sharp photos give
    3-6.5 px (texture inside the 31-px window adds to the range), blurred ones 7.5 px and more.
    Motion blur widens only the edges across the motion, so the widths per orientation tell
    motion (one direction wide) from defocus (all alike). Bins with too few edges are NaN.
    """
    g = linear_to_srgb(np.clip(gray_linear, 0, 1))
    g = cv2.GaussianBlur(g, (0, 0), 1.0)  # keeps noise from posing as steep slopes
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    se = cv2.getStructuringElement(cv2.MORPH_RECT, (31, 31))
    local_range = cv2.dilate(g, se) - cv2.erode(g, se)
    slope = np.hypot(gx, gy)
    out = np.full(bins, np.nan)
    which = np.minimum(((np.arctan2(gy, gx) % np.pi) / (np.pi / bins)).astype(int), bins - 1)
    for b in range(bins):
        # the steepest edges of each orientation, and how far their step is spread
        sel = (which == b) & (local_range > 0.05)
        if sel.sum() < 200:
            continue
        s_b = slope[sel]
        top = s_b >= np.quantile(s_b, 0.98)
        out[b] = float(np.median(local_range[sel][top] / np.maximum(s_b[top], 1e-6)))
    return out


def edge_width_px(gray_linear: np.ndarray) -> float:
    """Width of the most blurred edge orientation (see :func:`edge_widths_px`), 0 if flat."""
    w = edge_widths_px(gray_linear)
    return float(np.nanmax(w)) if np.isfinite(w).any() else 0.0


def _welch_power(gray_linear: np.ndarray, patch_px: int) -> np.ndarray | None:
    """Power spectrum averaged over Hann-windowed, half-overlapping patches; DC at the centre.
    None when the image is smaller than one patch."""
    g = np.asarray(gray_linear, np.float32)
    p = int(patch_px)
    if min(g.shape) < p:
        return None
    step = p // 2
    patches = np.stack(
        [
            g[y : y + p, x : x + p]
            for y in range(0, g.shape[0] - p + 1, step)
            for x in range(0, g.shape[1] - p + 1, step)
        ]
    )
    patches -= patches.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(p), np.hanning(p)).astype(np.float32)
    power = (np.abs(np.fft.fft2(patches * window)) ** 2).mean(axis=0)
    return np.fft.fftshift(power).astype(np.float64)


def _rings(p: int) -> np.ndarray:
    """Ring index (radius in frequency bins, rounded) of each bin of a centred p x p spectrum."""
    yy, xx = np.mgrid[:p, :p]
    return np.round(np.hypot(yy - p // 2, xx - p // 2)).astype(int)


def _radial_mean(a: np.ndarray) -> np.ndarray:
    """Mean of a centred square spectrum over 1-px rings (index = radius in frequency bins)."""
    rings = _rings(a.shape[0]).ravel()
    return np.bincount(rings, a.ravel()) / np.bincount(rings)


def _otf2(psf: np.ndarray, p: int) -> np.ndarray:
    """|OTF|^2 of a kernel (normalised, centred) on a p x p grid, DC at the centre."""
    k = np.asarray(psf, np.float64)
    h, w = k.shape
    grid = np.zeros((p, p))
    grid[:h, :w] = k / max(float(k.sum()), 1e-12)
    grid = np.roll(grid, (-(h // 2), -(w // 2)), axis=(0, 1))
    return np.fft.fftshift(np.abs(np.fft.fft2(grid)) ** 2)


@functools.lru_cache(maxsize=4)
def _round_otf_profiles(p: int) -> tuple[tuple[str, float, np.ndarray], ...]:
    """Radial |OTF|^2 profiles of no blur, the disk (radius 1-10 px) and Gaussian (sigma
    0.5-5 px) models on a ``p``-px grid."""
    out = []
    models = [("none", 0.0, None)]
    models += [("radius_px", float(r), defocus_psf) for r in np.arange(1.0, 10.01, 0.25)] + [
        ("sigma_px", float(s), gaussian_psf)
        for s in np.arange(0.5, _SPECTRUM_SIGMA_MAX_PX + 0.01, 0.125)
    ]
    for name, value, make in models:
        if make is None:  # no blur: |H|^2 = 1
            out.append((name, value, np.ones(p)))
            continue
        out.append((name, value, _radial_mean(_otf2(make(value), p))))
    return tuple(out)


def fit_round_spectrum(
    gray_linear: np.ndarray, patch_px: int = 128
) -> dict[str, tuple[float, float]]:
    """Fit defocus-disk and Gaussian blurs to the image's radial power spectrum.

    Model: ``P(f) = A f^-alpha |H(f)|^2 + N`` (natural-image falloff, the blur's OTF, white
    noise); N from the highest frequencies, alpha from a small grid, A in closed form; the
    residual is the mean squared log error between 2 % and 45 % of the sampling rate. A disk's
    OTF has zero rings, which pin its radius to a few percent wherever they rise above the
    noise (on true disks of the synthetic set: 48 of 48 within 15 %); a Gaussian's spectrum
    has none, so a disk about 1.4 sigma wide fits it too. Returns
    ``{"none": (residual, 0.0), "radius_px": (residual, radius), "sigma_px": (residual,
    sigma)}``, the best of each model; empty when the image is smaller than one patch.
    """
    power = _welch_power(gray_linear, patch_px)
    if power is None:
        return {}
    p = power.shape[0]
    profile = _radial_mean(power)
    lo, hi = 3, int(0.45 * p)
    noise = float(np.median(profile[int(0.42 * p) : p // 2]))
    freq = np.arange(lo, hi) / p
    y = np.log(np.maximum(profile[lo:hi], 1e-30))
    best: dict[str, tuple[float, float]] = {}
    for name, value, otf2 in _round_otf_profiles(p):
        h2 = np.maximum(otf2[lo:hi], 1e-4)
        for alpha in (1.6, 2.0, 2.4, 2.8):
            base = freq**-alpha * h2
            amp = float(np.exp(np.median(y - np.log(base))))
            for _ in range(3):
                amp *= float(np.exp(np.mean(y - np.log(amp * base + noise))))
            residual = float(np.mean((y - np.log(amp * base + noise)) ** 2))
            if name not in best or residual < best[name][0]:
                best[name] = (residual, value)
    return best


def spectral_anisotropy(gray_linear: np.ndarray, patch_px: int = 128) -> float | None:
    """How much the blur depends on direction, read off the image's power spectrum.

    The log power spectrum (Hann-windowed ``patch_px`` patches, half overlapping, averaged) is
    averaged in 12 direction bins on rings between 6 % and 40 % of the sampling rate; the
    result is the mean over rings of (strongest - weakest direction), in natural-log units.
    A defocus disk or a Gaussian attenuates every direction alike, so only the content's own
    directionality remains (0.3-1.2 on photos); motion and camera shake remove frequencies
    along their path and give 1.2-4. It needs no kernel estimate, which is its point: blind
    estimators recover disks poorly. None when the region is smaller than one patch (the
    thresholds hold for 128-px patches; the diagnosis then relies on the kernel alone).
    """
    power = _welch_power(gray_linear, patch_px)
    if power is None:
        return None
    p = power.shape[0]
    log_power = np.log(power + 1e-12)
    c = p // 2
    yy, xx = np.mgrid[:p, :p]
    radius = np.hypot(yy - c, xx - c)
    direction = np.minimum(((np.arctan2(yy - c, xx - c) % np.pi) / (np.pi / 12)).astype(int), 11)
    spans = []
    for r0 in range(int(0.0625 * p), int(0.4 * p), max(1, p // 32)):
        ring = (radius >= r0) & (radius < r0 + max(1, p // 32))
        sums = np.bincount(direction[ring], log_power[ring], minlength=12)
        counts = np.bincount(direction[ring], minlength=12)
        if (counts == 0).any():
            continue
        means = sums / counts
        spans.append(means.max() - means.min())
    return float(np.mean(spans)) if spans else None


def _clean_for_shape(psf: np.ndarray) -> np.ndarray:
    """Keep the kernel's main body: values above 10 % of the peak, largest connected piece."""
    k = np.where(psf < 0.1 * psf.max(), 0.0, psf.astype(np.float64))
    n, labels = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    if n > 2:
        masses = [k[labels == i].sum() for i in range(1, n)]
        k = np.where(labels == 1 + int(np.argmax(masses)), k, 0.0)
    return k / k.sum()


# ----------------------------------------------------------------------------- region
def _gray_linear(image: np.ndarray, linear_input: bool) -> np.ndarray:
    return gray_linear(image, encoded=not linear_input)


def _pick_region(gray: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """The ``side``-px square with the most edge detail and few clipped pixels."""
    h, w = gray.shape
    if h <= side and w <= side:
        return 0, 0, w, h
    side_y, side_x = min(side, h), min(side, w)
    scale = max(1, int(max(h, w) // 512))
    small = gray[::scale, ::scale]
    g = np.abs(cv2.Sobel(small, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(small, cv2.CV_32F, 0, 1))
    clipped = ((small > 0.98) | (small < 0.002)).astype(np.float32)
    wy, wx = max(1, side_y // scale), max(1, side_x // scale)
    score = cv2.boxFilter(g, -1, (wx, wy), normalize=True)
    clip_frac = cv2.boxFilter(clipped, -1, (wx, wy), normalize=True)
    score = np.where(clip_frac > 0.02, score * 0.1, score)
    # only windows fully inside the image
    hy, hx = wy // 2, wx // 2
    inner = score[hy : small.shape[0] - (wy - hy) + 1, hx : small.shape[1] - (wx - hx) + 1]
    iy, ix = np.unravel_index(int(np.argmax(inner)), inner.shape)
    y0 = min(h - side_y, iy * scale)
    x0 = min(w - side_x, ix * scale)
    return int(x0), int(y0), int(side_x), int(side_y)


def _around(gray: np.ndarray, region: tuple[int, int, int, int], side: int) -> np.ndarray:
    """A ``side``-px square of ``gray`` centred on ``region`` (the whole image if smaller)."""
    h, w = gray.shape
    x0, y0, rw, rh = region
    cy, cx = y0 + rh // 2, x0 + rw // 2
    ya = min(max(0, cy - side // 2), max(0, h - side))
    xa = min(max(0, cx - side // 2), max(0, w - side))
    return gray[ya : ya + side, xa : xa + side]


# ----------------------------------------------------------------------------- diagnosis
def diagnose(
    image: np.ndarray,
    *,
    max_blur_px: int = 69,
    region_px: int = 512,
    linear_input: bool = False,
    mode: str = "auto",
    progress: ProgressCallback | None = None,
) -> Diagnosis:
    """Find out what blurred a photo.

    Parameters
    ----------
    image : ndarray, any supported dtype, (H, W) or (H, W, C)
    max_blur_px : int, default 69
        Largest blur extent considered (the kernel side). The kernel is estimated in a 35-px
        frame first, and in this one when the blur runs past that frame
        (:func:`kernel_frame_mass`; the evidence's ``kernel_frame_mass``).
    region_px : int, default 512
        Side of the analysed square (picked where the image has the most edge detail).
    linear_input : bool
        The data is already linear light.
    mode : {"auto", "motion", "shake", "focus"}
        Force a family: "motion" reports the best linear motion, "focus" the best disk, and
        "shake" keeps the free-form kernel.
    progress : callable, optional

    Returns
    -------
    Diagnosis
    """
    check_image(image)
    if mode not in ("auto", "motion", "shake", "focus"):
        msg = f"mode must be auto, motion, shake or focus, got {mode!r}"
        raise ValueError(msg)
    rep = Reporter(progress)
    t0 = time.perf_counter()
    gray = _gray_linear(image, linear_input)
    largest = int(max_blur_px) | 1
    size = min(_FIRST_KERNEL_PX, largest)
    side = max(region_px, 4 * largest)
    x0, y0, w, h = _pick_region(gray, side)
    crop = gray[y0 : y0 + h, x0 : x0 + w].astype(np.float64)
    if min(crop.shape) < max(16, 2 * 3):
        msg = (
            f"the image is too small to analyse ({gray.shape[1]}x{gray.shape[0]} px); "
            "it needs at least 16x16 px"
        )
        raise ValueError(msg)
    fits_crop = (min(crop.shape) // 2 - 1) | 1
    size, largest = min(size, fits_crop), min(largest, fits_crop)
    widths = edge_widths_px(_around(gray, (x0, y0, w, h), 2048))
    width = float(np.nanmax(widths)) if np.isfinite(widths).any() else 0.0
    finite = widths[np.isfinite(widths)]
    base = _SHARP_BASE_WIDTH_PX
    anisotropy = 1.0
    if finite.size:
        anisotropy = float((finite.max() - base) / max(finite.min() - base, 0.25))
    t1 = time.perf_counter()
    round_fits = fit_round_spectrum(crop)
    if mode == "auto" and width < _SHARP_EDGE_PX and not _spectrum_sees_blur(round_fits):
        rep(1.0, "done")
        text = (
            f"No significant blur found: the strongest edges rise over {width:.1f} px, "
            "as in a sharp photo."
        )
        return _sharp(
            _confidence(_SHARP_EDGE_PX - width, 0.3),
            width,
            text,
            (x0, y0, w, h),
            {"region": t1 - t0},
            {"edge_width_px": width, "edge_anisotropy": anisotropy},
        )
    spectrum = spectral_anisotropy(crop)
    # the kernel's shape names and sizes the blur: estimated at full resolution even when noisy
    shape_params = BlindParams(noisy_sigma=math.inf)
    may_grow = largest > size
    psf = estimate_psf(
        crop, size, params=shape_params, progress=rep.sub(0.0, 0.45 if may_grow else 0.9)
    )
    at_frame = kernel_frame_mass(psf) if may_grow else None
    if at_frame is not None and at_frame > _FRAME_MASS:
        # the blur runs past the kernel's frame (cut off there): estimated again, larger
        size = largest
        psf = estimate_psf(crop, size, params=shape_params, progress=rep.sub(0.45, 0.9))
    t2 = time.perf_counter()
    body = _clean_for_shape(psf)
    major, minor, _ = _moments(body)
    spread = math.sqrt(major + minor)
    fits = fit_parametric(body)
    t3 = time.perf_counter()
    timings = {"region": t1 - t0, "kernel": t2 - t1, "fit": t3 - t2}
    region = (x0, y0, w, h)
    elongation = math.sqrt(major / max(minor, 1e-3))
    bend = streak_bend(body)
    if mode == "auto" and spread < _SHARP_SPREAD_PX:
        # soft-looking content (wide edges) but the kernel is a point: nothing to undo
        rep(1.0, "done")
        text = (
            f"No significant blur found: the estimated blur spreads over only {spread:.1f} px "
            f"(edges rise over {width:.1f} px because the subject itself is soft)."
        )
        return _sharp(
            _confidence(_SHARP_SPREAD_PX - spread, 0.2),
            width,
            text,
            region,
            timings,
            {"edge_width_px": width, "edge_anisotropy": anisotropy, "kernel_spread_px": spread},
        )
    candidates = {"motion": fits["motion"], "defocus": _best_round(fits)}
    motion_fit, round_fit = candidates["motion"][0], candidates["defocus"][0]
    # a straight motion the photo's spectrum shows plainly is named and sized from the
    # spectrum, whatever the blind kernel looks like
    plain_line = _spectrum_line(crop, body, size) if mode == "auto" else None
    round_gain = _round_spectrum_gain(round_fits)
    round_explained = round_gain is None or round_gain >= _ROUND_SPECTRUM_GAIN
    if mode == "motion":
        kind = "motion"
    elif mode == "focus":
        kind = "defocus"
    elif mode == "shake":
        kind = "shake"
    elif plain_line is not None:
        kind = "motion"
        candidates["motion"] = plain_line[0]
    elif spectrum is not None and (
        (spectrum < _ROUND_SPECTRUM and round_explained)
        or (
            spectrum < _PLAIN_ROUND_SPECTRUM
            and round_gain is not None
            and round_gain >= _PLAIN_ROUND_GAIN
        )
    ):
        kind = "defocus"
    elif (bend < _MOTION_BEND or anisotropy >= _CLEARLY_DIRECTIONAL) and (
        anisotropy >= _MOTION_ANISOTROPY
        or (
            elongation >= _MOTION_ELONGATION
            and motion_fit < _MOTION_VS_ROUND * round_fit
            and anisotropy >= _SOME_ANISOTROPY
        )
    ):
        kind = "motion"
    elif (
        elongation < _ROUND_ELONGATION
        and round_explained
        and (spectrum is None or spectrum < _DIRECTIONAL_SPECTRUM)
        and (round_fit <= _ROUND_FIT or (spectrum is not None and spectrum < _COMPACT_SPECTRUM))
    ):
        kind = "defocus"
    else:
        kind = "shake"
    small_fit = None
    kernel_fits = fits
    if mode in ("auto", "focus") and kind == "defocus" and round_fit > _CLOUDY_ROUND:
        small = min(_SMALL_KERNEL_PX, size)
        if small < size:
            small_body = _clean_for_shape(estimate_psf(crop, small, params=shape_params))
            small_fits = fit_parametric(small_body)
            best_small = _best_round(small_fits)
            small_fit = best_small[0]
            if small_fit < round_fit:
                body, candidates["defocus"], kernel_fits = small_body, best_small, small_fits
    note = ""
    dip = None
    from_spectrum = disk_sized = False
    if mode in ("auto", "focus") and kind == "defocus" and "sigma_px" in candidates["defocus"][1]:
        # (a disk that fits the kernel better than the Gaussian keeps the kernel's radius)
        edge = kernel_fits["defocus"][0] - kernel_fits["gaussian"][0]
        disk = _disk_from_spectrum(round_fits, body, kernel_edge=edge)
        if disk is not None:
            candidates["defocus"], disk_sized = disk, True
    elif mode == "auto" and kind == "shake":
        disk = _disk_from_spectrum(round_fits, body, _SPECTRUM_DISK_PLAIN, wide=False)
        if disk is not None:
            kind, candidates["defocus"], disk_sized = "defocus", disk, True
    if mode == "auto" and kind == "motion" and plain_line is None:
        length = candidates["motion"][1]["length_px"]
        support = (width - base) / max(length, 1e-6)
        if support < _MOTION_EDGE_SUPPORT and (spectrum is None or spectrum < _STREAK_SPECTRUM):
            round_blur = _round_blur_from_spectrum(round_fits)
            if round_blur is not None:
                kind, from_spectrum = "defocus", True
                candidates["defocus"] = round_blur
                note = (
                    f" (A {length:.0f} px streak in the estimated kernel was not taken as motion: "
                    f"no edge is widened that much, the widest spread over {width:.1f} px.)"
                )
    line_consistency = None
    if plain_line is not None:
        _, dip, line_consistency = plain_line
    elif kind == "motion":  # (the streak test above is about the kernel's own streak)
        candidates["motion"], dip = _motion_from_cepstrum(crop, body, candidates["motion"])
    if mode == "auto" and kind == "motion" and plain_line is None:
        line_consistency = kernel_spectrum_consistency(crop, candidates["motion"][2])
        # (a kernel that is itself a clean straight streak is kept whatever the test says)
        if motion_fit > _USE_MODEL_FIT and (
            line_consistency is None or line_consistency > _LINE_CONFIRMED
        ):
            # the kernel's reading may be off (a blind kernel can miss a long streak's angle);
            # the spectrum's zeros of a line at any angle, else the blur is not a line
            wide, wide_dip = _motion_from_cepstrum(
                crop, body, candidates["motion"], span_deg=90.0, lengths_px=(6.0, float(size))
            )
            wide_consistency = kernel_spectrum_consistency(crop, wide[2])
            if (wide_consistency is not None and wide_consistency <= _LINE_CONFIRMED) or (
                _plain_cepstrum_line(wide, wide_dip)
            ):
                candidates["motion"], dip, line_consistency = wide, wide_dip, wide_consistency
            else:
                kind = "shake"
                note = (
                    " (The kernel looks like a streak, but the photo's spectrum lacks a straight "
                    "motion's regular zeros: taken as a camera-shake path.)"
                )
    if kind == "defocus" and not from_spectrum and "sigma_px" in candidates["defocus"][1]:
        residual, fitted, _ = candidates["defocus"]
        scale = _KERNEL_SIGMA_SCALE[0] - _KERNEL_SIGMA_SCALE[1] * residual
        sigma = fitted["sigma_px"] * min(max(scale, 0.85), 1.05)
        candidates["defocus"] = (residual, {"sigma_px": sigma}, gaussian_psf(sigma))
    if kind == "shake":
        params = {"extent_px": _extent(psf), "spread_px": spread, "edge_width_px": width}
        kernel = psf
        if estimate_noise_sigma(crop.astype(np.float32)) >= BlindParams.noisy_sigma:
            # to restore a noisy photo, the kernel estimated a level coarser does better
            # (benchmarks/blind_synthetic.py, 1 % noise, seeds 0-2: success 75/54/54 % ->
            # 75/75/71 %)
            kernel = estimate_psf(crop, size)
        conf = (
            1.0
            if mode != "auto"
            else min(
                _confidence(round_fit - _ROUND_FIT, 0.05),
                1.0 if spectrum is None else _confidence(spectrum - _COMPACT_SPECTRUM, 0.3),
            )
        )
    else:
        residual, params, kernel = candidates[kind]
        if residual > _USE_MODEL_FIT and not (from_spectrum or disk_sized or plain_line):
            # the name and parameters describe the blur; the estimated kernel's main body
            # restores it better than a model it only roughly follows (a curved streak)
            kernel = body
        params = {**params, "edge_width_px": width}
        if mode != "auto":
            conf = 1.0
        elif from_spectrum:  # as sure as the streak is unsupported
            conf = _confidence(_MOTION_EDGE_SUPPORT - support, 0.1)
        elif plain_line is not None:  # as sure as the spectrum's zeros are plain
            conf = _confidence(_SPECTRUM_LINE_CONSISTENCY - plain_line[2], 0.5)
        elif kind == "motion":
            by_kernel = min(
                _confidence(elongation - _MOTION_ELONGATION, 0.5),
                _confidence(_MOTION_VS_ROUND * round_fit - motion_fit, 0.3),
            )
            conf = min(
                max(by_kernel, _confidence(anisotropy - _MOTION_ANISOTROPY, 0.5)),
                max(
                    _confidence(_MOTION_BEND - bend, 0.02),
                    _confidence(anisotropy - _CLEARLY_DIRECTIONAL, 0.5),
                ),
            )
        else:
            by_kernel = min(
                _confidence(_ROUND_ELONGATION - elongation, 0.3),
                _confidence(_ROUND_FIT - residual, 0.05),
            )
            if spectrum is not None:
                by_kernel = max(by_kernel, _confidence(_ROUND_SPECTRUM - spectrum, 0.3))
            conf = by_kernel
    consistency = None
    if mode == "auto" and kind in ("motion", "shake"):
        consistency = kernel_spectrum_consistency(crop, kernel)
        fallback = None
        if consistency is not None and consistency > _KERNEL_INCONSISTENT:
            # a disk whose zero rings the spectrum shows plainly, else the safe mild Gaussian
            fallback = _disk_from_spectrum(round_fits, body, wide=False)
            fallback = fallback or _round_blur_from_spectrum(round_fits, ("sigma_px",))
        if fallback is not None:
            _, round_params, kernel = fallback
            assumed = (
                "The spectrum's zero rings show a defocus disk instead."
                if "radius_px" in round_params
                else "A mild Gaussian blur was assumed instead."
            )
            note = (
                f" The {kind} kernel estimated here was not used: the photo keeps detail at "
                "frequencies it would remove, so it is not this photo's blur (deconvolving "
                f"with it would stripe the image). {assumed}"
            )
            kind = "defocus"
            params = {**round_params, "edge_width_px": width}
            conf = _FALLBACK_CONFIDENCE
    extent = _extent_of(kind, params, psf)
    recoverable = extent <= _TOO_BLURRY_PX
    text = _explain(kind, params, extent, recoverable) + note
    rep(1.0, "done")
    evidence = {
        "edge_width_px": width,
        "edge_anisotropy": anisotropy,
        "elongation": elongation,
        "motion_fit": motion_fit,
        "round_fit": round_fit,
        "streak_bend": bend,
    }
    if spectrum is not None:
        evidence["spectrum_anisotropy"] = spectrum
    if consistency is not None:
        evidence["kernel_consistency"] = consistency
    if at_frame is not None:
        evidence["kernel_frame_mass"] = at_frame
    if small_fit is not None:
        evidence["small_frame_round_fit"] = small_fit
    if dip is not None:
        evidence["cepstrum_dip"] = dip
    if line_consistency is not None:
        evidence["line_consistency"] = line_consistency
    return Diagnosis(
        kind, conf, params, kernel.astype(np.float32), text, recoverable, region, timings, evidence
    )


def kernel_frame_mass(psf: np.ndarray, band_px: int = _FRAME_BAND_PX) -> float:
    """Share of the kernel's mass within ``band_px`` of its frame.

    A blur wider than the kernel's frame is cut off there: the estimate puts the part it can
    still explain against the frame, or spreads into a cloud that fills it. A kernel that fits
    its frame leaves the outer band empty (the estimator centres it on its mass).
    """
    k = np.clip(np.asarray(psf, np.float64), 0, None)
    total = float(k.sum())
    b = int(band_px)
    if total <= 0 or min(k.shape) <= 2 * b:
        return 0.0
    inner = float(k[b:-b, b:-b].sum())
    return (total - inner) / total


def kernel_spectrum_consistency(
    gray_linear: np.ndarray, psf: np.ndarray, patch_px: int = 128
) -> float | None:
    """Does the photo's power spectrum show the kernel's zeros? Negative: yes; near 0: no.

    Where the kernel's |OTF|^2 is below 2 %, a photo it blurred has lost that power (down to
    the noise floor). Per ring (6-40 % of the sampling rate, where the photo is well above its
    noise floor), the power there is compared with the whole ring's; the result is the weighted
    mean log ratio. A wrong estimate (a noise-driven speckle cloud, a streak along the photo's
    edges) puts zeros where the photo still has detail, and deconvolving amplifies that detail
    into stripes. None below one patch, or when the kernel has no such zeros in those rings.
    """
    power = _welch_power(gray_linear, patch_px)
    p = int(patch_px)
    if power is None or max(psf.shape) > p:
        return None
    otf2 = _otf2(psf, p)
    rings = _rings(p)
    noise = float(np.median(power[(rings >= int(0.42 * p)) & (rings <= p // 2)]))
    logs, weights = [], []
    for r in range(int(0.06 * p), int(0.4 * p)):
        on = rings == r
        ring_mean = float(power[on].mean())
        zeros = on & (otf2 < 0.02)
        n = int(zeros.sum())
        if ring_mean < 4 * noise or n < 3 or n > 0.8 * on.sum():
            continue
        kept = max(float(power[zeros].mean()) - noise, 1e-3 * noise)
        logs.append(math.log(kept / (ring_mean - noise)))
        weights.append(n)
    if not logs:
        return None
    return float(np.average(logs, weights=weights))


def _round_blur_from_spectrum(
    fits: dict[str, tuple[float, float]], models: tuple[str, ...] = ("radius_px", "sigma_px")
) -> tuple[float, dict[str, float], np.ndarray] | None:
    """The disk or Gaussian that best explains the power spectrum (``fits`` from
    fit_round_spectrum), as ``(residual, params, kernel)`` like fit_parametric; None when the
    photo was smaller than one 128-px patch."""
    if not fits:
        return None
    name = min(models, key=lambda n: fits[n][0])
    residual, value = fits[name]
    make = defocus_psf if name == "radius_px" else gaussian_psf
    return residual, {name: value}, make(value)


def _line_cepstrum(
    gray_linear: np.ndarray, angles_deg: np.ndarray, radii_px: np.ndarray
) -> np.ndarray | None:
    """The photo's cepstrum (inverse FFT of the log power spectrum, natural-image falloff
    taken out) sampled at ``radii_px`` along each of ``angles_deg``: shape (angles, radii).
    A box of length L puts zeros every 1/L along the motion into the spectrum, a negative peak
    at distance L into the cepstrum. None when the image is smaller than one 128-px patch."""
    power = _welch_power(gray_linear, _CEPSTRUM_PATCH_PX)
    if power is None:
        power = _welch_power(gray_linear, _CEPSTRUM_PATCH_PX // 2)
    if power is None:
        return None
    p = power.shape[0]
    radii_px = radii_px[radii_px <= p / 2 - 2]
    if radii_px.size == 0:
        return None
    log_power = np.log(power + 1e-12)
    log_power -= _radial_mean(log_power)[_rings(p)]  # natural-image falloff out
    cep = np.fft.fftshift(np.real(np.fft.ifft2(np.fft.ifftshift(log_power)))).astype(np.float32)
    t = np.radians(angles_deg)[:, None]
    # angle CCW from +x with y up: the dip sits at (r cos t, -r sin t) from the centre
    map_x = (p // 2 + radii_px[None, :] * np.cos(t)).astype(np.float32)
    map_y = (p // 2 - radii_px[None, :] * np.sin(t)).astype(np.float32)
    return cv2.remap(cep, map_x, map_y, cv2.INTER_LINEAR)


def motion_cepstrum(
    gray_linear: np.ndarray,
    angle_deg: float,
    length_px: float,
    span_deg: float = 12.0,
    lengths_px: tuple[float, float] | None = None,
) -> tuple[float, float, float] | None:
    """Where the photo's cepstrum dips near a linear motion of ``angle_deg`` / ``length_px``.

    Returns ``(angle_deg, length_px, dip)``: angle within ``span_deg`` and length within
    0.6-1.4x of the given ones (or within ``lengths_px``, (shortest, longest), when given);
    ``dip`` is the cepstrum's value there (more negative: plainer). None when the image is
    smaller than one 128-px patch.
    """
    angles = np.arange(angle_deg - span_deg, angle_deg + span_deg + 1e-6, 0.5)
    # motion_psf(L) sweeps a segment of L - 1 px (its bilinear splat adds the last pixel), so
    # its zeros fall every 1 / (L - 1): the dip of length L sits at radius L - 1
    shortest, longest = lengths_px or (0.6 * length_px, 1.4 * length_px)
    radii = np.arange(max(2.0, shortest - 1), longest - 1 + 1e-6, 0.25)
    values = _line_cepstrum(gray_linear, angles, radii)
    if values is None:
        return None
    i, j = np.unravel_index(int(np.argmin(values)), values.shape)
    return float(angles[i] % 180.0), float(radii[j] + 1.0), float(values[i, j])


def deepest_cepstrum_line(
    gray_linear: np.ndarray, longest_px: float, shortest_px: float = _CEPSTRUM_LINE_SHORTEST_PX
) -> tuple[float, float, float] | None:
    """The deepest local minimum of the cepstrum over every angle and lengths from
    ``shortest_px`` to ``longest_px``, as ``(angle_deg, length_px, dip)`` (see
    motion_cepstrum). Lengths from 5 px are searched so that periodic texture dipping at the
    shortest lengths is not taken for a minimum at ``shortest_px``; None when there is none or
    the image is smaller than one 128-px patch."""
    angles = np.arange(0.0, 180.0, 0.5)
    radii = np.arange(4.0, longest_px - 1 + 1e-6, 0.25)
    values = _line_cepstrum(gray_linear, angles, radii)
    if values is None:
        return None
    n = values.shape[0]
    wrapped = np.vstack([values[-10:], values, values[:10]])  # the angle wraps at 180 deg
    lowest = cv2.erode(wrapped, np.ones((11, 9), np.uint8))[10 : 10 + n]
    lengths = radii[: values.shape[1]] + 1.0
    ii, jj = np.nonzero((values <= lowest) & (lengths[None, :] >= shortest_px))
    if ii.size == 0:
        return None
    k = int(np.argmin(values[ii, jj]))
    return float(angles[ii[k]]), float(lengths[jj[k]]), float(values[ii[k], jj[k]])


def _motion_from_cepstrum(
    crop: np.ndarray,
    body: np.ndarray,
    fit: tuple[float, dict[str, float], np.ndarray],
    span_deg: float = _CEPSTRUM_SPAN_DEG,
    lengths_px: tuple[float, float] | None = None,
) -> tuple[tuple[float, dict[str, float], np.ndarray], float | None]:
    """The kernel's motion fit with angle and length read off the cepstrum (within
    ``span_deg`` of the fit's angle, lengths as motion_cepstrum), and the cepstrum's dip there;
    the fit unchanged and None when the photo is too small."""
    found = motion_cepstrum(
        crop, fit[1]["angle_deg"], fit[1]["length_px"], span_deg, lengths_px=lengths_px
    )
    if found is None:
        return fit, None
    angle, length, dip = found
    model = motion_psf(length, angle)
    residual = _residual(normalize_psf(body).astype(np.float64), model)
    return (residual, {"length_px": length, "angle_deg": angle}, model), dip


def _spectrum_line(
    crop: np.ndarray, body: np.ndarray, longest_px: float
) -> tuple[tuple[float, dict[str, float], np.ndarray], float, float] | None:
    """The cepstrum's deepest line (deepest_cepstrum_line) when it dips to _SPECTRUM_LINE_DIP
    and the photo's spectrum shows that line's zeros (kernel_spectrum_consistency at most
    _SPECTRUM_LINE_CONSISTENCY): ``((residual against the estimated kernel, params, motion
    kernel), dip, consistency)``; else None."""
    found = deepest_cepstrum_line(crop, longest_px)
    if found is None or found[2] > _SPECTRUM_LINE_DIP:
        return None
    angle, length, dip = found
    model = motion_psf(length, angle)
    consistency = kernel_spectrum_consistency(crop, model)
    if consistency is None or consistency > _SPECTRUM_LINE_CONSISTENCY:
        return None
    residual = _residual(normalize_psf(body).astype(np.float64), model)
    return (residual, {"length_px": length, "angle_deg": angle}, model), dip, consistency


def _plain_cepstrum_line(
    fit: tuple[float, dict[str, float], np.ndarray], dip: float | None
) -> bool:
    """The photo's cepstrum dips deep enough at ``fit``'s line (``dip`` from motion_cepstrum) to
    call it a linear motion whatever the zero-ring test says."""
    return (
        dip is not None
        and dip <= _CEPSTRUM_LINE
        and fit[1]["length_px"] >= _CEPSTRUM_LINE_SHORTEST_PX
    )


def _disk_from_spectrum(
    fits: dict[str, tuple[float, float]],
    body: np.ndarray,
    ratio: float = _SPECTRUM_DISK,
    wide: bool = True,
    kernel_edge: float | None = None,
) -> tuple[float, dict[str, float], np.ndarray] | None:
    """The spectrum's disk (``fits`` from fit_round_spectrum) when its residual is under
    ``ratio`` times the best Gaussian's (with ``wide``, also under _SPECTRUM_DISK_WIDE times it
    when no Gaussian up to the widest tried fits), as ``(residual against the estimated kernel,
    params, kernel)``; else None. With ``kernel_edge`` (the kernel's disk fit residual less its
    Gaussian's), taken when that is under _KERNEL_DISK_EDGE, and only when it is under
    _KERNEL_DISK_CAP otherwise."""
    if not fits:
        return None
    disk_res, radius = fits["radius_px"]
    gauss_res, sigma = fits["sigma_px"]
    clear = disk_res < ratio * gauss_res or (
        wide and sigma >= _SPECTRUM_SIGMA_MAX_PX and disk_res < _SPECTRUM_DISK_WIDE * gauss_res
    )
    if kernel_edge is not None:
        clear = kernel_edge < _KERNEL_DISK_EDGE or (clear and kernel_edge < _KERNEL_DISK_CAP)
    if clear:
        model = defocus_psf(radius)
        residual = _residual(normalize_psf(body).astype(np.float64), model)
        return residual, {"radius_px": radius}, model
    return None


def _round_spectrum_gain(fits: dict[str, tuple[float, float]]) -> float | None:
    """How many times better the best disk or Gaussian explains the radial power spectrum
    than no blur at all (residual ratio, see fit_round_spectrum); None without a spectrum."""
    if not fits:
        return None
    best = min(fits["radius_px"][0], fits["sigma_px"][0])
    return float(fits["none"][0] / max(best, 1e-12))


def _spectrum_sees_blur(fits: dict[str, tuple[float, float]]) -> bool:
    """Edges can look sharp after a mild Gaussian-like blur (small sigma, strong contrast);
    its spectrum (``fits`` from fit_round_spectrum) cannot: no blur at all fits it far worse
    than the blur does."""
    if not fits:
        return False
    none_fit = fits["none"][0]
    for name, (residual, size) in fits.items():
        sigma = size / 1.75 if name == "radius_px" else size
        if (
            name != "none"
            and sigma >= _SPECTRUM_BLUR_SIGMA_PX
            and (residual < _SPECTRUM_BLUR_FIT * none_fit)
        ):
            return True
    return False


def _sharp(
    conf: float,
    width: float,
    text: str,
    region: tuple[int, int, int, int],
    timings: dict[str, float],
    evidence: dict[str, float],
) -> Diagnosis:
    return Diagnosis(
        "sharp",
        conf,
        {"edge_width_px": width},
        np.ones((1, 1), np.float32),
        text,
        True,
        region,
        timings,
        evidence,
    )


def _confidence(margin: float, scale: float) -> float:
    return float(1.0 / (1.0 + math.exp(-margin / max(scale, 1e-6) * 4)))


def _extent(psf: np.ndarray) -> float:
    ys, xs = np.nonzero(psf > 0.02 * psf.max())
    return float(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)


def _extent_of(kind: str, params: dict[str, float], psf: np.ndarray) -> float:
    if kind == "motion":
        return params["length_px"]
    if kind == "defocus":
        return 2 * params.get("radius_px", 2 * params.get("sigma_px", 0.0))
    return _extent(psf)


def _explain(kind: str, params: dict[str, float], extent: float, recoverable: bool) -> str:
    if kind == "motion":
        text = (
            f"Linear motion blur: the image moved {params['length_px']:.0f} px at "
            f"{params['angle_deg']:.0f} deg during the exposure."
        )
    elif kind == "defocus" and "radius_px" in params:
        text = f"Out of focus: a blur disk of {params['radius_px']:.1f} px radius."
    elif kind == "defocus":
        text = f"Soft focus / lens blur: Gaussian-like, sigma {params['sigma_px']:.1f} px."
    else:
        text = f"Camera shake: the camera followed a curved path about {extent:.0f} px long."
    if not recoverable:
        text += " This is very strong blur; expect only a partial recovery."
    return text
