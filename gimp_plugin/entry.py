#!/usr/bin/env python3
"""Clearshot for GIMP 3: Filters › Deblur (installed as ``plug-ins/clearshot/clearshot.py``).

Imports only ``gi`` and this plug-in's pure-Python modules at load time; the engine (numpy,
OpenCV) is found when a filter runs.
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# installed: gimp_plugin/ sits beside this file; in a source checkout this file is inside it
ROOT = HERE if os.path.isdir(os.path.join(HERE, "gimp_plugin")) else os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from gimp_plugin.host import ClearshotPlugIn  # noqa: E402

Gimp.main(ClearshotPlugIn.__gtype__, sys.argv)
