#!/usr/bin/env python3
"""Install the Clearshot GIMP 3 plug-in without the ``clearshot`` command.

    python3 install/install_gimp.py [--dry-run] [--uninstall] [--plugin-dir DIR] [--runtime ...]

Same options as ``clearshot install-gimp``; run it from a clone or an unpacked source archive.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from install import cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(prog="install_gimp.py", description=cli.COMMANDS[
        "install-gimp"][0])
    cli.configure(parser)
    args = parser.parse_args()
    try:
        return cli.run(args)
    except (ValueError, FileExistsError) as exc:
        print(f"install_gimp.py: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"install_gimp.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
