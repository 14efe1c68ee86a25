"""Seeded blur kernels for evaluation: random camera-shake trajectories (benchmarks only).

A shake path is a random walk with inertia, a weak pull back to the start and occasional jerks
(in the spirit of Boracchi & Foi, IEEE TIP 2012), rasterised by bilinear splatting and
normalised/centred by the engine's own ``normalize_psf``.
"""

from __future__ import annotations

import numpy as np

from core.psf import normalize_psf


def shake_trajectory(extent_px: float, rng: np.random.Generator, steps: int = 1500) -> np.ndarray:
    """A camera-shake kernel whose path spans about ``extent_px`` pixels."""
    v = np.exp(1j * rng.uniform(0, 2 * np.pi))
    pos = np.zeros(steps, complex)
    anxiety = rng.uniform(0.002, 0.006)
    for t in range(1, steps):
        jerk = 0
        if rng.uniform() < 0.01:
            jerk = 1.5 * v * np.exp(1j * (np.pi + rng.uniform(-0.6, 0.6)))
        dv = jerk + anxiety * (
            8 * (rng.standard_normal() + 1j * rng.standard_normal()) - 0.4 * pos[t - 1]
        )
        v = v + dv
        v /= abs(v)
        pos[t] = pos[t - 1] + v
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
