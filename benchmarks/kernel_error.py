"""Auto with and without distrusting the estimated kernel's zeros, on photos like real ones.

Real photos measure their noise at the floor (JPEG smooths it away), so the deconvolution's
gain near an estimated kernel's zeros is held back by nothing, and a slightly wrong kernel
stripes the photo. Auto therefore passes ``core.crosscheck.BLIND_KERNEL_ERROR`` to the sparse
solver (``kernel_error``). This script measures what that does, in one run, on the same inputs:
held-out McMaster + Set14 photos blurred in linear light as in ``ai_validation.py`` (motion,
shake, defocus), with little noise and JPEG compression by default (0.2 %, quality 90: what
real photos look like to the noise estimate), restored by Auto as it ships
(``core.crosscheck.restore_checked``) with ``kernel_error=0`` and with the shipped value.

PSNR is RGB on the sRGB 8-bit result, 16 px border removed.

    .venv/bin/python benchmarks/kernel_error.py [--limit 3] [--seed 2027] [--noise-pct 0.2]
        [--jpeg 90 | --jpeg 0 (none)]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from ai_validation import FAMILIES, SETS, degrade, hash_name, load_rgb, make_kernel, score  # noqa: E402

from core.crosscheck import BLIND_KERNEL_ERROR, restore_checked  # noqa: E402
from core.diagnose import diagnose  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=3, help="photos per set")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--noise-pct", type=float, default=0.2, help="noise in linear light, %%")
    ap.add_argument("--jpeg", type=int, default=90, help="JPEG quality, 0 for none")
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "sharp")
    errors = (0.0, BLIND_KERNEL_ERROR)
    scores: dict[float, list[float]] = {e: [] for e in errors}
    blurred, blends = [], []
    for name in SETS:
        for f in sorted((DEBLUR_DATA / "sharp" / name).glob("*.png"))[: args.limit]:
            sharp = load_rgb(f)
            for fi, fam in enumerate(FAMILIES):
                rng = np.random.default_rng([args.seed, SETS.index(name), hash_name(f.name), fi])
                k = make_kernel(fam, rng)
                b8, gt = degrade(
                    sharp, k, rng, args.noise_pct / 100, args.jpeg if args.jpeg > 0 else None
                )
                d = diagnose(b8)
                blurred.append(score(b8, gt))
                how = "sharp"
                for e in errors:
                    out, check = restore_checked(b8, d, kernel_error=e)
                    scores[e].append(score(out, gt))
                    if d.kind != "sharp":
                        how = "learned pass" if check is not None and check.use_ai else "blend"
                if how == "blend":
                    blends.append(len(blurred) - 1)
                print(
                    f"{name}/{f.name} {fam:8s} {d.kind:8s} {how:12s} blurred {blurred[-1]:.2f}  "
                    + "  ".join(f"kernel_error {e:g}: {scores[e][-1]:.2f}" for e in errors),
                    flush=True,
                )
    print(f"\n{len(blurred)} cases, mean PSNR: blurred {np.mean(blurred):.2f}", end="")
    for e in errors:
        print(f", kernel_error {e:g}: {np.mean(scores[e]):.2f}", end="")
    print()
    if blends:
        better = sum(scores[errors[1]][i] > scores[errors[0]][i] for i in blends)
        print(
            f"the {len(blends)} blends: "
            + ", ".join(
                f"kernel_error {e:g}: {np.mean([scores[e][i] for i in blends]):.2f}" for e in errors
            )
            + f" (better with it: {better} of {len(blends)})"
        )


if __name__ == "__main__":
    main()
