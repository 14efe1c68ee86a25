"""Installers: put the GIMP 3 plug-in where GIMP finds it and give it an engine runtime.

Not implemented yet (see the GIMP plug-in issue); ``install/dev-setup.sh`` sets up a
development environment.
"""
