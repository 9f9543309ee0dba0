"""Linear maps of latent codes to a 2-D map: two chosen coordinates, or the top two principal
components. Numpy only, so that a page can draw a map before torch is imported."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    """A linear map to 2-D: the two chosen coordinates, or the top two principal components."""
    mean: np.ndarray        # (D,)
    components: np.ndarray  # (D, 2)
    explained: tuple[float, float] | None = None  # variance fractions, for PCA

    def __call__(self, z) -> np.ndarray:
        return (np.asarray(z, dtype=np.float32) - self.mean) @ self.components


def coordinate_projection(latent_dim: int, dims: tuple[int, int]) -> Projection:
    components = np.zeros((latent_dim, 2), dtype=np.float32)
    components[dims[0], 0] = components[dims[1], 1] = 1.0
    return Projection(np.zeros(latent_dim, dtype=np.float32), components)


def pca_projection(z: np.ndarray) -> Projection:
    """The top two principal components of the points z (N, D)."""
    mean = z.mean(0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    variance = s ** 2
    explained = (float(variance[0] / variance.sum()), float(variance[1] / variance.sum())) \
        if len(variance) > 1 else (1.0, 0.0)
    components = vt[:2].T if vt.shape[0] > 1 else np.concatenate([vt.T, np.zeros_like(vt.T)], 1)
    return Projection(mean.astype(np.float32), components.astype(np.float32), explained)
