"""Copy a run's ONNX export into the package and record it in the model registry.

    .venv/bin/python -m training.ship training/runs/r2 --name clearnet-s --version 1.0.0

Writes ``core/ai/models/<name>.onnx`` and updates ``core/ai/models/registry.json`` (sha256,
size, training summary), after checking cv2.dnn against torch on the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from .export import check_cv2, sha256_of
from .model import ClearNet, effective_receptive_px

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "core" / "ai" / "models"

TRAINING_DATA = (
    "Synthetic pairs only: procedurally generated dead-leaves images (this project's generator, "
    "training/data.py) and 22 of the 24 Kodak PhotoCD images (kodim01-22; Eastman Kodak sample "
    "images, freely redistributed), blurred in linear light with camera-shake trajectories, linear "
    "motion, defocus disks and Gaussians (up to ~21 px), Poisson-Gaussian noise, clipping, 8-bit "
    "quantisation and sometimes JPEG. No McMaster, Set14, Levin, GoPro, Lai or Koehler data."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", default="clearnet-s")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--checkpoint", default="best")
    a = ap.parse_args()
    ckpt = torch.load(a.run / f"{a.checkpoint}.pt", map_location="cpu", weights_only=True)
    model = ClearNet(**json.loads(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    MODELS.mkdir(parents=True, exist_ok=True)
    dest = MODELS / f"{a.name}.onnx"
    src = a.run / f"{a.checkpoint}.onnx"
    if src.is_file():
        shutil.copyfile(src, dest)
    else:
        from .export import export_onnx

        export_onnx(model, dest)
    diff = check_cv2(model, dest)
    if diff > 1e-4:
        msg = f"cv2.dnn differs from torch by {diff:.2e} (> 1e-4); not shipping"
        raise SystemExit(msg)
    summary = {}
    if (a.run / "summary.json").is_file():
        summary = json.loads((a.run / "summary.json").read_text())
    entry = {
        "name": a.name,
        "version": a.version,
        "file": dest.name,
        "sha256": sha256_of(dest),
        "licence": "MIT (weights trained by the Clearshot project on shippable data)",
        "training_data": TRAINING_DATA,
        "description": (
            f"ClearNet {json.dumps(model.config)}; checkpoint step {ckpt['step']}, "
            f"{ckpt['samples']} training samples, seed {ckpt['seed']}, monitoring PSNR "
            f"{ckpt['psnr_out']:.2f} dB; {dest.stat().st_size} bytes."
            + (f" Trained on from {ckpt['init']}." if ckpt.get("init") else "")
            + f" {summary.get('note', '')}"
        ).strip(),
        "default": True,
        "multiple": model.multiple,
        # the clearnet-s layout keeps its theoretical +-64 px; others get the measured context
        "receptive_px": 64 if model.config == ClearNet().config else effective_receptive_px(model),
        "contract": {
            "input": "float32 NCHW (N, 3, H, W), RGB, sRGB-encoded, [0, 1]; H, W multiples of "
            f"{model.multiple}",
            "output": "float32 NCHW, same shape: the restored image, same encoding (unclipped)",
        },
    }
    reg_path = MODELS / "registry.json"
    reg = json.loads(reg_path.read_text()) if reg_path.is_file() else {"models": []}
    others = [m for m in reg["models"] if m["name"] != a.name]
    for m in others:
        m["default"] = False
    reg["models"] = [entry, *others]
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")
    print(f"shipped {dest} ({dest.stat().st_size} bytes), cv2 vs torch {diff:.1e}")


if __name__ == "__main__":
    main()
