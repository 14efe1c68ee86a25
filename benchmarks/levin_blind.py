"""Blind kernel estimation on the 32 real Levin et al. (2009) captures: kernel error ratio.

error ratio = SSD(x, deconv(y, k_est)) / SSD(x, deconv(y, k_true)), both deconvolved by the same
non-blind solver (ours: sparse prior, smooth periodic borders), SSD after Levin's alignment
(15-px crop, best sub-pixel shift). Success = ratio < 3. The published estimates shipped with
the data (Pan 2016, Sun 2013, Levin 2011, Fergus 2006, Cho & Lee 2009) are scored by the same
script in the same run.

    python benchmarks/levin_blind.py [--kernel-size 31] [--images 1-4] [--published]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LEVIN, require_shared  # noqa: E402

from core.compare import psnr_aligned_db  # noqa: E402
from core.deconvolve import deconvolve_sparse  # noqa: E402
from core.psf_estimate import estimate_psf  # noqa: E402

PUBLISHED = {
    "pan_cvpr_2016": "Pan et al. 2016 (dark channel)",
    "sun_iccp_2013": "Sun et al. 2013",
    "levin_cvpr_2011": "Levin et al. 2011",
    "fergus_tog_2006": "Fergus et al. 2006",
    "cho_and_lee_tog_2009": "Cho & Lee 2009",
}


def deconv(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    return deconvolve_sparse(y.astype(np.float32)[:, :, None], k, noise_sigma=0.01)[:, :, 0]


def load_published(method: str, i: int, j: int) -> np.ndarray | None:
    files = sorted((LEVIN / "estimated_kernels" / method).glob(f"k_{j}_im_{i}_*.png"))
    if not files:
        return None
    k = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    k = k[::-1, ::-1]  # stored like Levin09.mat: rot180 is the convolution kernel
    return k / k.sum()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel-size", type=int, default=31)
    ap.add_argument("--images", default="1-4")
    ap.add_argument("--kernels", default="1-8")
    ap.add_argument("--published", action="store_true", help="also score the published estimates")
    args = ap.parse_args(argv)
    require_shared(LEVIN)
    lo, hi = (int(v) for v in args.images.split("-"))
    klo, khi = (int(v) for v in args.kernels.split("-"))
    ks = np.load(LEVIN / "kernels" / "levin09_kernels.npz")
    rows: dict[str, list[float]] = {"clearshot": []}
    rows.update({m: [] for m in PUBLISHED} if args.published else {})
    secs = []
    for i in range(lo, hi + 1):
        x = cv2.imread(str(LEVIN / "sharp" / f"im{i}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        for j in range(klo, khi + 1):
            y = cv2.imread(
                str(LEVIN / "blurred" / f"im{i}_kernel{j}_img.png"), cv2.IMREAD_GRAYSCALE
            )
            y = y / 255.0
            ref = psnr_aligned_db(deconv(y, ks[f"conv_k{j}"]), x)
            t0 = time.perf_counter()
            k = estimate_psf(y, args.kernel_size)
            secs.append(time.perf_counter() - t0)
            ours = psnr_aligned_db(deconv(y, k), x)
            rows["clearshot"].append(10 ** ((ref - ours) / 10))
            line = f"im{i} k{j}: ratio {rows['clearshot'][-1]:6.2f} ({secs[-1]:.1f} s)"
            for m in PUBLISHED if args.published else ():
                kp = load_published(m, i, j)
                if kp is not None:
                    rows[m].append(10 ** ((ref - psnr_aligned_db(deconv(y, kp), x)) / 10))
            print(line, flush=True)
    head = ("method", "n", "success<3", "success<2", "mean", "median", "max")
    print("\n{:34s} {:>3s} {:>9s} {:>9s} {:>6s} {:>6s} {:>7s}".format(*head))
    for m, vals in rows.items():
        v = np.array(vals)
        name = "clearshot (ours)" if m == "clearshot" else PUBLISHED[m]
        print(
            f"{name:34s} {v.size:3d} {np.mean(v < 3) * 100:8.1f}% {np.mean(v < 2) * 100:8.1f}% "
            f"{v.mean():6.2f} {np.median(v):6.2f} {v.max():7.2f}"
        )
    print(f"mean estimation time {np.mean(secs):.2f} s per 255x255 image")


if __name__ == "__main__":
    main()
