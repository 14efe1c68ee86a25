"""Train ClearNet on synthetic blur; write checkpoints, the ONNX export and a report PNG.

One command, seeded (see training/README.md)::

    .venv/bin/python -m training.train --seed 0 --steps 12000 --minutes 58 --out training/runs/r2

On a GPU machine (``--device cuda``), ``--workers N`` generates the training pairs in N
processes (the same seeded chunks, consumed in the same order), the pool lives on the GPU and
``--amp`` runs the network in bfloat16 (the loss in float32).

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

from .data import BLUR_MAX_PX, load_kodak, make_pairs
from .export import check_cv2, export_onnx
from .model import ClearNet

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KODAK = ROOT.parent / "shared" / "data" / "deblur" / "sharp" / "kodak24"


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255.0)


def _blocks(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


_KODAK: list[np.ndarray] = []


def _chunk_job(job: tuple[int, int, int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Worker: one seeded chunk of pairs (Kodak was loaded by the pool's initializer)."""
    seed, count, side, blur_max_px = job
    xs, ys, _ = make_pairs(seed, count, side, _KODAK, blur_max_px=blur_max_px)
    return xs, ys


def _init_worker(kodak_dir: str) -> None:
    cv2.setNumThreads(1)
    _KODAK[:] = load_kodak(kodak_dir)


class PairPool:
    """The growing pool of training pairs, as uint8 NCHW tensors on the training device.

    Chunks are made by ``make_pairs`` from consecutive seeds and added in seed order, so the
    pool's content at a given step does not depend on how fast they were made; with workers
    they are made ahead in other processes (the main process blocks only when the schedule
    asks for a chunk that is not ready yet).
    """

    def __init__(
        self,
        jobs: list[tuple[int, int, int, float]],
        capacity: int,
        side: int,
        device: torch.device,
        kodak: list[np.ndarray],
        kodak_dir: Path,
        workers: int,
    ) -> None:
        self.jobs = jobs
        self.kodak = kodak
        self._pool = None
        self._it = None
        if workers > 0:  # fork before this process touches the GPU
            import multiprocessing as mp

            self._pool = mp.get_context("fork").Pool(workers, _init_worker, (str(kodak_dir),))
            self._it = self._pool.imap(_chunk_job, jobs)
        self.x = torch.empty((capacity, 3, side, side), dtype=torch.uint8, device=device)
        self.y = torch.empty_like(self.x)
        self.n = 0
        self.next_job = 0

    def grow(self) -> bool:
        """Add the next chunk; False when the plan is used up."""
        if self.next_job >= len(self.jobs):
            return False
        if self._it is not None:
            cx, cy = next(self._it)
        else:
            seed, count, side, blur_max_px = self.jobs[self.next_job]
            cx, cy, _ = make_pairs(seed, count, side, self.kodak, blur_max_px=blur_max_px)
        self.next_job += 1
        k = min(len(cx), len(self.x) - self.n)
        if k <= 0:
            return False
        dev = self.x.device
        self.x[self.n : self.n + k] = torch.from_numpy(cx[:k]).permute(0, 3, 1, 2).to(dev)
        self.y[self.n : self.n + k] = torch.from_numpy(cy[:k]).permute(0, 3, 1, 2).to(dev)
        self.n += k
        return True

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.from_numpy(idx).to(self.x.device)
        return self.x[i].float().div_(255.0), self.y[i].float().div_(255.0)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()


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
        msg = (
            f"{path} does not fit ClearNet({model.config}): missing {missing[:3]}, wrong "
            f"shape {wrong[:3]}; pass the layout it was trained with (--width, --enc, "
            "--middle, --dec)"
        )
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

    def panel(
        x0: int, xs: list[float], series: list[tuple[list[float], tuple]], title: str, logy: bool
    ) -> None:
        ys_all = [v for s, _ in series for v in s if v > 0 or not logy]
        if not xs or not ys_all:
            return
        f = (lambda v: math.log10(max(v, 1e-9))) if logy else (lambda v: v)
        lo, hi = min(map(f, ys_all)), max(map(f, ys_all))
        hi = hi if hi > lo else lo + 1
        xmax = max(xs) or 1.0
        cv2.rectangle(canvas, (x0 + pad, pad), (x0 + w - 10, h - pad), (0, 0, 0), 1)
        for s, colour in series:
            pts = [
                (
                    int(x0 + pad + (x / xmax) * (w - pad - 10)),
                    int(h - pad - (f(v) - lo) / (hi - lo) * (h - 2 * pad)),
                )
                for x, v in zip(xs, s, strict=True)
            ]
            for p, q in zip(pts, pts[1:], strict=False):
                cv2.line(canvas, p, q, colour, 1, cv2.LINE_AA)
        cv2.putText(canvas, title, (x0 + pad, pad - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0))
        lo_txt = f"{10**lo:.4f}" if logy else f"{lo:.2f}"
        hi_txt = f"{10**hi:.4f}" if logy else f"{hi:.2f}"
        cv2.putText(canvas, hi_txt, (x0 + 2, pad + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
        cv2.putText(canvas, lo_txt, (x0 + 2, h - pad), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
        cv2.putText(
            canvas,
            f"minutes (0..{xmax:.0f})",
            (x0 + w // 2 - 40, h - 15),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
        )

    t = [e["minutes"] for e in log]
    trained = [e for e in log if e["train_loss"] is not None]  # a run from --init logs step 0
    panel(
        0,
        [e["minutes"] for e in trained],
        [([e["train_loss"] for e in trained], (200, 0, 0))],
        "training loss (L1+FFT), log",
        True,
    )
    panel(
        w,
        t,
        [([e["psnr_in"] for e in log], (0, 0, 200)), ([e["psnr_out"] for e in log], (0, 150, 0))],
        "monitoring PSNR dB: blurred (red) vs ClearNet (green)",
        False,
    )
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
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 was 10x faster than 2 on the shared 2-core machine)",
    )
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--enc", type=_blocks, default=(1, 2), help="NAF blocks per encoder level")
    ap.add_argument("--middle", type=int, default=4, help="NAF blocks at the lowest level")
    ap.add_argument("--dec", type=_blocks, default=(2, 1), help="NAF blocks per decoder level")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes making training pairs (0: made in this process)",
    )
    ap.add_argument("--chunk", type=int, default=1500, help="pairs added to the pool at a time")
    ap.add_argument(
        "--grow-every",
        type=int,
        default=0,
        help="steps between pool growths (default: --eval-every)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these weights instead of random ones: a .pt written by this\n"
        "script or an .onnx exported by it (e.g. the shipped model)",
    )
    ap.add_argument(
        "--blur-max-px",
        type=float,
        default=BLUR_MAX_PX,
        help="largest blur extent in the training pairs (the monitoring set keeps the default)",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile the training step")
    ap.add_argument("--channels-last", action="store_true", help="NHWC memory layout (GPU)")
    ap.add_argument(
        "--anneal-by-clock",
        action="store_true",
        help="the cosine follows the wall clock when --minutes would cut it short",
    )
    a = ap.parse_args(argv)

    t0 = time.time()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    grow_every = a.grow_every or a.eval_every

    kodak = load_kodak(a.kodak)
    held = load_kodak(a.kodak, held_out=True)
    # monitoring pairs: half from the held-out Kodak images, the default blur range always
    mx, my, _ = make_pairs(a.seed + 1_000_003, 96, a.patch, held)

    # the chunk plan: seeded, in order (serial runs keep the original plan: one first chunk of
    # --pool-start pairs; with workers the first pairs come as several chunks made in parallel)
    base = a.seed * 1000
    if a.workers > 0:
        first = max(1, math.ceil(a.pool_start / a.chunk))
        jobs = [
            (base + i, a.chunk, a.patch, a.blur_max_px) for i in range(math.ceil(a.pool / a.chunk))
        ]
    else:
        first = 1
        jobs = [(base, a.pool_start, a.patch, a.blur_max_px)]
        jobs += [
            (base + i, a.chunk, a.patch, a.blur_max_px)
            for i in range(1, 1 + math.ceil(max(0, a.pool - a.pool_start) / a.chunk))
        ]
    pool = PairPool(jobs, a.pool, a.patch, device, kodak, a.kodak, a.workers)
    mon_x, mon_y = _to_tensor(mx).to(device), _to_tensor(my).to(device)
    for _ in range(first):
        pool.grow()
    print(f"[{time.time() - t0:.0f}s] pool {pool.n} pairs ready", flush=True)

    model = ClearNet(width=a.width, enc_blocks=a.enc, middle_blocks=a.middle, dec_blocks=a.dec)
    if a.init is not None:
        model.load_state_dict(load_weights(a.init, model))
        print(f"[{time.time() - t0:.0f}s] weights from {a.init}", flush=True)
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    model.to(device, memory_format=layout)
    # torch.compile fuses the many small elementwise ops (LayerNorm, SimpleGate, residual
    # scales) that dominate a narrow network's step; the weights stay those of ``model``
    step_model = torch.compile(model) if a.compile else model
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ClearNet {model.config}: {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4, betas=(0.9, 0.9))
    warm = min(200, a.steps // 10)
    cap = a.minutes * 60
    t_train = time.time()
    t_steady = None

    def lr_at(step: int) -> float:
        if step < warm:
            return a.lr * (step + 1) / warm
        phase = (step - warm) / (a.steps - warm)
        # --anneal-by-clock: when the wall-clock cap would cut the schedule short, follow the
        # clock instead, so a capped run still anneals (the data stay seeded, the step count
        # then depends on the machine)
        left = cap - (t_train - t0)
        if a.anneal_by_clock and left > 0:
            phase = max(phase, (time.time() - t_train) / left)
        phase = min(phase, 1.0)
        return 1e-6 + 0.5 * (a.lr - 1e-6) * (1 + math.cos(math.pi * phase))

    log: list[dict] = []
    best = -1.0
    losses: list[torch.Tensor] = []  # on the device: no sync per step
    seen = 0
    step = 0
    amp = a.amp and device.type == "cuda"

    def record(train_loss: float | None, lr: float) -> float:
        """Evaluate on the monitoring set, log the entry (file, stdout); the output's PSNR."""
        pin, pout = evaluate(model, mon_x, mon_y)
        entry = {
            "step": step,
            "samples": seen,
            "minutes": (time.time() - t0) / 60,
            "train_loss": train_loss,
            "lr": lr,
            "psnr_in": pin,
            "psnr_out": pout,
            "pool": pool.n,
        }
        log.append(entry)
        with open(a.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
        print(json.dumps(entry), flush=True)
        return pout

    if a.init is not None:  # where the run starts from, for the report
        record(None, 0.0)
    while step < a.steps:
        x, y = pool.batch(rng.integers(0, pool.n, a.batch))
        k = int(rng.integers(8))  # dihedral augmentation, same for input and target
        if k & 4:
            x, y = x.transpose(2, 3), y.transpose(2, 3)
        x, y = torch.rot90(x, k & 3, (2, 3)), torch.rot90(y, k & 3, (2, 3))
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = step_model(x.contiguous(memory_format=layout))
        out = out.float()
        loss = (out - y).abs().mean() + 0.05 * _fft_l1(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(loss.detach())
        seen += a.batch
        step += 1
        if step == 20:  # past compilation and warm-up: the steady pace is timed from here
            t_steady = time.time()
        over = time.time() - t0 > cap
        if step % grow_every == 0 and not over:  # grow the pool, deterministically
            pool.grow()
        if step % a.eval_every == 0 or step == a.steps or over:
            losses = losses[-a.eval_every :]
            pout = record(float(torch.stack(losses).mean()), lr)
            cpu_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            state = {
                "state_dict": cpu_state,
                "config": json.dumps(model.config),
                "step": step,
                "samples": seen,
                "seed": a.seed,
                "psnr_out": pout,
                "init": str(a.init) if a.init else "",
            }
            torch.save(state, a.out / "last.pt")
            if pout > best:
                best = pout
                torch.save(state, a.out / "best.pt")
            draw_report(log, a.out / "report.png")
            if over:
                print(f"time cap of {a.minutes} min reached at step {step}", flush=True)
                break
    t_done = time.time()
    pool.close()
    model = model.cpu()
    ckpt = torch.load(a.out / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["state_dict"])
    export_onnx(model, a.out / "best.onnx")
    diff = check_cv2(model, a.out / "best.onnx")
    summary = {
        "steps": step,
        "samples": seen,
        "minutes": (time.time() - t0) / 60,
        "best_psnr_out": best,
        "best_step": ckpt["step"],
        "cv2_max_abs_diff": diff,
        "seconds_to_step_20": t_steady - t_train if step > 20 else None,
        "seconds_per_step": (t_done - t_steady) / (step - 20) if step > 20 else None,
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
