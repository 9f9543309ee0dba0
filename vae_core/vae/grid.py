"""Points of latent space to decode: one chosen point, and the grid over the prior's quantiles
of the learned-manifold figure (AEVB Fig. 4). Numpy only, so that a page can decode them with
a model read as arrays, before torch is imported."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def latent_vector(latent_dim: int, dims: tuple[int, int], values: tuple[float, float],
                  base=None) -> np.ndarray:
    """A point in latent space: `base` (zeros by default) with two coordinates replaced."""
    z = np.zeros(latent_dim, dtype=np.float32) if base is None else np.array(base, dtype=np.float32)
    z[dims[0]], z[dims[1]] = values
    return z


def gaussian_quantiles(n: int) -> np.ndarray:
    """n evenly spaced quantiles of N(0, 1), from 0.05 to 0.95 (AEVB Fig. 4 uses the inverse CDF)."""
    normal = NormalDist()
    return np.array([normal.inv_cdf(p) for p in np.linspace(0.05, 0.95, n)], dtype=np.float32)


def grid_points(latent_dim: int, n: int, dims: tuple[int, int] = (0, 1), base=None) -> np.ndarray:
    """The n x n grid's latent points (n*n, D), row by row from the top: z_dims[0] grows left to
    right, z_dims[1] bottom to top."""
    q = gaussian_quantiles(n)
    return np.stack([latent_vector(latent_dim, dims, (q[col], q[n - 1 - row]), base)
                     for row in range(n) for col in range(n)])


def tile(images: np.ndarray, n: int) -> np.ndarray:
    """The grid's decoded images (n*n, H, W), in `grid_points`' order, as one image (n*H, n*W)."""
    h, w = images.shape[1:]
    return images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
