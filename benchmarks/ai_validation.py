"""Validation of the learned deblur pass on held-out data, against the classical pipeline.

Held-out sets (never used in training): McMaster (18) and Set14 (14) from ../shared, each image
blurred in linear light with one seeded kernel of each family (linear motion 5-15 px, camera
shake 7-17 px, defocus disk r 1.5-4.5 px), a true image edge (valid crop), 1 % Gaussian noise
(linear light), clipping and 8-bit quantisation. Scored in the same run, on the same inputs:

* blurred input;
* the project's classical blind pipeline: ``diagnose`` -> (sharp: input) -> ``deblur`` with
  the diagnosed PSF, ``method="sparse"`` and ``method="wiener"``;
* Auto as it ships: the sparse result blended with the AI pass (``core.crosscheck``);
* ``ai_deblur`` (default shipped model, strength 50).

PSNR is RGB on the sRGB 8-bit result, 16 px border removed (every method alike). Also: the two
real GoPro pairs (blurred / classical sparse / AI), speed of ``ai_deblur`` on a 12 MP image
(cv2.dnn), and peak memory (max RSS of a child process) on a 24 MP image.

    .venv/bin/python benchmarks/ai_validation.py [--limit N] [--no-classical] [--speed]
        [--memory-mp 24] [--look DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402
from _kernels import shake_trajectory  # noqa: E402

from core.ai import ai_deblur  # noqa: E402
from core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from core.compare import psnr_db  # noqa: E402
from core.crosscheck import (  # noqa: E402
    AI_SHARE,
    BLIND_KERNEL_ERROR,
    blend_results,
    cross_check,
)
from core.deblur import deblur  # noqa: E402
from core.diagnose import diagnose  # noqa: E402
from core.psf import defocus_psf, motion_psf  # noqa: E402

SETS = ("mcmaster", "set14")
FAMILIES = ("motion", "shake", "defocus")
CROP = 16


def load_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # gray files come back as 3 equal channels
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_kernel(family: str, rng: np.random.Generator) -> np.ndarray:
    if family == "motion":
        return motion_psf(rng.uniform(5, 15), rng.uniform(0, 180))
    if family == "shake":
        return shake_trajectory(rng.uniform(7, 17), rng)
    return defocus_psf(rng.uniform(1.5, 4.5))


def noisy_8bit(
    blurred: np.ndarray, rng: np.random.Generator, noise_sigma: float = 0.01
) -> np.ndarray:
    """Linear-light float -> ``noise_sigma`` Gaussian noise added (linear) -> sRGB uint8."""
    noisy = blurred + rng.normal(0, noise_sigma, blurred.shape).astype(np.float32)
    return np.rint(np.clip(linear_to_srgb(np.clip(noisy, 0, 1)), 0, 1) * 255).astype(np.uint8)


def degrade(
    sharp8: np.ndarray,
    k: np.ndarray,
    rng: np.random.Generator,
    noise_sigma: float = 0.01,
    jpeg_quality: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred uint8, ground truth uint8), valid region only, ``noise_sigma`` Gaussian noise
    in linear light (1 %), then JPEG-compressed at ``jpeg_quality`` when given."""
    lin = srgb_to_linear(sharp8.astype(np.float32) / 255)
    full = cv2.filter2D(
        lin, -1, k[::-1, ::-1].astype(np.float32).copy(), borderType=cv2.BORDER_REFLECT
    )
    oy, ox = k.shape[0] // 2, k.shape[1] // 2
    blurred = full[oy : -oy or None, ox : -ox or None]
    gt = sharp8[oy : -oy or None, ox : -ox or None]
    b8 = noisy_8bit(blurred, rng, noise_sigma)
    if jpeg_quality is not None:
        ok, data = cv2.imencode(".jpg", b8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        b8 = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])
    return b8, np.ascontiguousarray(gt)


def score(x: np.ndarray, gt: np.ndarray) -> float:
    c = np.s_[CROP:-CROP, CROP:-CROP]
    return psnr_db(x[c], gt[c])


def classical(b8: np.ndarray, learned: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The classical blind pipeline (sparse, wiener) and "auto": what Auto mode ships
    (core.crosscheck.restore_checked), the sparse result blended half and half with the AI
    pass (more of the AI pass where the kernel explains the photo only in part), or the AI pass
    alone when the cross-check rejects the sparse result or finds blur in
    a photo the analysis called sharp. ``learned``: ``ai_deblur(b8)`` when already computed."""

    def ai() -> np.ndarray:
        return ai_deblur(b8) if learned is None else learned

    d = diagnose(b8)
    check = cross_check(b8, d)
    if d.kind == "sharp" or d.psf is None:  # Auto asks the AI pass for a second opinion
        return {"sparse": b8, "wiener": b8, "auto": ai() if check and check.use_ai else b8}
    # as Auto ships: the estimated kernel's zeros distrusted (sparse only)
    out = {
        "sparse": deblur(b8, d.psf, method="sparse", kernel_error=BLIND_KERNEL_ERROR),
        "wiener": deblur(b8, d.psf, method="wiener"),
    }
    if check is None:
        out["auto"] = out["sparse"]
    elif check.use_ai:
        out["auto"] = ai()
    else:
        out["auto"] = blend_results(out["sparse"], ai(), check.share_for(AI_SHARE))
    return out


def run_validation(args: argparse.Namespace) -> dict:
    rows = []
    cache: dict = {}
    if args.classical_cache and args.classical_cache.is_file():
        cache = json.loads(args.classical_cache.read_text())
    for name in SETS:
        files = sorted((DEBLUR_DATA / "sharp" / name).glob("*.png"))[: args.limit]
        for f in files:
            sharp = load_rgb(f)
            for fi, fam in enumerate(FAMILIES):
                rng = np.random.default_rng([args.seed, SETS.index(name), hash_name(f.name), fi])
                k = make_kernel(fam, rng)
                b8, gt = degrade(sharp, k, rng)
                row = {
                    "set": name,
                    "image": f.name,
                    "family": fam,
                    "kernel_px": k.shape[0],
                    "blurred": score(b8, gt),
                }
                t = time.perf_counter()
                learned = None
                if args.ai:
                    learned = ai_deblur(b8)
                    row["ai"] = score(learned, gt)
                    row["ai_s"] = time.perf_counter() - t
                key = f"{name}/{f.name}/{fam}/{args.seed}"
                if args.classical and key in cache and cache[key]["blurred"] == row["blurred"]:
                    row.update({m: cache[key][m] for m in ("sparse", "wiener", "classical_s")})
                    row["classical_cached"] = True
                elif args.classical:
                    t = time.perf_counter()
                    for m, out in classical(b8, learned).items():
                        row[m] = score(out, gt)
                    row["classical_s"] = time.perf_counter() - t
                    cache[key] = {k: row[k] for k in ("blurred", "sparse", "wiener", "classical_s")}
                    if args.classical_cache:
                        args.classical_cache.parent.mkdir(parents=True, exist_ok=True)
                        args.classical_cache.write_text(json.dumps(cache, indent=1))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {"rows": rows}


def hash_name(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") % (2**31)


def summarise(rows: list[dict]) -> str:
    cols = [c for c in ("blurred", "sparse", "wiener", "auto", "ai") if all(c in r for r in rows)]
    lines = ["| subset | n | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    groups = [("all", rows)]
    groups += [(s, [r for r in rows if r["set"] == s]) for s in SETS]
    groups += [(f, [r for r in rows if r["family"] == f]) for f in FAMILIES]
    for label, rs in groups:
        if rs:
            vals = " | ".join(f"{np.mean([r[c] for r in rs]):.2f}" for c in cols)
            lines.append(f"| {label} | {len(rs)} | {vals} |")
    return "\n".join(lines)


def run_gopro(classical_too: bool) -> list[dict]:
    out = []
    for stem in ("Flower", "Istanbul"):
        b = load_rgb(DEBLUR_DATA / "gopro_samples" / f"{stem}_blur1.png")
        s = load_rgb(DEBLUR_DATA / "gopro_samples" / f"{stem}_sharp1.png")
        learned = ai_deblur(b)
        row = {"pair": stem, "blurred": psnr_db(b, s), "ai": psnr_db(learned, s)}
        if classical_too:
            for m, res in classical(b, learned).items():
                row[m] = psnr_db(res, s)
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def big_image(mp: float) -> np.ndarray:
    """A photo-sized image tiled (mirrored) from McMaster pictures."""
    h = int(round((mp * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    tiles = [load_rgb(f) for f in sorted((DEBLUR_DATA / "sharp" / "mcmaster").glob("*.png"))[:4]]
    row = np.concatenate([tiles[0], tiles[1][:, ::-1], tiles[2], tiles[3][:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-h // block.shape[0]), -(-w // block.shape[1]), 1)
    return np.ascontiguousarray(np.tile(block, reps)[:h, :w])


def run_speed(mp: float) -> dict:
    img = big_image(mp)
    t = time.perf_counter()
    ai_deblur(img)
    dt = time.perf_counter() - t
    res = {"megapixels": img.shape[0] * img.shape[1] / 1e6, "seconds": dt}
    res["mp_per_s"] = res["megapixels"] / dt
    print(json.dumps(res), flush=True)
    return res


def run_memory(mp: float) -> dict:
    """Peak RSS of a fresh process that deblurs an ``mp`` MP uint8 RGB image."""
    root, here = str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)
    code = (
        f"import sys, time, resource; sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r});"
        "from ai_validation import big_image; from core.ai import ai_deblur;"
        f"img = big_image({mp!r}); r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "t = time.perf_counter(); ai_deblur(img);"
        "print(r0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t,"
        " img.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, peak, secs, *shape = out.stdout.split(maxsplit=3)
    res = {
        "megapixels": mp,
        "peak_rss_gb": int(peak) / 1024**2,
        "rss_before_run_gb": int(before) / 1024**2,
        "seconds": float(secs),
        "shape": shape,
    }
    print(json.dumps(res), flush=True)
    return res


def run_look(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted((DEBLUR_DATA / "lai16" / "real_blurry").glob("*.jpg"))[:count]
    for f in files:
        img = load_rgb(f)
        out = ai_deblur(img)
        pair = np.concatenate([img, out], axis=1)
        dest = folder / f"{f.stem}-before-after.png"
        cv2.imwrite(str(dest), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
        print(f"wrote {dest}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="images per set (default all)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-classical", dest="classical", action="store_false")
    ap.add_argument("--no-validation", dest="validation", action="store_false")
    ap.add_argument("--no-ai", dest="ai", action="store_false", help="classical scores only")
    ap.add_argument(
        "--classical-cache",
        type=Path,
        default=None,
        help="JSON of classical scores keyed by image/family/seed: reused when the "
        "blurred input scores the same (the classical pipeline does not depend on "
        "the model), written as they are computed",
    )
    ap.add_argument("--gopro", action="store_true")
    ap.add_argument("--speed-mp", type=float, default=0.0, help="e.g. 12")
    ap.add_argument("--memory-mp", type=float, default=0.0, help="e.g. 24")
    ap.add_argument("--look", type=Path, default=None, help="write Lai before/after PNGs here")
    ap.add_argument("--look-count", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "sharp" / "mcmaster")
    result: dict = {}
    if args.validation:
        result.update(run_validation(args))
        print(summarise(result["rows"]))
    if args.gopro:
        result["gopro"] = run_gopro(args.classical)
    if args.speed_mp:
        result["speed"] = run_speed(args.speed_mp)
    if args.memory_mp:
        result["memory"] = run_memory(args.memory_mp)
    if args.look:
        run_look(args.look, args.look_count)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
