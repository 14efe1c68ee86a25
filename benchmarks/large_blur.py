"""Auto on blur larger than the first kernel frame (35 px): fixed frame vs the grown one.

Real shaken photos often smear 40-70 px (the kernels published for Lai et al.'s real set: 13 of
30 are wider than 35 px). Auto estimates the kernel in a 35-px frame and, when the estimate runs
into that frame, once more in a frame of ``max_blur_px`` (69 by default); see
``core.diagnose.kernel_frame_mass``. This script measures what that buys, in one run, on the
same inputs: held-out McMaster + Set14 photos blurred in linear light by a seeded camera-shake
path or a linear motion 36-60 px long (true image edge, 1 % noise, 8-bit), restored by Auto as
it ships (``core.crosscheck.restore_checked``) after ``diagnose(max_blur_px=35)`` (the old
fixed frame) and after ``diagnose()`` (grown when needed). Also, as a control, the same photos
with blur 8-28 px, where the frame must not grow.

PSNR is RGB on the sRGB 8-bit result, 16 px border removed.

    .venv/bin/python benchmarks/large_blur.py [--limit N] [--seed 4100] [--small]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from _kernels import shake_trajectory  # noqa: E402
from ai_validation import SETS, degrade, hash_name, load_rgb, score  # noqa: E402

from core.crosscheck import restore_checked  # noqa: E402
from core.diagnose import diagnose  # noqa: E402
from core.psf import motion_psf  # noqa: E402

FAMILIES = ("shake", "motion")


def make_kernel(family: str, rng: np.random.Generator, small: bool) -> np.ndarray:
    lo, hi = (8, 28) if small else (36, 60)
    if family == "motion":
        return motion_psf(rng.uniform(lo, hi), rng.uniform(0, 180))
    return shake_trajectory(rng.uniform(lo, hi), rng)


def auto(b8: np.ndarray, max_blur_px: int | None) -> tuple[np.ndarray, dict]:
    t = time.perf_counter()
    d = diagnose(b8) if max_blur_px is None else diagnose(b8, max_blur_px=max_blur_px)
    out, check = restore_checked(b8, d)
    how = "blend"
    if check is not None and check.use_ai:
        how = "ai"
    elif check is None:
        how = "classical"
    info = {
        "kind": d.kind,
        "kernel_px": int(d.psf.shape[0]) if d.psf is not None else 0,
        "how": how,
        "s": round(time.perf_counter() - t, 1),
    }
    return out, info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="photos per set")
    ap.add_argument("--seed", type=int, default=4100)
    ap.add_argument("--small", action="store_true", help="control: blur 8-28 px instead")
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "sharp")
    rows = []
    n = 0
    for name in SETS:
        for f in sorted((DEBLUR_DATA / "sharp" / name).glob("*.png"))[: args.limit]:
            fam = FAMILIES[n % len(FAMILIES)]
            n += 1
            rng = np.random.default_rng([args.seed, SETS.index(name), hash_name(f.name)])
            k = make_kernel(fam, rng, args.small)
            b8, gt = degrade(load_rgb(f), k, rng)
            row = {"image": f"{name}/{f.name}", "family": fam, "blur_px": k.shape[0]}
            row["blurred"] = round(score(b8, gt), 2)
            for label, size in (("fixed35", 35), ("grown", None)):
                out, info = auto(b8, size)
                row[label] = round(score(out, gt), 2)
                row[label + "_info"] = info
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    for fam in (*FAMILIES, None):
        sel = [r for r in rows if fam is None or r["family"] == fam]
        if not sel:
            continue
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("blurred", "fixed35", "grown")}
        better = sum(r["grown"] > r["fixed35"] + 0.05 for r in sel)
        worse = sum(r["grown"] < r["fixed35"] - 0.05 for r in sel)
        print(
            f"{fam or 'all':6s} n={len(sel):2d}  blurred {m['blurred']:.2f}  "
            f"Auto, 35-px frame {m['fixed35']:.2f}  Auto, grown frame {m['grown']:.2f} dB  "
            f"(better {better}, worse {worse}, same {len(sel) - better - worse})"
        )


if __name__ == "__main__":
    main()
