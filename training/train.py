"""Train ClearNet on synthetic blur; write checkpoints, the ONNX export and a report PNG.

One command, seeded (see training/README.md)::

    .venv/bin/python -m training.train --seed 0 --steps 12000 --minutes 58 --out training/runs/r2

``--steps`` fixes the schedule (cosine learning rate over that many steps), so a run with the
same seed and steps sees the same data in the same order; ``--minutes`` is a wall-clock cap
(the run stops early, keeping what it has, when the machine is slower than planned).

Outputs in ``--out``: ``log.jsonl`` (one line per evaluation), ``last.pt`` and ``best.pt``
(state_dict + config; load with ``torch.load(..., weights_only=True)``), ``best.onnx`` (the
best checkpoint exported, checked against cv2.dnn) and ``report.png`` (loss curve and
monitoring PSNR over time). The monitoring set is held out from training (two Kodak images
never trained on and dead-leaves images from another seed); the project's validation sets
(McMaster, Set14, GoPro, Lai, Levin, Koehler) are never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from .data import load_kodak, make_pairs
from .export import check_cv2, export_onnx
from .model import ClearNet

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KODAK = ROOT.parent / "shared" / "data" / "deblur" / "sharp" / "kodak24"


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255.0)


def _fft_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    fa, fb = torch.fft.rfft2(a, norm="ortho"), torch.fft.rfft2(b, norm="ortho")
    return (fa - fb).abs().mean()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.clamp(0, 1) - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def load_weights(path: Path, model: ClearNet) -> dict[str, torch.Tensor]:
    """A state_dict for ``model`` from a training checkpoint (.pt) or an exported .onnx.

    The exporter keeps the parameter names as ONNX initializer names, so a shipped model can be
    trained further without its checkpoint. Raises ValueError naming what is missing or does
    not fit.
    """
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
        sd = {k: torch.from_numpy(inits[k].copy()) for k in model.state_dict() if k in inits}
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    wrong = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or wrong:
        msg = (f"{path} does not fit ClearNet(width={model.config.get('width')}): "
               f"missing {missing[:3]}, wrong shape {wrong[:3]}")
        raise ValueError(msg)
    return {k: sd[k].to(want[k].dtype) for k in want}


def evaluate(model: ClearNet, xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR (dB) of the input and of the output on the monitoring set."""
    model.eval()
    pin, pout = [], []
    with torch.no_grad():
        for i in range(0, len(xs), 16):
            x, y = xs[i : i + 16], ys[i : i + 16]
            pin.append(_psnr(x, y))
            pout.append(_psnr(model(x), y))
    model.train()
    return float(torch.cat(pin).mean()), float(torch.cat(pout).mean())


def draw_report(log: list[dict], path: Path) -> None:
    """Loss curve (left) and monitoring PSNR (right) against minutes, drawn with OpenCV."""
    w, h, pad = 520, 360, 50
    canvas = np.full((h, 2 * w, 3), 255, np.uint8)

    def panel(x0: int, xs: list[float], series: list[tuple[list[float], tuple]], title: str,
              logy: bool) -> None:
        ys_all = [v for s, _ in series for v in s if v > 0 or not logy]
        if not xs or not ys_all:
            return
        f = (lambda v: math.log10(max(v, 1e-9))) if logy else (lambda v: v)
        lo, hi = min(map(f, ys_all)), max(map(f, ys_all))
        hi = hi if hi > lo else lo + 1
        xmax = max(xs) or 1.0
        cv2.rectangle(canvas, (x0 + pad, pad), (x0 + w - 10, h - pad), (0, 0, 0), 1)
        for s, colour in series:
            pts = [(int(x0 + pad + (x / xmax) * (w - pad - 10)),
                    int(h - pad - (f(v) - lo) / (hi - lo) * (h - 2 * pad)))
                   for x, v in zip(xs, s, strict=True)]
            for p, q in zip(pts, pts[1:], strict=False):
                cv2.line(canvas, p, q, colour, 1, cv2.LINE_AA)
        cv2.putText(canvas, title, (x0 + pad, pad - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0))
        lo_txt = f"{10**lo:.4f}" if logy else f"{lo:.2f}"
        hi_txt = f"{10**hi:.4f}" if logy else f"{hi:.2f}"
        cv2.putText(canvas, hi_txt, (x0 + 2, pad + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
        cv2.putText(canvas, lo_txt, (x0 + 2, h - pad), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
        cv2.putText(canvas, f"minutes (0..{xmax:.0f})", (x0 + w // 2 - 40, h - 15),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0))

    t = [e["minutes"] for e in log]
    trained = [e for e in log if e["train_loss"] is not None]  # a run from --init logs step 0
    panel(0, [e["minutes"] for e in trained], [([e["train_loss"] for e in trained], (200, 0, 0))],
          "training loss (L1+FFT), log", True)
    panel(w, t, [([e["psnr_in"] for e in log], (0, 0, 200)), ([e["psnr_out"] for e in log],
                                                                 (0, 150, 0))],
          "monitoring PSNR dB: blurred (red) vs ClearNet (green)", False)
    cv2.imwrite(str(path), canvas)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=12000, help="optimizer steps (fixes the schedule)")
    ap.add_argument("--minutes", type=float, default=58.0, help="wall-clock cap")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kodak", type=Path, default=DEFAULT_KODAK)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pool", type=int, default=16000, help="training pairs generated in total")
    ap.add_argument("--pool-start", type=int, default=2000, help="pairs before the first step")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 was 10x faster than 2 on the shared 2-core machine)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights instead of random ones: a .pt written by this\n"
                         "script or an .onnx exported by it (e.g. the shipped model)")
    a = ap.parse_args(argv)

    t0 = time.time()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)

    kodak = load_kodak(a.kodak)
    held = load_kodak(a.kodak, held_out=True)
    mx, my, _ = make_pairs(a.seed + 1_000_003, 96, a.patch, held)  # half kodak (held out)
    mon_x, mon_y = _to_tensor(mx), _to_tensor(my)

    chunk_seed = a.seed * 1000
    px, py, kinds = make_pairs(chunk_seed, a.pool_start, a.patch, kodak)
    pools_x, pools_y = [px], [py]
    n_pool = len(px)
    print(f"[{time.time() - t0:.0f}s] pool {n_pool} pairs ready", flush=True)

    model = ClearNet(width=a.width)
    if a.init is not None:
        model.load_state_dict(load_weights(a.init, model))
        print(f"[{time.time() - t0:.0f}s] weights from {a.init}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4, betas=(0.9, 0.9))
    warm = min(200, a.steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return a.lr * (step + 1) / warm
        phase = (step - warm) / (a.steps - warm)
        return 1e-6 + 0.5 * (a.lr - 1e-6) * (1 + math.cos(math.pi * phase))

    log: list[dict] = []
    best = -1.0
    losses: list[float] = []
    seen = 0
    step = 0
    cap = a.minutes * 60
    all_x = np.concatenate(pools_x)
    all_y = np.concatenate(pools_y)
    if a.init is not None:  # where the run starts from, for the report
        pin, pout = evaluate(model, mon_x, mon_y)
        log.append({"step": 0, "samples": 0, "minutes": (time.time() - t0) / 60,
                    "train_loss": None, "lr": 0.0, "psnr_in": pin, "psnr_out": pout,
                    "pool": len(all_x)})
        with open(a.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(log[-1]) + "\n")
        print(json.dumps(log[-1]), flush=True)
    while step < a.steps:
        idx = rng.integers(0, len(all_x), a.batch)
        x, y = _to_tensor(all_x[idx]), _to_tensor(all_y[idx])
        k = int(rng.integers(8))  # dihedral augmentation, same for input and target
        if k & 4:
            x, y = x.transpose(2, 3), y.transpose(2, 3)
        x, y = torch.rot90(x, k & 3, (2, 3)), torch.rot90(y, k & 3, (2, 3))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(x)
        loss = (out - y).abs().mean() + 0.05 * _fft_l1(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(float(loss.detach()))
        seen += a.batch
        step += 1
        over = time.time() - t0 > cap
        if step % a.eval_every == 0 or step == a.steps or over:
            pin, pout = evaluate(model, mon_x, mon_y)
            entry = {"step": step, "samples": seen, "minutes": (time.time() - t0) / 60,
                     "train_loss": float(np.mean(losses[-a.eval_every:])), "lr": lr_at(step),
                     "psnr_in": pin, "psnr_out": pout, "pool": len(all_x)}
            log.append(entry)
            with open(a.out / "log.jsonl", "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            print(json.dumps(entry), flush=True)
            state = {"state_dict": model.state_dict(), "config": json.dumps(model.config),
                     "step": step, "samples": seen, "seed": a.seed, "psnr_out": pout,
                     "init": str(a.init) if a.init else ""}
            torch.save(state, a.out / "last.pt")
            if pout > best:
                best = pout
                torch.save(state, a.out / "best.pt")
                export_onnx(model, a.out / "best.onnx")
                model.train()
            draw_report(log, a.out / "report.png")
            if len(all_x) < a.pool and not over:  # grow the pool, deterministically
                chunk_seed += 1
                cx, cy, _ = make_pairs(chunk_seed, min(1500, a.pool - len(all_x)), a.patch, kodak)
                all_x = np.concatenate([all_x, cx])
                all_y = np.concatenate([all_y, cy])
            if over:
                print(f"time cap of {a.minutes} min reached at step {step}", flush=True)
                break
    ckpt = torch.load(a.out / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["state_dict"])
    diff = check_cv2(model, a.out / "best.onnx")
    summary = {"steps": step, "samples": seen, "minutes": (time.time() - t0) / 60,
               "best_psnr_out": best, "best_step": ckpt["step"], "cv2_max_abs_diff": diff}
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
