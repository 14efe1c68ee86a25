"""Installers: put the GIMP 3 plug-in where GIMP finds it and give it an engine runtime.

``install/gimp.py`` finds GIMP 3's plug-in folders (Linux, Flatpak, Snap, Windows, macOS), copies
the plug-in, prepares its engine runtime, verifies and uninstalls; ``install/cli.py`` exposes it
as ``clearshot install-gimp``; ``install/install_gimp.py`` is the same without the CLI;
``install/dev-setup.sh`` sets up a development environment.
"""
