"""Clearshot engine: blur models, deconvolution, unsharp masking (pure numpy/OpenCV).

Host-agnostic: takes and returns numpy arrays. Only :mod:`core.io` touches files and only
:mod:`core.cli` talks to a terminal.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .deblur import deblur
from .deconvolve import deconvolve_richardson_lucy, deconvolve_sparse, deconvolve_wiener
from .dtype import from_float32, to_float32
from .errors import ClearshotError, MissingDependencyError, OperationCancelled
from .psf import defocus_psf, gaussian_psf, motion_psf, normalize_psf
from .sharpen import UnsharpParams, unsharp_mask

__all__ = [
    "__version__",
    "deblur",
    "deconvolve_wiener",
    "deconvolve_sparse",
    "deconvolve_richardson_lucy",
    "unsharp_mask",
    "UnsharpParams",
    "gaussian_psf",
    "defocus_psf",
    "motion_psf",
    "normalize_psf",
    "to_float32",
    "from_float32",
    "ClearshotError",
    "MissingDependencyError",
    "OperationCancelled",
]
