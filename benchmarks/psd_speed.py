"""PSD bridge speed and memory: open + sharpen one layer + save a 6000x4000 RGB 8-bit, 5-layer PSD.

    python benchmarks/psd_speed.py [--width 6000 --height 4000]

Each scenario runs in a fresh child process that reports its wall time, CPU time (user +
system, ``getrusage``: less sensitive than wall time to other jobs on a loaded machine) and
peak resident memory (``ru_maxrss``); the peer, psd-tools' own path (``layer.numpy()``,
replace the channel data, ``PSDImage.save()`` with its composite re-render), runs in the same
way in the same run.
The test file is generated once into ``benchmarks/results/`` (git-ignored) with psd-tools.

Scenarios
  bridge-replace-top   sharpen the top layer, --replace-pixels, composite patched exactly
  bridge-new-layer     sharpen a middle layer into a new layer with a black mask (default)
  bridge-replace-mid   sharpen a middle layer under others, composite updated exactly
                       through the layers above (psd-tools rendered it before)
  bridge-replace-low   sharpen "Sky" (half the canvas) under Portrait, Detail and Retouch,
                       composite updated exactly through all three
  bridge-new-detail-mask  sharpen a middle layer into a new layer masked by --mask detail
                       (core.masks.detail_mask), composite updated through the layers above
  psd-tools            the peer: psd-tools reads, replaces the top layer, save() re-renders
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCENARIOS = ("bridge-replace-top", "bridge-new-layer", "bridge-replace-mid",
             "bridge-replace-low", "bridge-new-detail-mask", "psd-tools")


def _make_file(path: Path, width: int, height: int) -> None:
    import numpy as np
    from psd_tools import PSDImage

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)

    def photo(seed: int, h: int, w: int, alpha: bool) -> np.ndarray:
        r = np.random.default_rng(seed)
        base = np.stack(
            [
                0.5
                + 0.4 * np.sin(xx[:h, :w] / (97 + 13 * c + seed)) * np.cos(yy[:h, :w] / (71 + seed))
                for c in range(3)
            ],
            axis=2,
        )
        base += r.normal(0, 0.04, base.shape).astype(np.float32)
        if alpha:
            a = np.ones((h, w, 1), np.float32)
            a[: h // 8] = 0
            base = np.concatenate([base, a], axis=2)
        return np.clip(base, 0, 1).astype(np.float32)

    psd = PSDImage.new("RGB", (width, height), depth=8)
    specs = [
        ("Background", 0, 0, height, width, False),
        ("Sky", 0, 0, height // 2, width, True),
        ("Portrait", height // 4, width // 4, height // 2, width // 2, True),
        ("Detail", height // 3, width // 2, height // 3, width // 3, True),
        ("Retouch", 0, 0, height, width, True),
    ]
    for i, (name, top, left, h, w, alpha) in enumerate(specs):
        arr = photo(i, h, w, alpha)
        psd.create_pixel_layer_from_array(
            (arr * 255).round().astype(np.uint8), name=name, top=top, left=left
        )
    del rng
    psd.save(path)  # psd-tools renders the composite here (once, when the file is made)


def _child(scenario: str, src: str, out: str) -> dict:
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru0.ru_utime + ru0.ru_stime
    t0 = time.perf_counter()
    if scenario == "psd-tools":
        import numpy as np
        from psd_tools import PSDImage
        from psd_tools.constants import ChannelID

        from core.sharpen import unsharp_mask

        psd = PSDImage.open(src)
        layer = [L for L in psd.descendants() if L.name == "Retouch"][0]
        arr = layer.numpy()  # float32, the documented way to read pixels
        res = unsharp_mask(np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8), 120, 1.5, 5)
        rec = layer._record
        w, h = rec.right - rec.left, rec.bottom - rec.top
        for info, data in zip(rec.channel_info, layer._channels, strict=True):
            if 0 <= info.id < 3:
                data.set_data(np.ascontiguousarray(res[:, :, info.id]).tobytes(), w, h, 8, 1)
                info.length = data._length
            elif info.id == ChannelID.TRANSPARENCY_MASK:
                pass
        psd.mark_updated()
        psd.save(out)  # re-renders the composite
        detail = "psd-tools save() with composite re-render"
    else:
        from psd_bridge.api import MaskSource, open_document, sharpen_operation

        op = sharpen_operation(120, 1.5, 5)
        with open_document(src) as doc:
            if scenario == "bridge-replace-top":
                doc.apply_to_layer(doc.find("Retouch"), op, mode="replace")
            elif scenario == "bridge-new-layer":
                doc.apply_to_layer(doc.find("Portrait"), op)
            elif scenario == "bridge-replace-low":
                doc.apply_to_layer(doc.find("Sky"), op, mode="replace")
            elif scenario == "bridge-new-detail-mask":
                doc.apply_to_layer(doc.find("Detail"), op, mask=MaskSource("detail"))
            else:
                doc.apply_to_layer(doc.find("Detail"), op, mode="replace")
            report = doc.save(out)
        c = report["composite"]
        detail = f"composite {c['action']}" + (
            f" by {c['method']} of {c['fraction']:.0%}" if c["action"] == "update" else ""
        )
    secs = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak = ru.ru_maxrss * 1024  # Linux: KiB
    cpu = ru.ru_utime + ru.ru_stime - cpu0  # less sensitive to other jobs' load than wall time
    return dict(scenario=scenario, seconds=round(secs, 2), cpu_seconds=round(cpu, 2),
                peak_bytes=peak, detail=detail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--only", choices=SCENARIOS, action="append")
    ap.add_argument("--make", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=3, metavar=("SCENARIO", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    if args.make:
        _make_file(Path(args.make), args.width, args.height)
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    src = RESULTS / f"bench_{args.width}x{args.height}_5layers.psd"
    if not src.exists():
        # in a child: Linux keeps a process's peak RSS across fork and exec, so the parent
        # must stay small for the children's ru_maxrss to mean anything
        print(f"making {src} (psd-tools, once) ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--make",
                str(src),
                "--width",
                str(args.width),
                "--height",
                str(args.height),
            ],
            check=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    print(f"{src.name}: {src.stat().st_size / 1e6:.0f} MB, {os.cpu_count()} CPUs")
    rows = []
    for sc in args.only or SCENARIOS:
        out = RESULTS / f"out_{sc}.psd"
        if out.exists():
            out.unlink()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.run(
            [sys.executable, __file__, "--child", sc, str(src), str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if p.returncode:
            print(f"{sc}: failed\n{p.stderr[-2000:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"{sc:20s} {r['seconds']:7.2f} s wall {r['cpu_seconds']:7.2f} s CPU  "
            f"{r['peak_bytes'] / 2**30:5.2f} GiB peak  "
            f"{r['detail']}",
            flush=True,
        )
        out.unlink(missing_ok=True)
    peer = next((r for r in rows if r["scenario"] == "psd-tools"), None)
    if peer:
        for r in rows:
            if r is not peer:
                print(
                    f"{r['scenario']:20s} {peer['seconds'] / r['seconds']:5.1f}x faster, "
                    f"{peer['peak_bytes'] / r['peak_bytes']:4.1f}x less memory than psd-tools"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
