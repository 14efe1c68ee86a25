"""Seeded blur kernels for evaluation: random camera-shake trajectories (benchmarks only).

A shake path is a random walk with inertia, a weak pull back to the start and occasional jerks
(in the spirit of Boracchi & Foi, IEEE TIP 2012), rasterised by bilinear splatting and
normalised/centred by the engine's own ``normalize_psf``.
"""

from __future__ import annotations

import numpy as np

from core.psf import normalize_psf


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
    pos -= (pos.real.min() + pos.real.max()) / 2 + 1j * (pos.imag.min() + pos.imag.max()) / 2
    span = max(np.ptp(pos.real), np.ptp(pos.imag), 1e-6)
    pos *= (extent_px - 1) / span
    size = int(np.ceil(extent_px)) + 4 | 1
    c = (size - 1) / 2
    k = np.zeros((size, size))
    ys, xs = c - pos.imag, c + pos.real
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), wy * wx)
    return normalize_psf(k)
