"""Seeded blur kernels for evaluation: random camera-shake trajectories (benchmarks only).

A shake path is a random walk with inertia, a weak pull back to the start and occasional jerks
(in the spirit of Boracchi & Foi, IEEE TIP 2012), rasterised by the engine's own ``path_psf``
(bilinear splatting, normalised and centred).
"""

from __future__ import annotations

import numpy as np

from core.psf import path_psf


def shake_trajectory(extent_px: float, rng: np.random.Generator, steps: int = 400) -> np.ndarray:
    """A camera-shake kernel whose curved path spans about ``extent_px`` pixels.

    The direction turns with a smoothly varying rate (inertia) and the speed drifts, so the
    path is an open curve with brighter slow parts, like the measured Levin et al. kernels.
    """
    theta = rng.uniform(0, 2 * np.pi)
    omega = 0.0
    speed = 1.0
    pos = np.zeros(steps, complex)
    for t in range(1, steps):
        omega = 0.95 * omega + rng.normal(0, 0.025)
        theta += omega
        speed = float(np.clip(speed + rng.normal(0, 0.08), 0.15, 1.5))
        pos[t] = pos[t - 1] + speed * np.exp(1j * theta)
    return path_psf(pos, extent_px)
