"""Host side of the in-GIMP test: build or reuse the chroot, install the plug-in with the
project's installer, write inputs and the job, run every scenario in one GIMP start.

Used by ``test_in_gimp.py``; also runnable by hand: ``python3 tests/gimp_plugin/gimp_harness.py``
prints the results folder. Needs root (chroot, mounts). The chroot lives outside the repository
(``$CLEARSHOT_GIMP_CHROOT``, default ``/var/cache/clearshot/gimp3-chroot``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from core.psf import defocus_psf, gaussian_psf, motion_psf  # noqa: E402

HERE = Path(__file__).resolve().parent
CHROOT = Path(os.environ.get("CLEARSHOT_GIMP_CHROOT", "/var/cache/clearshot/gimp3-chroot"))
WORK = "/opt/clearshot-it"  # inside the chroot
GIMP_DIR = f"{WORK}/gimp3"  # GIMP3_DIRECTORY inside the chroot; the installer finds plug-ins/
GIMP_TIMEOUT_S = 600
CANCEL_HOOK_FILE = f"{WORK}/cancel-after"  # gimp_plugin/progress.py's test hook
WHEELS = Path(os.environ.get("CLEARSHOT_GIMP_WHEELS", f"{CHROOT}-wheels-cp313"))
WHEEL_TAGS = ["--only-binary=:all:", "--python-version", "3.13",
              "--platform", "manylinux_2_28_x86_64"]
H, W = 120, 160
MOTION = {"length-px": 9.0, "angle-deg": 30.0}
FOCUS_R = 3.0
GAUSS_S = 1.5
SHARED = Path(os.environ.get("CLEARSHOT_SHARED", REPO.parent / "shared"))
KODIM04 = SHARED / "data" / "deblur" / "sharp" / "kodak24" / "kodim04.png"  # a portrait
PORTRAIT = "portrait-focus8.png"  # kodim04 defocused: the dialog's face preview (when present)


class Unavailable(Exception):
    """The chroot cannot be built or run here (not root, no debootstrap, no network)."""


def why_unavailable() -> str | None:
    """None when the in-GIMP test can run here, else the reason."""
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mounts)"
    ready = (CHROOT / ".clearshot-ready").is_file()
    if not ready:
        if not shutil.which("debootstrap") and not shutil.which("apt-get"):
            return "no debootstrap and no apt-get to install it"
        try:
            socket.create_connection(("deb.debian.org", 80), timeout=5).close()
        except OSError:
            return "no network to deb.debian.org to build the chroot"
    return None


def build_chroot() -> float:
    """Build or reuse the chroot; returns seconds spent."""
    t = time.monotonic()
    res = subprocess.run(["bash", str(HERE / "build_chroot.sh"), str(CHROOT)],
                         capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        msg = f"build_chroot.sh failed ({res.returncode}): {res.stdout[-2000:]}{res.stderr[-2000:]}"
        raise RuntimeError(msg)
    return time.monotonic() - t


# --- inputs ---------------------------------------------------------------------------------


def scene(h: int = H, w: int = W, seed: int = 3) -> np.ndarray:
    """Photo-like float32 sRGB scene: gradients, discs, lines and text-like detail."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([0.25 + 0.5 * xx / w, 0.6 - 0.3 * yy / h, 0.5 + 0.2 * np.sin(xx / 9)], 2)
    for _ in range(90):
        r = int(2 + 10 * rng.random() ** 2)
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, c, r, (rng.random(3) * 0.85 + 0.1).tolist(), -1, lineType=cv2.LINE_AA)
    for _ in range(12):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, (rng.random(3)).tolist(), 1, lineType=cv2.LINE_AA)
    return np.clip(img, 0, 1).astype(np.float32)


def blur(srgb: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Blur in linear light (as a lens does), reflecting at the border."""
    k = psf[::-1, ::-1].astype(np.float32).copy()
    lin = srgb_to_linear(srgb)
    out = cv2.filter2D(lin, -1, k, borderType=cv2.BORDER_REFLECT).reshape(lin.shape)
    return np.clip(linear_to_srgb(out), 0, 1)


def _q8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _q16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 65535), 0, 65535).astype(np.uint16)


def _write(path: Path, a: np.ndarray) -> None:
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    if not cv2.imwrite(str(path), np.ascontiguousarray(a)):
        msg = f"cannot write {path}"
        raise OSError(msg)


def make_inputs(folder: Path) -> dict[str, np.ndarray]:
    """Write the test images; return the sharp references (float32 sRGB) by name."""
    folder.mkdir(parents=True, exist_ok=True)
    sharp = scene()
    mpsf = motion_psf(MOTION["length-px"], MOTION["angle-deg"])
    _write(folder / "sharp8.png", _q8(sharp))
    _write(folder / "motion8.png", _q8(blur(sharp, mpsf)))
    _write(folder / "focus16.png", _q16(blur(sharp, defocus_psf(FOCUS_R))))
    gray = sharp @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    _write(folder / "gauss-gray8.png", _q8(blur(gray[:, :, None], gaussian_psf(GAUSS_S))[:, :, 0]))
    lsharp = scene(80, 100, seed=7)
    alpha = np.clip(np.mgrid[:80, :100][1] / 60.0, 0, 1).astype(np.float32)
    alpha[:, :8] = 0  # a fully transparent strip
    rgba = np.concatenate([blur(lsharp, mpsf), alpha[:, :, None]], 2)
    _write(folder / "layer-rgba8.png", _q8(rgba))
    np.save(folder / "motion-psf.npy", mpsf)
    if KODIM04.is_file():
        face = cv2.imread(str(KODIM04), cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255
        _write(folder / PORTRAIT, _q8(blur(face, defocus_psf(FOCUS_R))))
    return {"sharp": sharp, "gray": gray, "layer": lsharp, "layer_alpha": _q8(alpha)}


def job() -> dict:
    """What the batch runs (gimp_batch.py reads it)."""
    m = {**MOTION, "mode": "motion", "strength": 50.0}
    return {
        "gimp_dir": GIMP_DIR,
        "procedures": ["python-fu-clearshot-deblur", "python-fu-clearshot-unsharp-mask",
                       "python-fu-clearshot-analyze", "python-fu-clearshot-hybrid"],
        "absent": [],
        "scenarios": {
            "rgb8_motion_feathered": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 30, 24, 96, 70, 10.0], "dump": ["R'G'B' u8", "uint8"],
                "args": m},
            "rgb16_focus": {
                "kind": "simple", "file": "focus16.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 24, 20, 100, 76, 0], "dump": ["R'G'B' u16", "uint16"],
                "args": {"mode": "focus", "radius-px": FOCUS_R, "strength": 50.0}},
            "float_linear_focus_ellipse": {
                "kind": "simple", "file": "focus16.png", "proc": "python-fu-clearshot-deblur",
                "precision": "FLOAT_LINEAR", "select": ["ellipse", 20, 16, 110, 84, 0],
                "dump": ["RGB float", "float32"],
                "args": {"mode": "focus", "radius-px": FOCUS_R, "strength": 50.0}},
            "u16_linear_motion": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "precision": "U16_LINEAR", "select": ["rect", 30, 24, 96, 70, 0],
                "dump": ["RGB u16", "uint16"], "args": m},
            "float_perceptual_motion": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "precision": "FLOAT_NON_LINEAR", "select": ["rect", 30, 24, 96, 70, 0],
                "dump": ["R'G'B' float", "float32"], "args": m},
            "gray8_gaussian_whole": {
                "kind": "simple", "file": "gauss-gray8.png", "proc": "python-fu-clearshot-deblur",
                "select": None, "dump": ["Y' u8", "uint8"],
                "args": {"mode": "gaussian", "sigma-px": GAUSS_S, "strength": 50.0}},
            "psf_file_auto": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 30, 24, 96, 70, 0], "dump": ["R'G'B' u8", "uint8"],
                "args": {"mode": "auto", "psf-file": f"{WORK}/in/motion-psf.npy",
                         "strength": 50.0}},
            "rgb8_auto_motion": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 30, 24, 96, 70, 0], "dump": ["R'G'B' u8", "uint8"],
                "args": {"mode": "auto", "strength": 50.0}},
            "rgb8_auto_sharp": {
                "kind": "simple", "file": "sharp8.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 30, 24, 96, 70, 0], "dump": ["R'G'B' u8", "uint8"],
                "args": {"mode": "auto", "strength": 50.0}},
            "unsharp_rgb8": {
                "kind": "simple", "file": "sharp8.png", "proc": "python-fu-clearshot-unsharp-mask",
                "select": ["rect", 20, 20, 90, 60, 0], "dump": ["R'G'B' u8", "uint8"],
                "args": {"amount": 150.0, "radius": 1.5, "threshold": 2.0,
                         "limit-halos": True, "halo-limit": 10.0}},
            "old_photo_rgb8": {
                "kind": "simple", "file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 30, 24, 96, 70, 0], "dump": ["R'G'B' u8", "uint8"],
                "args": {"mode": "old-photo"}},
            "ai_rgb16_focus": {
                "kind": "simple", "file": "focus16.png", "proc": "python-fu-clearshot-deblur",
                "select": ["rect", 24, 20, 100, 76, 0], "dump": ["R'G'B' u16", "uint16"],
                "args": {"mode": "ai", "strength": 50.0}},
        },
        "hybrid": {"file": "motion8.png", "select": ["rect", 30, 24, 96, 70, 8.0],
                   "args": {"recipe": "motion", "mask": "selection"}},
        "analyze": {"file": "motion8.png", "select": [30, 24, 96, 70]},
        "rgba_offset": {"background": "motion8.png", "layer": "layer-rgba8.png",
                        "offset": [30, 25], "select": [50, 40, 70, 50], "args": m},
        "two_layers": {"file": "motion8.png", "offset": [16, 12], "select": [30, 24, 96, 70],
                       "args": m},
        "worker": {"file": "motion8.png", "select": [30, 24, 96, 70], "args": m,
                   "python": "/usr/bin/python3",
                   "site": f"{GIMP_DIR}/plug-ins/clearshot/runtime/site",
                   "engine_json": f"{GIMP_DIR}/plug-ins/clearshot/engine.json"},
        "cancel": {"file": "motion8.png", "select": [30, 24, 96, 70], "args": m, "after": 3,
                   "hook_file": CANCEL_HOOK_FILE, "python": "/usr/bin/python3",
                   "engine_json": f"{GIMP_DIR}/plug-ins/clearshot/engine.json"},
        "killed": {"file": "motion8.png", "size": [1600, 1200], "delay_s": 1.0,
                   "args": {**m, "method": "rl"}, "python": "/usr/bin/python3",
                   "engine_json": f"{GIMP_DIR}/plug-ins/clearshot/engine.json"},
        "errors": {
            "hybrid_unknown_recipe": {"file": "motion8.png", "proc": "python-fu-clearshot-hybrid",
                                      "args": {"recipe": "portrat", "mask": "black"}},
            "hybrid_layer_group": {"file": "motion8.png", "proc": "python-fu-clearshot-hybrid",
                                   "group": True, "args": {"recipe": "portrait"}},
            "missing_psf_file": {"file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                                 "args": {"mode": "motion", "psf-file": "/nonexistent/k.npy"}},
            "layer_group": {"file": "motion8.png", "proc": "python-fu-clearshot-deblur",
                            "group": True, "args": m},
            "analyze_layer_group": {"file": "motion8.png", "proc": "python-fu-clearshot-analyze",
                                    "group": True, "args": {}},
        },
        "dialogs": {
            **({"portrait": {"proc": "python-fu-clearshot-deblur", "file": PORTRAIT,
                             "select": None, "args": {"mode": "focus", "radius-px": FOCUS_R,
                                                      "strength": 50.0}}}
               if KODIM04.is_file() else {}),
            "deblur": {"proc": "python-fu-clearshot-deblur", "file": "motion8.png",
                       "select": [20, 16, 120, 90], "args": m},
            "unsharp": {"proc": "python-fu-clearshot-unsharp-mask", "file": "sharp8.png",
                        "select": [20, 16, 120, 90], "args": {}},
            "hybrid": {"proc": "python-fu-clearshot-hybrid", "file": "motion8.png",
                       "select": [20, 16, 120, 90], "args": {"recipe": "motion", "mask": "black"}},
        },
    }


# --- running --------------------------------------------------------------------------------


def fetch_wheels(log: list[str]) -> Path:
    """Download the engine wheels for trixie's Python 3.13 into a cache beside the chroot (kept,
    so later runs work offline)."""
    from install.gimp import ENGINE_REQUIREMENTS

    res = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                          "--disable-pip-version-check", "-d", str(WHEELS), *WHEEL_TAGS,
                          *ENGINE_REQUIREMENTS], capture_output=True, text=True, timeout=900)
    log.append(res.stdout + res.stderr)
    if res.returncode != 0 and not any(WHEELS.glob("opencv*.whl")):
        msg = f"cannot download the engine wheels: {res.stderr[-2000:]}"
        raise RuntimeError(msg)
    return WHEELS


def install_plugin(log: list[str]) -> float:
    """Install into the chroot's GIMP3_DIRECTORY with the project's installer (wheels runtime
    for trixie's Python 3.13, from the local wheel cache); returns seconds."""
    t = time.monotonic()
    wheels = fetch_wheels(log)
    env = dict(os.environ, GIMP3_DIRECTORY=str(CHROOT) + GIMP_DIR)
    for args in (["--uninstall"], ["--runtime", "wheels", *WHEEL_TAGS[1:],
                                   "--wheel-dir", str(wheels)]):
        res = subprocess.run([sys.executable, str(REPO / "install" / "install_gimp.py"), *args],
                             capture_output=True, text=True, env=env, timeout=900)
        log.append(res.stdout + res.stderr)
        if res.returncode != 0:
            msg = f"installer failed: {res.stdout} {res.stderr}"
            raise RuntimeError(msg)
    return time.monotonic() - t


def _mount() -> None:
    for src, dst, opts in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"]),
                           ("/dev/pts", "dev/pts", ["--bind"])):
        target = CHROOT / dst
        if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
            subprocess.run(["mount", *opts, src, str(target)], check=True)


def _umount() -> None:
    """Unmount until nothing is left (mounts can stack; a busy one is detached lazily)."""
    for dst in ("dev/pts", "dev", "proc"):
        target = CHROOT / dst
        for _ in range(3):
            if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
                break
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], check=False)


def run_gimp(out: Path) -> dict:
    """Everything in one GIMP start (under Xvfb for the dialogs); returns results + timings."""
    work = CHROOT / WORK.lstrip("/")
    for sub in ("in", "out", "home"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True)
    (work / "gimp3" / "clearshot.log").unlink(missing_ok=True)  # this run's log only
    (CHROOT / CANCEL_HOOK_FILE.lstrip("/")).unlink(missing_ok=True)
    # an interactive run starts from the values of the last interactive run, kept on disk; the
    # batch writes the values each dialog should show (_last_values), nothing older is left
    for last in (work / "gimp3" / "plug-in-settings").glob("GimpProcedureConfigRun-*.last"):
        last.unlink()
    refs = make_inputs(work / "in")
    (work / "job.json").write_text(json.dumps(job(), indent=1))
    shutil.copyfile(HERE / "gimp_batch.py", work / "batch.py")
    cmd = [
        "timeout", str(GIMP_TIMEOUT_S), "chroot", str(CHROOT), "env", "-i",
        f"HOME={WORK}/home", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
        f"GIMP3_DIRECTORY={GIMP_DIR}", f"CLEARSHOT_IT_WORK={WORK}",
        f"CLEARSHOT_DIALOG_SNAPSHOT={WORK}/out", f"CLEARSHOT_TEST_CANCEL_FILE={CANCEL_HOOK_FILE}",
        "xvfb-run", "-a", "-s", "-screen 0 1280x1024x24",
        "gimp-console-3.0", "-i", "-n", "-f", "--batch-interpreter=python-fu-eval",
        "-b", f"exec(open('{WORK}/batch.py').read())", "--quit",
    ]
    _mount()
    t = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        _umount()
    seconds = time.monotonic() - t
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(work / "out", out)
    (out / "gimp.stdout").write_text(res.stdout)
    (out / "gimp.stderr").write_text(res.stderr)
    log = work / "gimp3" / "clearshot.log"
    if log.exists():
        shutil.copyfile(log, out / "clearshot.log")
    results_path = out / "results.json"
    if not results_path.exists():
        msg = (f"GIMP exited {res.returncode} after {seconds:.0f}s without results: "
               f"{res.stdout[-3000:]} {res.stderr[-3000:]}")
        raise RuntimeError(msg)
    results = json.loads(results_path.read_text())
    results["gimp_rc"] = res.returncode
    results["gimp_seconds"] = round(seconds, 1)
    results["refs"] = refs
    return results


def run_all(out: Path) -> dict:
    """Build/reuse the chroot, install, run GIMP; results with timings. Runs one at a time on
    this machine (a lock beside the chroot): the chroot, its mounts and its work folder are
    shared, and a second run would reinstall the plug-in and unmount /proc under the first."""
    import fcntl

    log: list[str] = []
    CHROOT.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{CHROOT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t_build = build_chroot()
        t_install = install_plugin(log)
        results = run_gimp(out)
    results["chroot_seconds"] = round(t_build, 1)
    results["install_seconds"] = round(t_install, 1)
    results["install_log"] = "\n".join(log)
    return results


if __name__ == "__main__":
    reason = why_unavailable()
    if reason:
        sys.exit(f"cannot run: {reason}")
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clearshot-gimp-it")
    r = run_all(target)
    r.pop("refs")
    print(json.dumps({k: v for k, v in r.items()}, indent=1, default=str)[:20000])
    print("outputs in", target)
