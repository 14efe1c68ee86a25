"""Non-blind deconvolution on the 32 real Levin et al. (2009) captures with their true kernels.

Protocol (as in ../shared/eval): 1 % Gaussian noise added (seeded), deconvolve with the true
kernel, score with Levin's comp_upto_shift (15-px border crop, best sub-pixel shift), mean PSNR.
Peers measured in the same run: scikit-image's ``wiener`` (balance 0.01) and
``richardson_lucy`` (30 iterations), the figures the issue quotes (30.9 and 29.8 dB here).

    python benchmarks/levin_nonblind.py [--methods sparse,wiener,rl] [--peers]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LEVIN, Timer, psnr_upto_shift, require_shared  # noqa: E402

from core.deconvolve import (  # noqa: E402
    deconvolve_richardson_lucy,
    deconvolve_sparse,
    deconvolve_wiener,
)

NOISE = 0.01


def load_levin():
    require_shared(LEVIN)
    ks = np.load(LEVIN / "kernels" / "levin09_kernels.npz")
    cases = []
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        x = cv2.imread(str(LEVIN / "sharp" / f"im{i}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        for j in range(1, 9):
            y = (
                cv2.imread(
                    str(LEVIN / "blurred" / f"im{i}_kernel{j}_img.png"), cv2.IMREAD_GRAYSCALE
                )
                / 255.0
            )
            y = y + NOISE * rng.standard_normal(y.shape)
            k = ks[f"conv_k{j}"]
            cases.append((f"im{i}_k{j}", x, y, k / k.sum()))
    return cases


def ours(name: str, **kw):
    fn = {
        "sparse": deconvolve_sparse,
        "wiener": deconvolve_wiener,
        "rl": deconvolve_richardson_lucy,
    }[name]

    def run(y, k):
        return fn(y.astype(np.float32)[:, :, None], k, **kw)[:, :, 0]

    return run


def peers():
    from skimage import restoration

    from core.borders import padded_shape, smooth_periodic_pad

    def padded(fn):
        def run(y, k):
            canvas = smooth_periodic_pad(
                y.astype(np.float32)[:, :, None], padded_shape(y.shape, k.shape)
            )
            return fn(canvas[:, :, 0].astype(np.float64), k)[: y.shape[0], : y.shape[1]]

        return run

    return {
        "skimage wiener": lambda y, k: restoration.wiener(y, k, 0.01, clip=False),
        "skimage wiener + our smooth borders": padded(
            lambda y, k: restoration.wiener(y, k, 0.01, clip=False)
        ),
        "skimage richardson_lucy(30)": lambda y, k: restoration.richardson_lucy(
            np.clip(y, 1e-6, None), k, num_iter=30, clip=False
        ),
    }


def evaluate(cases, fn) -> tuple[float, float, list[float]]:
    scores = []
    with Timer() as t:
        for _, x, y, k in cases:
            scores.append(psnr_upto_shift(fn(y, k), x))
    return float(np.mean(scores)), t.seconds, scores


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="sparse,wiener,rl")
    ap.add_argument("--peers", action="store_true", help="also run scikit-image peers")
    ap.add_argument("--param", action="append", default=[], help="METHOD:KEY=VALUE override")
    args = ap.parse_args(argv)
    cases = load_levin()
    overrides: dict[str, dict[str, float]] = {}
    for p in args.param:
        m, kv = p.split(":", 1)
        key, val = kv.split("=")
        overrides.setdefault(m, {})[key] = float(val)
    rows = []
    blurred = float(np.mean([psnr_upto_shift(y, x) for _, x, y, _ in cases]))
    rows.append(("blurred input (+1% noise)", blurred, 0.0))
    for m in args.methods.split(","):
        mean, secs, _ = evaluate(cases, ours(m, **overrides.get(m, {})))
        rows.append((f"clearshot {m}", mean, secs))
    if args.peers:
        for name, fn in peers().items():
            mean, secs, _ = evaluate(cases, fn)
            rows.append((name, mean, secs))
    print(
        f"{'method':34s} {'mean PSNR dB':>12s} {'time s':>8s}"
        "   (32 real Levin captures, true kernels, 1% noise)"
    )
    for name, mean, secs in rows:
        print(f"{name:34s} {mean:12.2f} {secs:8.2f}")


if __name__ == "__main__":
    main()
