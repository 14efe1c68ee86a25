"""Export a ClearNet to ONNX (opset 13, dynamic H/W) and check it against cv2.dnn."""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .model import ClearNet


def export_onnx(model: ClearNet, path: str | Path) -> None:
    """Write ``model`` as ONNX with input ``image`` and output ``restored`` (NCHW float32)."""
    model = model.eval()
    dummy = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings():
        # the TorchScript exporter on purpose: it writes the plain opset-13 graph cv2.dnn reads
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=["restored"],
            opset_version=13,
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "restored": {0: "n", 2: "h", 3: "w"}},
            dynamo=False,
        )


def check_cv2(model: ClearNet, path: str | Path, side: int = 96, seed: int = 0) -> float:
    """Max abs difference between torch and cv2.dnn on a random input."""
    import cv2

    rng = np.random.default_rng(seed)
    mult = int(getattr(model, "multiple", 16))
    side = -(-side // mult) * mult  # sizes the layout accepts
    x = rng.random((1, 3, side, side + mult), dtype=np.float32)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(x)
    out = net.forward()
    return float(np.abs(out - ref).max())


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint", help="a .pt file written by training.train (state_dict + config)")
    ap.add_argument("out", help="where to write the .onnx")
    a = ap.parse_args()
    ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    model = ClearNet(**json.loads(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    export_onnx(model, a.out)
    print(f"cv2.dnn vs torch max |diff| = {check_cv2(model, a.out):.2e}; sha256 {sha256_of(a.out)}")


if __name__ == "__main__":
    main()
