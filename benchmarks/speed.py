"""Speed and peak memory of the engine against peers measured in the same run (on demand, not CI).

Cases (12 MP = 4000x3000 RGB, 24 MP = 6000x4000 RGB; a synthetic photo-like scene of gradients,
disks, rings and lines, blurred by ``motion_psf(21, 30)`` with 0.5 % noise, all deterministic):

* ``wiener``  ``deconvolve_wiener`` (3 channels, smooth periodic padding) vs scikit-image
  ``restoration.wiener(channel, psf, balance=0.01)`` per channel, float32. Target <= 0.5x peer.
* ``sparse``  ``deblur(uint8, psf, method="sparse")`` in luminance mode and with
  ``channels="rgb"``. Targets: <= 20 s and peak <= 6x the image's float32 size. Context only:
  scikit-image ``richardson_lucy(num_iter=30)`` per channel on the same image. Report only:
  ``channels="rgb"`` on the scene 1.15x brighter, 15 % of its pixels clipped at 255 in some
  channel (a night photo's lights: the clipped areas are left out of the data term, a slower
  solve); its peer column is the plain scene's rgb run.
* ``usm``     ``unsharp_mask(img, 120, 1.5, 5)`` on 24 MP uint8 vs Pillow
  ``ImageFilter.UnsharpMask(radius=1.5, percent=120, threshold=5)``. Target <= 1.0x peer.
  Only ``Image.filter`` is timed for Pillow (the ``fromarray`` copy is made beforehand).
* ``rl``      ``deconvolve_richardson_lucy`` (30 iterations) vs scikit-image ``richardson_lucy``
  (30 iterations) per channel. Report only (no target).

Every run happens in a fresh child process (this file with ``--child``) that loads its input from
a ``.npy`` file, records ``ru_maxrss``, runs once, and records ``ru_maxrss`` again: the
difference is the run's peak memory above the input. Inputs are made once per invocation in a
temporary folder. Timing is the best of ``--repeat`` runs, ours and peer interleaved. Each run
is a cold call in a new process, as a GIMP plug-in call is (lookup tables, FFT plans included).

A peer is probed first on a quarter-area crop; when its full-size time extrapolated linearly in
pixel count exceeds the limit (180 s for ``rl``, 600 s for the ``sparse`` context), it is not run
at full size: ``rl`` then compares both sides on the crop, the context is extrapolated, and the
table says so.

    python benchmarks/speed.py [--cases wiener,sparse,usm,rl] [--repeat 2] [--small]

``--small`` halves each side (quarter-area images, absolute time targets scaled by 1/4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timer  # noqa: E402

from core.psf import motion_psf  # noqa: E402

CASES = ("wiener", "sparse", "usm", "rl")
SIZE_12MP = (3000, 4000)  # (H, W)
SIZE_24MP = (4000, 6000)
PSF_ARGS = (21, 30)  # motion_psf(length_px, angle_deg)
NOISE = 0.005
RL_ITER = 30
CLIPPED_GAIN = 1.15  # the clipped variant of the 12 MP scene: this much brighter, then clipped
RL_PEER_LIMIT_S = 180.0
CONTEXT_PEER_LIMIT_S = 600.0
CHILD_TIMEOUT_S = 3600


# ----------------------------------------------------------------------------- test images
def photo_like(h: int, w: int, *, seed: int = 0) -> np.ndarray:
    """Deterministic photo-like float32 (h, w, 3) scene in [0, 1]: gradients, disks, rings, lines.

    Object counts and sizes scale with the image, so every size has the same content density.
    """
    rng = np.random.default_rng(seed)
    s = min(h, w) / 3000.0
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.float32)
    for c, (a, b, f) in enumerate(((0.35, 0.25, 1.3), (0.30, 0.35, 2.1), (0.25, 0.30, 0.7))):
        img[:, :, c] = 0.15 + a * yy + b * xx + 0.08 * np.sin(2 * np.pi * f * (xx + 0.6 * yy))
    n = int(3000 * h * w / 12e6)
    for _ in range(n):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = max(2, int(np.exp(rng.uniform(np.log(3), np.log(160))) * s))
        colour = tuple(float(v) for v in rng.uniform(0.02, 0.98, 3))
        thick = -1 if rng.random() < 0.7 else int(rng.integers(1, 4))
        cv2.circle(img, centre, radius, colour, thick, lineType=cv2.LINE_AA)
    for _ in range(n // 6):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(float(v) for v in rng.uniform(0.0, 1.0, 3))
        cv2.line(img, p0, p1, colour, int(rng.integers(1, 4)), lineType=cv2.LINE_AA)
    return img


def blurred_photo(h: int, w: int, *, seed: int = 0) -> np.ndarray:
    """``photo_like`` convolved with the benchmark's motion PSF, plus seeded noise, in [0, 1]."""
    k = motion_psf(*PSF_ARGS)
    img = photo_like(h, w, seed=seed)
    # filter2D correlates: flip the kernel for a true convolution
    img = cv2.filter2D(img, -1, np.ascontiguousarray(k[::-1, ::-1]), borderType=cv2.BORDER_REFLECT)
    rng = np.random.default_rng(seed + 1)
    img += NOISE * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0, out=img)


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def centre_crop(img: np.ndarray, frac_side: float = 0.5) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = round(h * frac_side), round(w * frac_side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw])


def make_inputs(group: str, small: bool, outdir: Path) -> None:
    """Write the inputs of ``group`` ("12": f12, u12 and their crops; "24": u24) as .npy."""
    div = 2 if small else 1
    if group == "12":
        f12 = blurred_photo(SIZE_12MP[0] // div, SIZE_12MP[1] // div, seed=12)
        u12 = to_u8(f12)
        for name, arr in (("f12", f12), ("u12", u12)):
            np.save(outdir / f"{name}.npy", arr)
            np.save(outdir / f"{name}crop.npy", centre_crop(arr))
        np.save(outdir / "u12clipped.npy", to_u8(np.clip(f12 * np.float32(CLIPPED_GAIN), 0, 1)))
    elif group == "24":
        np.save(
            outdir / "u24.npy",
            to_u8(blurred_photo(SIZE_24MP[0] // div, SIZE_24MP[1] // div, seed=24)),
        )
    else:
        msg = f"unknown input group {group!r}"
        raise ValueError(msg)


# ----------------------------------------------------------------------------- child process
def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _runner(job: str, img: np.ndarray):
    """The callable timed for ``job`` (imports happen here, before the baseline)."""
    psf = motion_psf(*PSF_ARGS)
    if job == "wiener/ours":
        from core.deconvolve import deconvolve_wiener

        return lambda: deconvolve_wiener(img, psf)
    if job == "rl/ours":
        from core.deconvolve import deconvolve_richardson_lucy

        return lambda: deconvolve_richardson_lucy(img, psf)
    if job in ("sparse-lum/ours", "sparse-rgb/ours"):
        from core.deblur import deblur

        channels = "luminance" if job.startswith("sparse-lum") else "rgb"
        return lambda: deblur(img, psf, method="sparse", channels=channels)
    if job == "usm/ours":
        from core.sharpen import unsharp_mask

        return lambda: unsharp_mask(img, 120, 1.5, 5)
    if job == "usm/peer":
        from PIL import Image, ImageFilter

        pil = Image.fromarray(img)
        flt = ImageFilter.UnsharpMask(radius=1.5, percent=120, threshold=5)
        return lambda: pil.filter(flt)
    if job in ("wiener/peer", "rl/peer"):
        from skimage import restoration

        x = img if img.dtype == np.float32 else (img / np.float32(255)).astype(np.float32)

        def per_channel():
            out = np.empty_like(x)
            for c in range(x.shape[2]):
                if job == "wiener/peer":
                    out[:, :, c] = restoration.wiener(x[:, :, c], psf, balance=0.01)
                else:
                    out[:, :, c] = restoration.richardson_lucy(x[:, :, c], psf, num_iter=RL_ITER)
            return out

        return per_channel
    msg = f"unknown job {job!r}"
    raise ValueError(msg)


def _vm_hwm_mb() -> float | None:
    """This process image's own peak RSS (Linux /proc), to check ``ru_maxrss`` against."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return None


def child_main(job: str, path: str) -> None:
    img = np.load(path)
    fn = _runner(job, img)
    base = _maxrss_mb()
    hwm = _vm_hwm_mb()
    with Timer() as t:
        out = fn()
    peak = _maxrss_mb()
    del out
    # ru_maxrss survives fork+exec: a baseline above our own VmHWM means the parent's RSS leaked
    # in, and the run's peak would be understated
    leaked = hwm is not None and base > hwm + 8
    print(json.dumps({"seconds": t.seconds, "peak_mb": peak - base, "leaked": leaked}))


@dataclass
class Sample:
    seconds: float
    peak_mb: float


def run_child(job: str, path: Path) -> Sample:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", job, str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        msg = f"child {job} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    d = json.loads(lines[-1])
    if d["leaked"]:
        print(f"    warning: {job}: ru_maxrss baseline inherited from the parent", flush=True)
    s = Sample(d["seconds"], d["peak_mb"])
    print(f"    {job:<16} {path.stem:<14} {s.seconds:8.2f} s  {s.peak_mb:8.0f} MB", flush=True)
    return s


@dataclass
class Measure:
    samples: list[Sample] = field(default_factory=list)
    scale: float = 1.0  # extrapolation factor applied to time (1 = measured at the row's size)

    @property
    def seconds(self) -> float:
        return min(s.seconds for s in self.samples) * self.scale

    @property
    def peak_mb(self) -> float:
        return max(s.peak_mb for s in self.samples)


@dataclass
class Row:
    name: str
    ours: Measure | None
    peer: Measure | None
    img32_mb: float
    target: str
    verdict: str


# ----------------------------------------------------------------------------- driver
class Bench:
    def __init__(self, repeat: int, small: bool, tmp: Path) -> None:
        self.repeat = repeat
        self.small = small
        self.tmp = tmp
        self.area = 0.25 if small else 1.0
        self.made: set[str] = set()
        self.rows: list[Row] = []
        self.footnotes: list[str] = []
        self.rl_peer: Measure | None = None  # the rl case's peer, reusable as context

    def input(self, name: str) -> Path:
        """Path of the named input (f12, u12, f12crop, u12crop, u12clipped, u24), made on first
        use.

        Inputs are made in a child process: Linux carries a process's peak RSS across fork and
        exec into ``ru_maxrss``, so the parent must stay small for the children's baselines.
        """
        group = "24" if name == "u24" else "12"
        if group not in self.made:
            t0 = time.perf_counter()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--make", group, str(self.tmp)]
            subprocess.run(cmd + (["--small"] if self.small else []), check=True)
            print(
                f"  (made the {group} MP-class inputs in {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            self.made.add(group)
        return self.tmp / f"{name}.npy"

    def clipped_share(self, name: str) -> float:
        """Share of the named uint8 input's pixels at 255 in some channel, read in row strips
        (the parent stays small: its peak RSS is the children's baseline)."""
        arr = np.load(self.input(name), mmap_mode="r")
        at_top = sum(
            int((arr[y : y + 256] == 255).any(axis=2).sum()) for y in range(0, len(arr), 256)
        )
        return at_top / (arr.shape[0] * arr.shape[1])

    def shape_mb32(self, name: str) -> tuple[str, float]:
        arr = np.load(self.input(name), mmap_mode="r")
        h, w, c = arr.shape
        return f"{w}x{h}", h * w * c * 4 / 2**20

    def interleaved(self, jobs: list[tuple[str, str]]) -> list[Measure]:
        ms = [Measure() for _ in jobs]
        for _ in range(self.repeat):
            for m, (job, inp) in zip(ms, jobs, strict=True):
                m.samples.append(run_child(job, self.input(inp)))
        return ms

    def probe_peer(self, job: str, full: str, crop: str) -> tuple[Sample, float]:
        """Run ``job`` once on the crop; return the sample and the full/crop pixel ratio."""
        fa = np.load(self.input(full), mmap_mode="r").shape
        ca = np.load(self.input(crop), mmap_mode="r").shape
        return run_child(job, self.input(crop)), (fa[0] * fa[1]) / (ca[0] * ca[1])

    # -- cases
    def case_wiener(self) -> None:
        print("[wiener]", flush=True)
        dims, mb32 = self.shape_mb32("f12")
        ours, peer = self.interleaved([("wiener/ours", "f12"), ("wiener/peer", "f12")])
        ratio = ours.seconds / peer.seconds
        self.rows.append(
            Row(f"wiener {dims} f32", ours, peer, mb32, "<=0.5x peer", _pf(ratio <= 0.5))
        )

    def case_usm(self) -> None:
        print("[usm]", flush=True)
        dims, mb32 = self.shape_mb32("u24")
        ours, peer = self.interleaved([("usm/ours", "u24"), ("usm/peer", "u24")])
        ratio = ours.seconds / peer.seconds
        self.rows.append(Row(f"usm {dims} u8", ours, peer, mb32, "<=1.0x peer", _pf(ratio <= 1.0)))

    def case_rl(self) -> None:
        print("[rl]", flush=True)
        dims, mb32 = self.shape_mb32("f12")
        probe, factor = self.probe_peer("rl/peer", "f12", "f12crop")
        estimate = probe.seconds * factor
        if estimate <= RL_PEER_LIMIT_S:
            ours, peer = self.interleaved([("rl/ours", "f12"), ("rl/peer", "f12")])
            self.rl_peer = peer
            self.rows.append(Row(f"rl {dims} f32", ours, peer, mb32, "report only", "-"))
            return
        cdims, cmb32 = self.shape_mb32("f12crop")
        ours, peer = self.interleaved([("rl/ours", "f12crop"), ("rl/peer", "f12crop")])
        peer.samples.append(probe)
        mark = self._footnote(
            f"skimage richardson_lucy on {dims} estimated at {estimate:.0f} s (> "
            f"{RL_PEER_LIMIT_S:.0f} s) from the {cdims} crop: both sides measured on the crop"
        )
        self.rows.append(Row(f"rl {cdims} f32 crop{mark}", ours, peer, cmb32, "report only", "-"))
        self.rl_peer = Measure(peer.samples, scale=factor)

    def case_sparse(self) -> None:
        print("[sparse]", flush=True)
        dims, mb32 = self.shape_mb32("u12")
        lum, rgb, clipped = self.interleaved(
            [
                ("sparse-lum/ours", "u12"),
                ("sparse-rgb/ours", "u12"),
                ("sparse-rgb/ours", "u12clipped"),
            ]
        )
        limit = 20.0 * self.area
        for name, m in (("lum", lum), ("rgb", rgb)):
            t_ok = m.seconds <= limit
            mem_ok = m.peak_mb <= 6 * mb32
            self.rows.append(
                Row(
                    f"deblur sparse {name} {dims} u8",
                    m,
                    None,
                    mb32,
                    f"<={limit:g}s, peak<=6x",
                    f"t {_pf(t_ok)}, mem {_pf(mem_ok)}",
                )
            )
        share = self.clipped_share("u12clipped")
        self.rows.append(
            Row(
                f"deblur sparse rgb {dims} u8 {share * 100:.0f}% clipped",
                clipped,
                rgb,
                mb32,
                "report only",
                "-",
            )
        )
        peer, mark = self._context_peer(dims)
        self.rows.append(
            Row(f"  context: skimage RL{RL_ITER} {dims}{mark}", None, peer, mb32, "-", "-")
        )

    def _context_peer(self, dims: str) -> tuple[Measure, str]:
        if self.rl_peer is not None:
            peer = self.rl_peer
            how = (
                "measured at full size"
                if peer.scale == 1
                else f"run on its crop and extrapolated x{peer.scale:.2f} in pixels, linearly"
            )
            text = f"context peer: the rl case's peer, {how}, on the float32 scene u8 quantises"
            return peer, self._footnote(text)
        probe, factor = self.probe_peer("rl/peer", "u12", "u12crop")
        estimate = probe.seconds * factor
        if estimate <= CONTEXT_PEER_LIMIT_S:
            return Measure([run_child("rl/peer", self.input("u12"))]), ""
        mark = self._footnote(
            f"context peer extrapolated from one run on the {dims} image's centre crop "
            f"(x{factor:.2f} pixels, linear; MB is the crop's): not run at full size "
            f"(> {CONTEXT_PEER_LIMIT_S:.0f} s)"
        )
        return Measure([probe], scale=factor), mark

    def _footnote(self, text: str) -> str:
        self.footnotes.append(text)
        return "*" * len(self.footnotes)

    # -- report
    def table(self) -> str:
        head = (
            f"{'case':<36} {'ours s':>8} {'peer s':>8} {'ours/peer':>9} {'ours MB':>8} "
            f"{'peer MB':>8} {'ours/img32':>10}  {'target':<20} result"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            o, p = r.ours, r.peer
            ratio = o.seconds / p.seconds if o and p else None
            lines.append(
                f"{r.name:<36} {_num(o and o.seconds, 8, 2)} {_num(p and p.seconds, 8, 2)} "
                f"{_num(ratio, 9, 2, 'x')} {_num(o and o.peak_mb, 8, 0)} "
                f"{_num(p and p.peak_mb, 8, 0)} {_num(o and o.peak_mb / r.img32_mb, 10, 2, 'x')}  "
                f"{r.target:<20} {r.verdict}"
            )
        lines.append("")
        lines.append(
            f"times: best of {self.repeat} cold runs, each in a fresh process; MB: peak RSS above "
            "the loaded input (max over runs); ours/img32: ours MB over the image's float32 size"
        )
        for i, text in enumerate(self.footnotes, 1):
            lines.append(f"{'*' * i} {text}")
        return "\n".join(lines)


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _num(v: float | None, width: int, digits: int, suffix: str = "") -> str:
    if v is None:
        return f"{'-':>{width}}"
    return f"{v:.{digits}f}{suffix}".rjust(width)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of " + ",".join(CASES))
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the best is kept")
    ap.add_argument("--small", action="store_true", help="quarter-area images (quick check)")
    ap.add_argument("--child", nargs=2, metavar=("JOB", "NPY"), help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, metavar=("GROUP", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make:
        make_inputs(args.make[0], args.small, Path(args.make[1]))
        return 0
    if args.child:
        child_main(*args.child)
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = sorted(set(cases) - set(CASES))
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    import PIL
    import skimage

    print(
        f"clearshot speed benchmark: python {platform.python_version()}, numpy {np.__version__}, "
        f"opencv {cv2.__version__} ({cv2.getNumThreads()} threads), scikit-image "
        f"{skimage.__version__}, pillow {PIL.__version__}; {os.cpu_count()} CPUs; "
        f"{'--small (quarter area)' if args.small else 'full size'}",
        flush=True,
    )
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="clearshot-speed-"))
    try:
        bench = Bench(args.repeat, args.small, tmp)
        # rl runs before sparse, so the sparse case can reuse its peer measurement as context
        for case in sorted(cases, key=("wiener", "usm", "rl", "sparse").index):
            getattr(bench, f"case_{case}")()
        order = {c: i for i, c in enumerate(CASES)}
        bench.rows.sort(key=lambda r: order[_case_of(r.name)])
        print()
        print(bench.table())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


def _case_of(row_name: str) -> str:
    first = row_name.split()[0]
    return {"deblur": "sparse", "context:": "sparse"}.get(first, first)


if __name__ == "__main__":
    sys.exit(main())
