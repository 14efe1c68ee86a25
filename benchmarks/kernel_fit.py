"""Auto's kernel-fit check (core.kernel_fit, core.crosscheck): what it buys, in one run.

Auto estimates one kernel. Where it explains only part of the photo (a subject that moved, a
camera that rotated) its deconvolution rings, and Auto leans on the learned pass
(``core.crosscheck.MISFIT_RAMP``); where it explains the photo almost entirely, a result the
cross-check's first two tests would reject is kept (``KEEP_MISFIT``: large blur, which the
learned pass barely touches). Three sets of held-out McMaster + Set14 photos, blurred in linear
light, 1 % noise, 8-bit:

* default: the left and right halves blurred by two seeded kernels of different families
  (linear motion 5-15 px, camera shake 7-17 px, defocus disk r 1.5-4.5 px, as
  ``ai_validation.py``; a 64 px transition between them), 96 cases;
* ``--uniform``: one such kernel over the whole photo (``ai_validation.py``'s inputs exactly),
  the control where the check must cost nothing, 96 cases;
* ``--large``: one 36-60 px shake or linear motion (``large_blur.py``'s inputs exactly), 32 cases.

Columns (PSNR, RGB, sRGB 8-bit, 16 px border removed): blurred; the learned pass alone;
``auto_nofit``, Auto without the kernel-fit check (the blend at 50 % unless the classical result
strays far from the learned pass, then the learned pass); ``auto``, Auto as it ships
(``restore_checked``). Rows where the two Auto results differ are listed with the check's
figures.

    .venv/bin/python benchmarks/kernel_fit.py [--limit N] [--seed 2026] [--uniform | --large]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from ai_validation import (  # noqa: E402
    FAMILIES,
    SETS,
    degrade,
    hash_name,
    load_rgb,
    make_kernel,
    noisy_8bit,
    score,
)
from large_blur import FAMILIES as LARGE_FAMILIES  # noqa: E402
from large_blur import make_kernel as make_large_kernel  # noqa: E402

from core.ai import ai_deblur  # noqa: E402
from core.color import srgb_to_linear  # noqa: E402
from core.crosscheck import (  # noqa: E402
    AI_SHARE,
    BLIND_KERNEL_ERROR,
    blend_results,
    restore_checked,
)
from core.deblur import deblur  # noqa: E402
from core.diagnose import diagnose  # noqa: E402

TRANSITION_PX = 64


def degrade_two(
    sharp8: np.ndarray, left: np.ndarray, right: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred uint8, ground truth uint8): ``left`` blurs the left half, ``right`` the right,
    mixed over :data:`TRANSITION_PX` at the middle; valid region only, 1 % noise (linear)."""
    side = max(left.shape[0], right.shape[0])

    def framed(k: np.ndarray) -> np.ndarray:
        pad = (side - k.shape[0]) // 2
        return np.ascontiguousarray(np.pad(k, pad)[::-1, ::-1], dtype=np.float32)

    lin = srgb_to_linear(sharp8.astype(np.float32) / 255)
    a = cv2.filter2D(lin, -1, framed(left), borderType=cv2.BORDER_REFLECT)
    b = cv2.filter2D(lin, -1, framed(right), borderType=cv2.BORDER_REFLECT)
    x = np.arange(lin.shape[1], dtype=np.float32)
    t = np.clip((x - lin.shape[1] / 2) / TRANSITION_PX + 0.5, 0, 1)[None, :, None]
    o = side // 2
    b8 = noisy_8bit((a * (1 - t) + b * t)[o:-o, o:-o], rng)
    return b8, np.ascontiguousarray(sharp8[o:-o, o:-o])


def run_case(b8: np.ndarray, gt: np.ndarray) -> dict:
    d = diagnose(b8)
    learned = ai_deblur(b8)
    auto, shipped = restore_checked(b8, d)  # shipped: the cross-check Auto made
    row = {"blurred": score(b8, gt), "ai": score(learned, gt), "auto": score(auto, gt)}
    if d.kind == "sharp" or shipped is None:  # the check does not measure a fit there
        row["auto_nofit"] = row["auto"]
    elif shipped.strays_far:
        row["auto_nofit"] = row["ai"]
    else:
        classical = deblur(b8, d.psf, method="sparse", kernel_error=BLIND_KERNEL_ERROR)
        row["auto_nofit"] = score(blend_results(classical, learned, AI_SHARE), gt)
    row["kind"] = d.kind
    if shipped is not None and np.isfinite(shipped.misfit):
        row["misfit"] = round(shipped.misfit, 3)
        row["unexplained"] = round(shipped.unexplained, 3)
        row["ai_share"] = round(shipped.ai_share, 3)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="images per set (default all)")
    ap.add_argument("--seed", type=int, default=2026)
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--uniform", action="store_true", help="control: one kernel per photo")
    how.add_argument("--large", action="store_true", help="one 36-60 px kernel per photo")
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "sharp" / "mcmaster")
    rows = []
    n = 0
    for name in SETS:
        for f in sorted((DEBLUR_DATA / "sharp" / name).glob("*.png"))[: args.limit]:
            sharp = load_rgb(f)
            if args.large:  # as large_blur.py: one family a photo, alternating
                fam = LARGE_FAMILIES[n % len(LARGE_FAMILIES)]
                n += 1
                rng = np.random.default_rng([args.seed, SETS.index(name), hash_name(f.name)])
                b8, gt = degrade(sharp, make_large_kernel(fam, rng, False), rng)
                cases = [(fam, b8, gt)]
            else:
                cases = []
                for fi, fam in enumerate(FAMILIES):
                    seed = [args.seed, SETS.index(name), hash_name(f.name), fi]
                    rng = np.random.default_rng(seed)
                    k = make_kernel(fam, rng)
                    if args.uniform:
                        b8, gt = degrade(sharp, k, rng)
                    else:
                        other = make_kernel(FAMILIES[(fi + 1) % 3], rng)
                        b8, gt = degrade_two(sharp, k, other, rng)
                    cases.append((fam, b8, gt))
            for fam, b8, gt in cases:
                row = {"set": name, "image": f.name, "family": fam, **run_case(b8, gt)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    cols = ("blurred", "ai", "auto_nofit", "auto")
    print("| n | " + " | ".join(cols) + " |\n" + "|---" * (len(cols) + 1) + "|")
    print(f"| {len(rows)} | " + " | ".join(f"{np.mean([r[c] for r in rows]):.2f}" for c in cols))
    changed = [r for r in rows if abs(r["auto"] - r["auto_nofit"]) > 1e-9]
    print(f"\nAuto differs from Auto without the kernel-fit check on {len(changed)} of {len(rows)}")
    for r in sorted(changed, key=lambda r: r["auto"] - r["auto_nofit"]):
        print(
            f"  {r['set']}/{r['image']} {r['family']}: unexplained {r.get('unexplained')}, "
            f"learned share {r.get('ai_share')}: {r['auto_nofit']:.2f} -> {r['auto']:.2f} dB "
            f"({r['auto'] - r['auto_nofit']:+.2f})"
        )


if __name__ == "__main__":
    main()
