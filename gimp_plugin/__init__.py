"""GIMP 3 plug-in: Filters > Deblur, a thin adapter over :mod:`core`.

Importing this package imports neither ``gi`` nor numpy: GIMP's bundled Python on Windows and
macOS has no numpy, so the plug-in registers with only ``gi`` and finds the engine at run time
(in-process, or a worker in the runtime ``install/`` prepared).

Modules
-------
``params``   GIMP argument values -> engine request (pure Python, validates, units)
``errors``   exceptions and their PDB status (pure Python)
``npyio``    raw float32 bytes <-> ``.npy`` files without numpy (worker exchange)
``engine``   runs a request in-process or in the worker, with progress and cancel
``ops``      request + float32 array -> core call (imported only where numpy exists)
``worker``   ``python -m gimp_plugin.worker REQUEST.json``: the out-of-process engine
``host``     the ``Gimp.PlugIn``: registration, dialog, read/write pixels (imports ``gi``)
``entry``    installed as ``clearshot/clearshot.py``; starts ``host``
"""

PLUGIN_NAME = "clearshot"

__all__ = ["PLUGIN_NAME"]
