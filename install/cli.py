"""``clearshot install-gimp``: install, verify or remove the GIMP 3 plug-in.

Registered in the CLI through :data:`COMMANDS`; ``install/install_gimp.py`` runs the same code
for people without the ``clearshot`` command.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import gimp

__all__ = ["COMMANDS", "configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of install-gimp."""
    p.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-in")
    p.add_argument("--plugin-dir", metavar="DIR", action="append",
                   help="GIMP plug-ins folder to use instead of the ones found (repeatable)")
    p.add_argument("--runtime", choices=gimp.RUNTIMES, default="current",
                   help="engine runtime: current (this Python, default), venv (private venv), "
                        "wheels (numpy/OpenCV wheels for GIMP's Python), none")
    p.add_argument("--python-version", metavar="X.Y",
                   help="GIMP's Python version, for --runtime wheels")
    p.add_argument("--platform", metavar="TAG",
                   help="wheel platform tag for --runtime wheels (e.g. win_amd64, "
                        "macosx_11_0_arm64, manylinux_2_28_x86_64); default: this machine")
    p.add_argument("--wheel-dir", metavar="DIR", type=Path,
                   help="install the wheels from DIR only (offline; fill it with pip download)")


def _targets(args: argparse.Namespace) -> list[Path]:
    if args.plugin_dir:
        return [Path(d).expanduser() for d in args.plugin_dir]
    found = gimp.candidate_dirs(gimp.current_system(), os.environ, Path.home())
    chosen = gimp.choose_targets(found)
    for t in found:
        mark = "->" if t in chosen else "  "
        print(f"{mark} {t.kind:16} {t.plugin_dir}{'' if t.present else '  (GIMP 3 not run here)'}")
    for t in chosen:
        if t.kind in ("flatpak", "snap") and args.runtime == "current":
            print(f"warning: the {t.kind} GIMP runs sandboxed and cannot start this Python; use "
                  "--runtime wheels --python-version X.Y (the sandbox's Python)")
    return [Path(t.plugin_dir) for t in chosen]


def run(args: argparse.Namespace) -> int:
    """Install (or uninstall) into every chosen folder; 0 on success."""
    for folder in _targets(args):
        if args.uninstall:
            gimp.uninstall(folder, dry_run=args.dry_run)
        else:
            gimp.install(folder, runtime=args.runtime, python_version=args.python_version,
                         platform_tag=args.platform, wheel_dir=args.wheel_dir,
                         dry_run=args.dry_run)
    return 0


COMMANDS = {
    "install-gimp": (
        "install the GIMP 3 plug-in (Filters > Deblur) and its engine runtime",
        configure,
        run,
    ),
}
