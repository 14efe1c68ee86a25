"""Install the GIMP 3 plug-in: find GIMP's plug-in folders, copy, prepare the engine, verify.

Layout GIMP 3.0 needs: ``<plug-ins>/clearshot/clearshot.py`` (executable; a wrong name or a
missing run bit is ignored silently by GIMP), here with ``gimp_plugin/`` and ``core/`` beside it,
``engine.json`` (where the engine runs, see :mod:`gimp_plugin.engine`) and
``clearshot-install.json`` (the manifest that makes uninstalling safe).

User plug-in folders of GIMP 3.0 (GIMP's ``gimp_directory()`` + ``plug-ins``):

========  ===========================================================================
Linux     ``$XDG_CONFIG_HOME/GIMP/3.0/plug-ins`` (default ``~/.config/GIMP/3.0/plug-ins``)
Flatpak   ``~/.var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins``
Snap      ``~/snap/gimp/current/.config/GIMP/3.0/plug-ins``
Windows   ``%APPDATA%\\GIMP\\3.0\\plug-ins``
macOS     ``~/Library/Application Support/GIMP/3.0/plug-ins``
any       ``$GIMP3_DIRECTORY/plug-ins`` when that variable is set (it replaces the above)
========  ===========================================================================

Engine runtimes (``runtime=``): ``current`` uses the Python running the installer (it must have
numpy and OpenCV) as the worker; ``venv`` makes a private virtual environment inside the plug-in
folder; ``wheels`` puts numpy + OpenCV wheels for GIMP's own Python version into
``runtime/site`` (imported in-process); ``none`` relies on GIMP's Python having them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

__all__ = [
    "NAME",
    "GIMP_SERIES",
    "RUNTIMES",
    "Target",
    "candidate_dirs",
    "choose_targets",
    "install",
    "uninstall",
    "verify",
    "current_system",
]

NAME = "clearshot"
GIMP_SERIES = "3.0"
FLATPAK_ID = "org.gimp.GIMP"
MANIFEST = "clearshot-install.json"
RUNTIMES = ("current", "venv", "wheels", "none")
# core's own dependencies (pyproject.toml) without psd-tools: core.io reads PSF files with Pillow
# and tifffile
ENGINE_REQUIREMENTS = (
    "numpy>=1.24",
    "opencv-python-headless>=4.8,<5",
    "pillow>=10",
    "tifffile>=2023.7",
)
SOURCE_ROOT = Path(__file__).resolve().parents[1]
Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """A GIMP 3 plug-in folder: ``kind`` names the install flavour; ``present`` when GIMP has
    created its configuration folder there (GIMP 3 ran at least once)."""

    kind: str
    plugin_dir: PurePath
    present: bool


def current_system() -> str:
    """'Linux', 'Windows' or 'Darwin' (platform.system())."""
    return platform.system()


def candidate_dirs(
    system: str,
    env: Mapping[str, str],
    home: PurePath | str,
    *,
    is_dir: Callable[[PurePath], bool] = lambda p: os.path.isdir(p),
) -> list[Target]:
    """Every GIMP 3.0 user plug-in folder for ``system``, most likely first (pure; testable)."""
    pure = PureWindowsPath if system == "Windows" else PurePosixPath
    home = pure(home)
    found: list[tuple[str, PurePath]] = []
    if env.get("GIMP3_DIRECTORY"):
        found.append(("GIMP3_DIRECTORY", pure(env["GIMP3_DIRECTORY"]) / "plug-ins"))
    if system == "Windows":
        appdata = pure(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
        found.append(("windows", appdata / "GIMP" / GIMP_SERIES / "plug-ins"))
    elif system == "Darwin":
        support = home / "Library" / "Application Support"
        found.append(("macos", support / "GIMP" / GIMP_SERIES / "plug-ins"))
    else:
        config = pure(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        found.append(("linux", config / "GIMP" / GIMP_SERIES / "plug-ins"))
        flatpak = home / ".var" / "app" / FLATPAK_ID / "config"
        found.append(("flatpak", flatpak / "GIMP" / GIMP_SERIES / "plug-ins"))
        snap = home / "snap" / "gimp" / "current" / ".config"
        found.append(("snap", snap / "GIMP" / GIMP_SERIES / "plug-ins"))
    return [Target(kind, path, is_dir(path.parent)) for kind, path in found]


def choose_targets(candidates: list[Target]) -> list[Target]:
    """Where to install: $GIMP3_DIRECTORY if set, else every GIMP 3 that has run here, else the
    platform's native folder (GIMP creates the rest on its first start)."""
    if candidates and candidates[0].kind == "GIMP3_DIRECTORY":
        return [candidates[0]]
    present = [t for t in candidates if t.present]
    return present or candidates[:1]


# --- copying ----------------------------------------------------------------------------------


def _payload(source: Path) -> list[tuple[Path, str]]:
    """(source file, relative destination) pairs of the plug-in and the engine."""
    files = [(source / "gimp_plugin" / "entry.py", f"{NAME}.py")]
    for pkg in ("gimp_plugin", "core"):
        for f in sorted((source / pkg).glob("*.py")):
            files.append((f, f"{pkg}/{f.name}"))
    typed = source / "core" / "py.typed"
    if typed.exists():
        files.append((typed, "core/py.typed"))
    for f in sorted((source / "core" / "presets").glob("*.toml")):  # the built-in recipes
        files.append((f, f"core/presets/{f.name}"))
    # the AI pass: its code, and the shipped model with its registry (sha256 checked at load)
    for pattern in ("ai/*.py", "ai/models/*.py", "ai/models/*.onnx", "ai/models/*.json"):
        for f in sorted((source / "core").glob(pattern)):
            files.append((f, f"core/{f.relative_to(source / 'core').as_posix()}"))
    return files


def _engine_json(runtime: str, python: str | None) -> dict:
    if runtime == "wheels":
        return {"mode": "auto", "python": None, "site": ["runtime/site"]}
    if runtime in ("current", "venv"):
        return {"mode": "auto", "python": python, "site": []}
    return {"mode": "auto", "python": None, "site": []}


def _venv_python(root: Path, system: str | None = None) -> Path:
    """The private venv's interpreter: ``Scripts\\python.exe`` on Windows, ``bin/python``
    on Linux and macOS (``system`` as :func:`current_system`, for tests)."""
    system = current_system() if system is None else system
    sub = "Scripts/python.exe" if system == "Windows" else "bin/python"
    return root / "runtime" / "venv" / sub


def _pip_wheels_cmd(
    site: Path, python_version: str, platform_tag: str | None, wheel_dir: Path | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(site), "--only-binary=:all:", "--python-version", python_version]
    if platform_tag:
        cmd += ["--platform", platform_tag]
    if wheel_dir is not None:  # offline: only the wheels in that folder
        # pip (23.x) checks local wheels' Requires-Python against the running interpreter, not
        # --python-version; the cpXY/abi3 tags asked for above already pin the version
        cmd += ["--no-index", "--find-links", str(wheel_dir), "--ignore-requires-python"]
    return cmd + list(ENGINE_REQUIREMENTS)


def install(
    target_dir: Path,
    *,
    runtime: str = "current",
    python_version: str | None = None,
    platform_tag: str | None = None,
    wheel_dir: Path | None = None,
    dry_run: bool = False,
    say: Say = print,
    source: Path = SOURCE_ROOT,
) -> Path:
    """Install into ``target_dir/clearshot``; returns that folder. Raises on any failure, after
    removing what it made (an existing install is replaced only once the new one verified)."""
    if runtime not in RUNTIMES:
        msg = f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}"
        raise ValueError(msg)
    if runtime == "wheels" and not python_version:
        msg = "--runtime wheels needs --python-version (the X.Y of GIMP's Python)"
        raise ValueError(msg)
    dest = Path(target_dir) / NAME
    if dest.exists() and not (dest / MANIFEST).is_file():
        msg = f"{dest} exists and was not made by this installer; move it away first"
        raise FileExistsError(msg)
    files = _payload(source)
    verb = "would" if dry_run else "will"
    say(f"{verb} install the Clearshot GIMP plug-in into {dest}")
    say(f"  {len(files)} files: {NAME}.py (executable), gimp_plugin/, core/")
    say(f"  engine runtime '{runtime}': " + {
        "current": f"worker runs {sys.executable}",
        "venv": f"private venv in {dest / 'runtime' / 'venv'} with "
                + ", ".join(ENGINE_REQUIREMENTS),
        "wheels": f"{', '.join(ENGINE_REQUIREMENTS)} wheels for Python {python_version}"
                  f"{' on ' + platform_tag if platform_tag else ''} in {dest / 'runtime/site'}"
                  f"{' from ' + str(wheel_dir) if wheel_dir else ''}",
        "none": "GIMP's own Python must import numpy and OpenCV",
    }[runtime])
    say(f"  {verb} verify the installed files and the engine")
    if dry_run:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        for src, rel in files:
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
        entry = tmp / f"{NAME}.py"
        entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        python = None
        if runtime == "current":
            python = sys.executable
        elif runtime == "venv":
            subprocess.run([sys.executable, "-m", "venv", str(tmp / "runtime" / "venv")],
                           check=True)
            vpy = _venv_python(tmp)
            subprocess.run([str(vpy), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", *ENGINE_REQUIREMENTS], check=True)
            python = str(_venv_python(dest))
        elif runtime == "wheels":
            site = tmp / "runtime" / "site"
            cmd = _pip_wheels_cmd(site, python_version, platform_tag, wheel_dir)
            subprocess.run(cmd, check=True)
        config = _engine_json(runtime, python)
        (tmp / "engine.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        manifest = {"name": NAME, "gimp": GIMP_SERIES, "runtime": runtime,
                    "python_version": python_version, "files": [rel for _, rel in files]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        check_python = str(_venv_python(tmp)) if runtime == "venv" else python
        this_version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        if runtime == "wheels" and python_version == this_version and platform_tag is None:
            check_python = sys.executable  # wheels for this very Python: run the engine check
        verify(tmp, python=check_python, say=say)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"installed {dest}; restart GIMP and look under Filters › Deblur")
    return dest


def verify(dest: Path, *, python: str | None = None, say: Say = print) -> None:
    """Check an installed plug-in: entry point executable, sources compile, engine answers."""
    entry = dest / f"{NAME}.py"
    if not entry.is_file():
        msg = f"{entry} is missing"
        raise RuntimeError(msg)
    if os.name != "nt" and not os.access(entry, os.X_OK):
        msg = f"{entry} is not executable; GIMP would ignore it"
        raise RuntimeError(msg)
    for f in [entry, *dest.glob("gimp_plugin/*.py"), *dest.glob("core/*.py"),
              *dest.glob("core/ai/*.py")]:
        compile(f.read_text(encoding="utf-8"), str(f), "exec")
    json.loads((dest / "engine.json").read_text(encoding="utf-8"))
    if python is None:
        say("  verified files (the engine runs in GIMP's own Python, not checked here)")
        return
    site = json.loads((dest / "engine.json").read_text(encoding="utf-8")).get("site", [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(dest), *(str(dest / s) for s in site)])
    res = subprocess.run([python, "-m", "gimp_plugin.worker", "--check"], capture_output=True,
                         text=True, env=env, cwd=dest, timeout=300)
    if res.returncode != 0 or res.stdout.strip().splitlines()[-1:] != ["done"]:
        msg = (f"the engine did not run with {python}: {res.stdout.strip()} "
               f"{res.stderr.strip()[-600:]}")
        raise RuntimeError(msg)
    say(f"  verified: files compile, {NAME}.py is executable, engine runs with {python}")


def uninstall(target_dir: Path, *, dry_run: bool = False, say: Say = print) -> bool:
    """Remove ``target_dir/clearshot`` if this installer made it; False if nothing was there."""
    dest = Path(target_dir) / NAME
    if not dest.exists():
        say(f"nothing installed in {dest}")
        return False
    if not (dest / MANIFEST).is_file():
        msg = f"{dest} was not made by this installer (no {MANIFEST}); not removing it"
        raise FileExistsError(msg)
    say(f"{'would remove' if dry_run else 'removing'} {dest}")
    if not dry_run:
        shutil.rmtree(dest)
    return True
