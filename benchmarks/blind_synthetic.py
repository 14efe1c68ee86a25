"""Blind kernel estimation on synthetic camera shake: kernel error ratio on held-out photos.

The Levin et al. set is small (4 images x 8 kernels) and the estimator's settings were chosen
on it, so this script checks them on photos and kernels it never saw: 255x255 grey crops of
McMaster and Set14 (../shared/data/deblur/sharp), blurred by seeded random shake trajectories
(``benchmarks/_kernels.shake_trajectory``, 9-25 px) with a true image edge (the crop is cut from a
larger blurred area), 1 % Gaussian noise, 8-bit. Error ratio as in ``levin_blind.py``: PSNR of
deconvolving with the true kernel over PSNR with the estimate (same solver), success < 3.

    python benchmarks/blind_synthetic.py [--seed 0] [--cases 32] [--set KEY=VALUE ...]

``--set`` overrides a ``core.psf_estimate.BlindParams`` field, e.g. ``--set noisy_sigma=1``
to compare against another setting in the same run.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from _kernels import shake_trajectory  # noqa: E402

from core.compare import psnr_aligned_db  # noqa: E402
from core.deconvolve import deconvolve_sparse  # noqa: E402
from core.psf_estimate import BlindParams, estimate_psf  # noqa: E402

CROP_PX = 255
NOISE = 0.01


def deconv(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    return deconvolve_sparse(y.astype(np.float32)[:, :, None], k, noise_sigma=NOISE)[:, :, 0]


def cases(seed: int, n: int):
    """Yield (name, sharp crop, blurred crop, true kernel), seeded."""
    rng = np.random.default_rng(seed)
    files = sorted((DEBLUR_DATA / "sharp" / "mcmaster").glob("*.*"))
    files += sorted((DEBLUR_DATA / "sharp" / "set14").glob("*.*"))
    for c in range(n):
        path = files[int(rng.integers(len(files)))]
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255.0
        k = shake_trajectory(float(rng.uniform(9, 25)), rng)
        m = k.shape[0]
        big = CROP_PX + 2 * m
        if min(img.shape) < big:
            f = big / min(img.shape) + 0.01
            img = cv2.resize(img, None, fx=f, fy=f)
        y0 = int(rng.integers(0, img.shape[0] - big + 1))
        x0 = int(rng.integers(0, img.shape[1] - big + 1))
        area = img[y0 : y0 + big, x0 : x0 + big]
        blurred = cv2.filter2D(area, -1, k[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
        sl = np.s_[m : m + CROP_PX, m : m + CROP_PX]
        y = blurred[sl] + rng.normal(0, NOISE, (CROP_PX, CROP_PX))
        y = np.round(np.clip(y, 0, 1) * 255) / 255
        yield f"{c:02d} {path.stem}", area[sl], y, k


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=32)
    ap.add_argument("--kernel-size", type=int, default=31)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "sharp" / "mcmaster")
    variants = {"default": BlindParams()}
    if args.set:
        p = BlindParams()
        for kv in args.set:
            key, _, val = kv.partition("=")
            if not hasattr(BlindParams, key):
                msg = f"--set {kv}: BlindParams has no field {key!r}"
                raise SystemExit(msg)
            setattr(p, key, type(getattr(BlindParams, key))(ast.literal_eval(val)))
        variants["variant " + " ".join(args.set)] = p
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    for name, x, y, k in cases(args.seed, args.cases):
        ref = psnr_aligned_db(deconv(y, k), x)
        line = f"{name:20s} {k.shape[0]:2d}px"
        for v, p in variants.items():
            t0 = time.perf_counter()
            est = estimate_psf(y, args.kernel_size, params=p)
            ratios[v].append(10 ** ((ref - psnr_aligned_db(deconv(y, est), x)) / 10))
            line += f"  {ratios[v][-1]:6.2f} ({time.perf_counter() - t0:.1f} s)"
        print(line, flush=True)
    print(f"\nseed {args.seed}, {args.cases} cases; error ratio (success < 3)")
    for v, vals in ratios.items():
        r = np.array(vals)
        print(
            f"{v:40s} success {np.mean(r < 3) * 100:5.1f}%  <2 {np.mean(r < 2) * 100:5.1f}%  "
            f"mean {r.mean():.2f}  median {np.median(r):.2f}  max {r.max():.2f}"
        )


if __name__ == "__main__":
    main()
