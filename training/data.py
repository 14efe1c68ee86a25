"""Synthetic training pairs: sharp images, blurred physically in linear light.

Sharp sources (both allow shipping weights trained on them):

* procedurally generated dead-leaves images (occluding discs and rectangles with power-law
  sizes: the scale-invariant edge statistics of natural images), with smooth shading and fine
  texture inside the leaves;
* the Kodak24 set, randomly downscaled (0.5-1x) so that its detail is crisp.

Degradation (``degrade``), all seeded: sRGB -> linear, optional exposure gain, blur of a larger
patch with one kernel (camera-shake trajectory, linear motion, defocus disk, (an)isotropic
Gaussian, or identity = already sharp) and a crop of the valid centre (a true image edge, no
wrap-around), Poisson-Gaussian noise, clipping at 1, linear -> sRGB, 8-bit quantisation and,
sometimes, JPEG. The target is the sharp crop (through the same gain and clipping).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from core.color import linear_to_srgb, srgb_to_linear
from core.psf import defocus_psf, motion_psf, normalize_psf, path_psf

MAX_KERNEL_PX = 25  # the largest kernel side generated (extent up to ~21 px)
HELD_OUT_KODAK = ("kodim23.png", "kodim24.png")  # monitoring only, never trained on


# ----------------------------------------------------------------------------- sharp images
def dead_leaves(rng: np.random.Generator, side: int) -> np.ndarray:
    """An sRGB float32 (side, side, 3) dead-leaves image in [0, 1]."""
    ss = 2  # supersampling for anti-aliased edges
    n = side * ss
    img = np.empty((n, n, 3), np.float32)
    img[:] = rng.random(3)
    rmin, rmax = 2.0 * ss, n / 3
    # radius ~ r^-3 (scale invariance) by inverse-CDF sampling; enough leaves to cover the
    # canvas about three times over
    mean_area = math.pi * 2 * rmin**2 * math.log(rmax / rmin)
    count = int(3 * n * n / mean_area)
    u = rng.random(count)
    radii = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5
    for r in radii:
        rgb = rng.random(3) ** rng.uniform(0.7, 1.8)
        rgb = rgb.mean() + rng.uniform(0.2, 1.0) * (rgb - rgb.mean())  # natural saturation
        colour = tuple(float(c) for c in rgb)
        cy, cx = rng.uniform(-r, n + r, 2)
        if rng.random() < 0.7:
            cv2.circle(img, (int(cx), int(cy)), int(r), colour, -1, lineType=cv2.LINE_8)
        else:
            box = ((float(cx), float(cy)), (float(2 * r), float(2 * r * rng.uniform(0.2, 1))),
                   float(rng.uniform(0, 180)))
            cv2.fillConvexPoly(img, cv2.boxPoints(box).astype(np.int32), colour)
    # smooth shading (illumination) over the whole canvas
    low = cv2.resize(rng.normal(0, 0.25, (4, 4, 3)).astype(np.float32), (n, n),
                     interpolation=cv2.INTER_CUBIC)
    img = np.clip(img * (1 + low), 0, 1)
    out = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:  # fine texture
        amp = rng.uniform(0.01, 0.06)
        tex = cv2.GaussianBlur(rng.standard_normal((side, side)).astype(np.float32), (0, 0),
                               rng.uniform(0.5, 1.5))
        out = out * (1 + amp * tex / max(float(tex.std()), 1e-6))[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def load_kodak(root: str | Path, *, held_out: bool = False) -> list[np.ndarray]:
    """Kodak24 as sRGB float32 RGB arrays: the training images, or the two held-out ones."""
    files = sorted(Path(root).glob("kodim*.png"))
    keep = [f for f in files if (f.name in HELD_OUT_KODAK) == held_out]
    if not keep:
        msg = f"no Kodak PNGs found in {root}; pass --kodak pointing at the kodak24 folder"
        raise FileNotFoundError(msg)
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
            for f in keep]


def kodak_patch(rng: np.random.Generator, images: list[np.ndarray], side: int) -> np.ndarray:
    img = images[int(rng.integers(len(images)))]
    scale = rng.uniform(0.5, 1.0)
    need = int(math.ceil(side / scale)) + 2
    h, w = img.shape[:2]
    need = min(need, h, w)
    y, x = int(rng.integers(0, h - need + 1)), int(rng.integers(0, w - need + 1))
    crop = img[y : y + need, x : x + need]
    crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return _augment(rng, crop)


def _augment(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    img = np.rot90(img, int(rng.integers(4)))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.3:  # colour permutation
        img = img[..., rng.permutation(3)]
    return np.ascontiguousarray(img)


# ---------------------------------------------------------------------------------- kernels
def shake_kernel(rng: np.random.Generator, extent_px: float) -> np.ndarray:
    """Camera shake: a random walk with inertia, a pull back to the start and rare jerks
    (Boracchi & Foi 2012 style), splatted bilinearly, scaled to span ``extent_px``."""
    steps = 300
    v = np.exp(1j * rng.uniform(0, 2 * np.pi))
    pos = np.zeros(steps, complex)
    anxiety = rng.uniform(0.0, 0.3)
    pull = rng.uniform(0.0, 0.05)
    for t in range(1, steps):
        jerk = 0j
        if rng.random() < 0.01 * anxiety:
            jerk = -2 * v * rng.uniform(0.2, 0.5)
        dv = jerk + anxiety * (rng.normal() + 1j * rng.normal()) - pull * pos[t - 1] / steps
        v = v + dv
        v = v / max(abs(v), 1e-9)
        speed = 1.0 + 0.5 * math.sin(t / steps * rng.uniform(1, 6) + rng.uniform(0, 6.28))
        pos[t] = pos[t - 1] + v * max(speed, 0.2)
    pos = pos[: max(10, int(steps * rng.uniform(0.5, 1.0)))]
    return path_psf(pos, extent_px)


def aniso_gaussian(sx: float, sy: float, theta_deg: float) -> np.ndarray:
    r = int(math.ceil(3 * max(sx, sy)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    a = math.radians(theta_deg)
    u = math.cos(a) * xx + math.sin(a) * yy
    v = -math.sin(a) * xx + math.cos(a) * yy
    return normalize_psf(np.exp(-0.5 * (u**2 / sx**2 + v**2 / sy**2)))


def random_kernel(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One kernel from the training mix; extents are mild to moderate (up to ~21 px)."""
    p = rng.random()
    if p < 0.12:
        return "sharp", np.ones((1, 1), np.float32)
    if p < 0.42:
        return "shake", shake_kernel(rng, rng.uniform(3, 21))
    if p < 0.62:
        return "linear", motion_psf(rng.uniform(2, 21), rng.uniform(0, 180))
    if p < 0.85:
        return "defocus", defocus_psf(rng.uniform(0.8, 7.5))
    s = rng.uniform(0.5, 3.0)
    return "gauss", aniso_gaussian(s, s * rng.uniform(0.4, 1.0), rng.uniform(0, 180))


# ----------------------------------------------------------------------------- degradation
def degrade(
    rng: np.random.Generator, big_srgb: np.ndarray, kernel: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blur ``big_srgb`` (larger than ``side`` by the kernel margin) and return the centred
    (blurred uint8, sharp uint8) pair of ``side`` x ``side`` RGB."""
    lin = srgb_to_linear(big_srgb.astype(np.float32))
    if rng.random() < 0.2:
        lin = lin * rng.uniform(1.0, 1.8)  # some clipped highlights
    k = kernel.astype(np.float32)
    # true convolution: filter2D correlates, so flip the kernel
    blurred = cv2.filter2D(lin, -1, k[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT)
    m = (big_srgb.shape[0] - side) // 2
    blurred = blurred[m : m + side, m : m + side]
    sharp = np.clip(lin[m : m + side, m : m + side], 0, 1)
    peak = 10 ** rng.uniform(2.7, 4.0)  # photons at white
    read = rng.uniform(0.001, 0.012)
    if rng.random() < 0.1:
        peak, read = 1e6, 0.0005  # nearly clean
    blurred = np.clip(blurred, 0, None)
    blurred = rng.poisson(blurred * peak).astype(np.float32) / peak
    blurred += read * rng.standard_normal(blurred.shape).astype(np.float32)
    blurred = np.clip(blurred, 0, 1)
    b8 = np.clip(np.rint(linear_to_srgb(blurred) * 255), 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        ok, buf = cv2.imencode(".jpg", b8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                       int(rng.integers(70, 96))])
        b8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    s8 = np.clip(np.rint(linear_to_srgb(sharp) * 255), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(b8), s8


def make_pairs(
    seed: int, count: int, side: int, kodak: list[np.ndarray], p_kodak: float = 0.5
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``count`` seeded pairs: blurred and sharp uint8 arrays of shape (count, side, side, 3)."""
    rng = np.random.default_rng(seed)
    big = side + 2 * MAX_KERNEL_PX
    xs = np.empty((count, side, side, 3), np.uint8)
    ys = np.empty_like(xs)
    kinds = []
    leaves: np.ndarray | None = None
    for i in range(count):
        if rng.random() < p_kodak:
            src = kodak_patch(rng, kodak, big)
        else:
            # one dead-leaves canvas gives four patches (cheaper than one canvas per patch)
            if leaves is None or i % 4 == 0:
                leaves = dead_leaves(rng, 2 * big)
            oy, ox = rng.integers(0, big + 1, 2)
            src = _augment(rng, leaves[oy : oy + big, ox : ox + big])
        kind, k = random_kernel(rng)
        xs[i], ys[i] = degrade(rng, src, k, side)
        kinds.append(kind)
    return xs, ys, kinds
