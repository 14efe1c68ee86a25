"""Generate the embedded demo sample (core/data/sample-*.png) procedurally and reproducibly.

The scene is drawn from scratch (no third-party photos, so it can ship): a sky gradient, hills,
a dead-leaves texture (natural-image statistics), a Siemens star, fine lines and text. It is
blurred in linear light by a known linear motion, with 0.5 % noise, and quantised to 8 bits.

    python tools/make_sample.py        # rewrites core/data/sample-sharp.png, sample-blurred.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from core.psf import motion_psf  # noqa: E402

H, W = 512, 768
MOTION = (17.0, 25.0)  # length px, angle deg
NOISE = 0.005
SEED = 7


def scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = (1 - yy) * np.array([0.45, 0.65, 0.95], np.float32) + yy * np.array(
        [0.85, 0.9, 1.0], np.float32
    )
    img = np.broadcast_to(img, (h, w, 3)).copy()
    # hills
    xs = np.arange(w)
    ridge = (300 + 40 * np.sin(xs / 90.0) + 20 * np.sin(xs / 23.0 + 1)).astype(int)
    for x in range(w):
        img[ridge[x] :, x] = (0.25, 0.45, 0.2)
    # dead leaves on the lower half
    leaves = np.zeros((h - 330, w, 3), np.float32)
    for _ in range(2500):
        r = int(3 + 40 * rng.random() ** 3)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h - 330))
        col = (rng.random(3) * np.array([0.6, 0.7, 0.5]) + 0.15).tolist()
        cv2.circle(leaves, (cx, cy), r, col, -1, lineType=cv2.LINE_AA)
    img[330:] = leaves
    # Siemens star
    cy, cx, rad = 150, 620, 95
    ang = np.arctan2(*np.mgrid[-rad:rad, -rad:rad])
    dist = np.hypot(*np.mgrid[-rad:rad, -rad:rad])
    star = (np.sin(36 * ang) > 0).astype(np.float32)
    sel = dist < rad - 2
    patch = img[cy - rad : cy + rad, cx - rad : cx + rad]
    patch[sel] = (0.08 + 0.85 * star[sel])[:, None]
    # text and fine lines
    cv2.rectangle(img, (30, 40), (470, 270), (0.96, 0.95, 0.9), -1)
    cv2.putText(
        img, "CLEARSHOT", (45, 105), cv2.FONT_HERSHEY_DUPLEX, 2.0, (0.1, 0.1, 0.15), 3, cv2.LINE_AA
    )
    lines = ["Deblurring for photographers:", "motion, shake and focus.", "Small print 0123456789"]
    for i, t in enumerate(lines):
        cv2.putText(
            img,
            t,
            (45, 150 + 32 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.75,
            (0.12, 0.12, 0.12),
            1,
            cv2.LINE_AA,
        )
    for i in range(12):
        x = 45 + i * (2 + i // 3) * 3
        cv2.line(img, (x, 240), (x, 262), (0.1, 0.1, 0.1), 1, cv2.LINE_AA)
    return np.clip(img, 0, 1)


def main() -> None:
    rng = np.random.default_rng(SEED)
    k = motion_psf(*MOTION)
    pad = k.shape[0]
    big = scene(rng, H + 2 * pad, W + 2 * pad)
    # blur the larger scene and keep the middle: a true image edge, as a camera records it
    blurred = cv2.filter2D(srgb_to_linear(big), -1, k[::-1, ::-1].copy())[pad:-pad, pad:-pad]
    sharp = big[pad:-pad, pad:-pad]
    blurred = blurred + NOISE * rng.standard_normal(blurred.shape).astype(np.float32)
    out = linear_to_srgb(np.clip(blurred, 0, 1))
    data = ROOT / "core" / "data"
    for name, arr in (("sample-sharp.png", sharp), ("sample-blurred.png", out)):
        u8 = np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(
            str(data / name), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
        )
    meta = {
        "blur": "motion",
        "length_px": MOTION[0],
        "angle_deg": MOTION[1],
        "noise_sigma": NOISE,
        "seed": SEED,
        "generator": "tools/make_sample.py",
    }
    (data / "sample.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
