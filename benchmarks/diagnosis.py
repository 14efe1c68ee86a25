"""Blur diagnosis accuracy on a seeded synthetic set, and analysis time on a 12 MP photo.

Sharp photos from ../shared/data/deblur/sharp are blurred in linear light (true image edge,
1 % noise, 8-bit) by linear motion, camera-shake trajectories, defocus disks and Gaussians, or
left sharp. Reported: classification accuracy (Gaussian counts as "defocus"), angle error and
relative length/radius error where parametric, and seconds per image.

    python benchmarks/diagnosis.py [--n 40] [--seed 1 [2 ...]] [--big]
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

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from _kernels import shake_trajectory  # noqa: E402

from core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from core.diagnose import diagnose  # noqa: E402
from core.psf import defocus_psf, gaussian_psf, motion_psf  # noqa: E402

FAMILIES = ("motion", "shake", "defocus", "gaussian", "sharp")


def photos() -> list[Path]:
    sharp = DEBLUR_DATA / "sharp"
    require_shared(sharp)
    return sorted(p for d in ("kodak24", "mcmaster", "set14") for p in (sharp / d).glob("*.png"))


def make_case(path: Path, family: str, rng: np.random.Generator):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255
    truth: dict[str, float] = {}
    if family == "motion":
        truth = {"length_px": float(rng.uniform(8, 30)), "angle_deg": float(rng.uniform(0, 180))}
        k = motion_psf(truth["length_px"], truth["angle_deg"])
    elif family == "shake":
        k = shake_trajectory(float(rng.uniform(10, 28)), rng)
    elif family == "defocus":
        truth = {"radius_px": float(rng.uniform(2, 8))}
        k = defocus_psf(truth["radius_px"])
    elif family == "gaussian":
        truth = {"sigma_px": float(rng.uniform(1.2, 3.5))}
        k = gaussian_psf(truth["sigma_px"])
    else:
        k = np.ones((1, 1), np.float32)
    lin = srgb_to_linear(img)
    m = k.shape[0] // 2
    blurred = cv2.filter2D(lin, -1, k[::-1, ::-1].copy())
    if m:
        blurred = blurred[m:-m, m:-m]
    blurred = blurred + 0.01 * rng.standard_normal(blurred.shape).astype(np.float32)
    out = np.clip(np.rint(linear_to_srgb(np.clip(blurred, 0, 1)) * 255), 0, 255).astype(np.uint8)
    return out, truth


def angle_error(a: float, b: float) -> float:
    d = abs(a - b) % 180
    return min(d, 180 - d)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="cases (spread over the families)")
    ap.add_argument(
        "--seed", type=int, nargs="+", default=[1], help="one or more seeds (n cases each)"
    )
    ap.add_argument("--big", action="store_true", help="also time a 12 MP photo")
    ap.add_argument("--region-px", type=int, default=512, help="side of the analysed region")
    args = ap.parse_args(argv)
    files = photos()
    correct = within = total = 0
    angle_errs, size_errs, secs = [], [], []
    confusion: dict[tuple[str, str], int] = {}
    cases = [(seed, n) for seed in args.seed for n in range(args.n)]
    rng = np.random.default_rng(0)
    for seed, n in cases:
        if n == 0:
            rng = np.random.default_rng(seed)
        family = FAMILIES[n % len(FAMILIES)]
        path = files[int(rng.integers(len(files)))]
        img, truth = make_case(path, family, rng)
        t0 = time.perf_counter()
        d = diagnose(img, region_px=args.region_px)
        secs.append(time.perf_counter() - t0)
        expected = "defocus" if family == "gaussian" else family
        ok = d.kind == expected
        correct += ok
        total += 1
        tolerance_ok = ok
        confusion[(expected, d.kind)] = confusion.get((expected, d.kind), 0) + 1
        detail = ""
        if ok and family == "motion":
            ae = angle_error(d.params["angle_deg"], truth["angle_deg"])
            le = abs(d.params["length_px"] - truth["length_px"]) / truth["length_px"]
            angle_errs.append(ae)
            size_errs.append(le)
            detail = f"angle err {ae:.1f} deg, length err {le * 100:.0f}%"
            tolerance_ok = ae <= 5 and le <= 0.15
        elif ok and family in ("defocus", "gaussian"):
            if family == "defocus":
                est = d.params.get("radius_px", 2 * d.params.get("sigma_px", 0))
                ref = truth["radius_px"]
            else:
                est = d.params.get("sigma_px", d.params.get("radius_px", 0) / 2)
                ref = truth["sigma_px"]
            size_errs.append(abs(est - ref) / ref)
            detail = f"size err {size_errs[-1] * 100:.0f}%"
            tolerance_ok = size_errs[-1] <= 0.15
        within += tolerance_ok
        print(
            f"{seed}:{n:<3d} {path.parent.name}/{path.name:12s} {family:8s} -> {d.kind:8s} "
            f"conf {d.confidence:.2f} {detail} ({secs[-1]:.1f} s) "
            + " ".join(f"{k}={v:.2f}" for k, v in d.evidence.items())
            + " | "
            + " ".join(f"{k}={v:.2f}" for k, v in d.params.items()),
            flush=True,
        )
    print(f"\naccuracy {correct}/{total} = {correct / total * 100:.1f}% (seeds {args.seed})")
    print(
        f"right kind and, where parametric, angle <= 5 deg and length/radius <= 15 %: "
        f"{within}/{total} = {within / total * 100:.1f}%"
    )
    if angle_errs:
        print(
            f"motion angle error: mean {np.mean(angle_errs):.2f} deg, "
            f"max {np.max(angle_errs):.2f} deg"
        )
    if size_errs:
        print(
            f"length/radius/sigma error: mean {np.mean(size_errs) * 100:.1f}%, "
            f"max {np.max(size_errs) * 100:.1f}%"
        )
    print(f"time per image: mean {np.mean(secs):.2f} s, max {np.max(secs):.2f} s")
    print(
        "confusion (expected -> got):", {f"{a}->{b}": c for (a, b), c in sorted(confusion.items())}
    )
    if args.big:
        img = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        t0 = time.perf_counter()
        d = diagnose(big)
        print(f"12 MP photo: {d.kind} in {time.perf_counter() - t0:.2f} s ({d.timings_s})")


if __name__ == "__main__":
    main()
