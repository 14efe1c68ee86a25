"""Auto on the real blurred photos: what it decides for each, and pictures to look at.

The real photos have no ground truth (Lai et al.'s 100, Köhler et al.'s 8; of the 2 GoPro
pairs only the blurred frames are used here), so #3's last criterion -- visibly sharper in
Auto mode, without ringing -- is judged by eye. This script makes that review repeatable: it
runs Auto as it ships (``diagnose`` -> ``restore_checked``) on every photo and prints, per photo,
the diagnosis (kind, kernel side), the cross-check (the learned pass's share in the result, the
unexplained change, whether the classical result strayed far), Auto's decision and its time,
and the mean-gradient gain over the input (``core.compare.sharpness``, on the analysed region)
of Auto's result and of the learned pass alone. That gain rises with crisper edges and also
with ringing and noise: a number to sort and compare runs by, not a verdict. The summary
counts the decisions and gives the median gains per decision.

With ``--out DIR`` (outside the repository) it writes, per photo, a 1:1 crop around the
analysed region's centre -- input | learned pass | Auto -- and contact sheets of those rows;
with ``--peer DIR`` (another run's ``--out``) each row gets that run's Auto crop as a fourth
column, for a before/after look at a change.

    .venv/bin/python benchmarks/real_photos.py [--only NAME,...] [--out DIR] [--peer DIR]
        [--crop-px 256] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEBLUR_DATA, require_shared  # noqa: E402

from core.ai import ai_deblur  # noqa: E402
from core.compare import sharpness  # noqa: E402
from core.crosscheck import restore_checked  # noqa: E402
from core.diagnose import diagnose  # noqa: E402

ROWS_PER_SHEET = 8


def real_photos() -> list[Path]:
    """Lai et al.'s real photos, Köhler et al.'s subset, the GoPro pairs' blurred frames."""
    return (
        sorted((DEBLUR_DATA / "lai16" / "real_blurry").glob("*.jpg"))
        + sorted((DEBLUR_DATA / "kohler12_subset").glob("Blurry?_?.png"))
        + sorted((DEBLUR_DATA / "gopro_samples").glob("*_blur*.png"))
    )


def decision(kind: str, share: float | None) -> str:
    """What Auto did, in one word: blend, learned (alone), unchanged or classical."""
    if share is None:
        return "classical"  # no learned pass installed: nothing to cross-check
    if kind == "sharp":
        return "learned" if share >= 1.0 else "unchanged"
    if share >= 1.0:
        return "learned"
    return "blend" if share > 0.0 else "classical"


def crop_box(shape: tuple[int, ...], region: tuple[int, int, int, int], side: int):
    """A ``side`` square (fitted into the photo) centred on the analysed region."""
    h, w = shape[:2]
    x, y, rw, rh = region
    side = min(side, h, w)
    top = min(max(y + rh // 2 - side // 2, 0), h - side)
    left = min(max(x + rw // 2 - side // 2, 0), w - side)
    return np.s_[top : top + side, left : left + side]


def run_photo(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    t0 = time.perf_counter()
    d = diagnose(img)
    auto, check = restore_checked(img, d)
    seconds = time.perf_counter() - t0
    learned = ai_deblur(img)
    x, y, w, h = d.region
    region = np.s_[y : y + h, x : x + w]
    base = max(sharpness(img[region]), 1e-9)
    share = None if check is None else float(check.ai_share)
    row = {
        "photo": path.name,
        "kind": d.kind,
        "kernel_px": int(d.psf.shape[0]),
        "decision": decision(d.kind, share),
        "learned_share": None if share is None else round(share, 3),
        "unexplained": None
        if check is None or not np.isfinite(check.unexplained)
        else round(check.unexplained, 3),
        "strays_far": None if check is None else bool(check.strays_far),
        "auto_gain": round(sharpness(auto[region]) / base, 3),
        "learned_gain": round(sharpness(learned[region]) / base, 3),
        "seconds": round(seconds, 2),
    }
    return row, {"input": img, "learned": learned, "auto": auto, "region": d.region}


def write_rows(out: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    for start in range(0, len(rows), ROWS_PER_SHEET):
        part = rows[start : start + ROWS_PER_SHEET]
        width = max(r.shape[1] for _, r in part)
        padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for _, r in part]
        dest = out / f"sheet-{start // ROWS_PER_SHEET + 1:02d}.png"
        cv2.imwrite(str(dest), cv2.cvtColor(np.vstack(padded), cv2.COLOR_RGB2BGR))


def picture_row(name: str, pics: dict, side: int, peer: Path | None) -> np.ndarray:
    box = crop_box(pics["input"].shape, pics["region"], side)
    cells = [pics["input"][box], pics["learned"][box], pics["auto"][box]]
    if peer is not None:
        other = peer / f"{Path(name).stem}-auto.png"
        if other.exists():
            cells.append(cv2.cvtColor(cv2.imread(str(other)), cv2.COLOR_BGR2RGB)[box])
    cells = [np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells]
    row = np.hstack(cells)
    cv2.putText(row, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 2)
    return row


def summary(rows: list[dict]) -> None:
    print("\n| decision | photos | median Auto gain | median learned-pass gain |")
    print("|---|---|---|---|")
    for what in ("blend", "learned", "unchanged", "classical"):
        sel = [r for r in rows if r["decision"] == what]
        if sel:
            auto = statistics.median(r["auto_gain"] for r in sel)
            learned = statistics.median(r["learned_gain"] for r in sel)
            print(f"| {what} | {len(sel)} | {auto:.2f} | {learned:.2f} |")
    print(f"| all | {len(rows)} | | |")
    print(f"mean Auto time per photo {statistics.mean(r['seconds'] for r in rows):.1f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated file names (default all)")
    ap.add_argument("--out", type=Path, default=None, help="write crops and contact sheets here")
    ap.add_argument("--peer", type=Path, default=None, help="another run's --out, shown beside")
    ap.add_argument("--crop-px", type=int, default=256)
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = ap.parse_args(argv)
    require_shared(DEBLUR_DATA / "lai16" / "real_blurry")
    wanted = {n for n in args.only.split(",") if n}
    files = [f for f in real_photos() if not wanted or f.name in wanted]
    unknown = wanted - {f.name for f in files}
    if unknown:
        msg = f"not among the real photos: {sorted(unknown)} (file names, e.g. garden.jpg)"
        raise SystemExit(msg)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    rows, pictures = [], []
    for f in files:
        row, pics = run_photo(f)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out is not None:
            auto = cv2.cvtColor(pics["auto"], cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(args.out / f"{f.stem}-auto.png"), auto)
            pictures.append((f.name, picture_row(f.name, pics, args.crop_px, args.peer)))
    summary(rows)
    if args.out is not None:
        write_rows(args.out, pictures)
        print(f"wrote {len(rows)} results and their contact sheets to {args.out}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
