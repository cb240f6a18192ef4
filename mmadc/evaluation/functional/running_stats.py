# Copyright (c) mmadc contributors. All rights reserved.
"""Numerically sound running statistics of a stream of vectors."""
from typing import Union

import numpy as np
from torch import Tensor


class RunningStats:
    """Running count, mean, variance, min and max of vectors.

    Batches are merged with the pairwise update of Chan, Golub and LeVeque:
    each batch's mean and sum of squared deviations are computed in two
    passes and combined with the running ones, in float64. Unlike
    ``E[x^2] - E[x]^2`` this does not cancel catastrophically when the
    variance is small next to the mean (rates near 1 with tiny spread).
    The same update merges two running statistics (:meth:`merge`), e.g.
    those of several processes.

    Args:
        dim (int): Length of the vectors.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f'dim must be >= 1, got {dim}')
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim)
        self._m2 = np.zeros(dim)  # sum of squared deviations from the mean
        self._min = np.full(dim, np.inf)
        self._max = np.full(dim, -np.inf)

    def update(self, values: Union[np.ndarray, Tensor]) -> None:
        """Add a batch of vectors.

        Args:
            values (np.ndarray | Tensor): Shape ``(N, dim)`` (or ``(dim,)``
                for one vector).
        """
        if isinstance(values, Tensor):
            values = values.detach().cpu().double().numpy()
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise ValueError(f'values must have shape (N, {self.dim}), got '
                             f'{values.shape}')
        if values.shape[0] == 0:
            return
        batch_mean = values.mean(axis=0)
        self._combine(values.shape[0], batch_mean,
                      np.square(values - batch_mean).sum(axis=0),
                      values.min(axis=0), values.max(axis=0))

    def merge(self, other: 'RunningStats') -> None:
        """Add the vectors another :class:`RunningStats` has seen.

        Args:
            other (RunningStats): Statistics of the same ``dim``.
        """
        if other.dim != self.dim:
            raise ValueError(f'cannot merge statistics of dim {other.dim} '
                             f'into dim {self.dim}')
        if other.count:
            self._combine(other.count, other._mean, other._m2, other._min,
                          other._max)

    def _combine(self, num: int, mean: np.ndarray, m2: np.ndarray,
                 low: np.ndarray, high: np.ndarray) -> None:
        total = self.count + num
        delta = mean - self._mean
        self._mean = self._mean + delta * (num / total)
        self._m2 = self._m2 + m2 + np.square(delta) * (
            self.count * num / total)
        self.count = total
        self._min = np.minimum(self._min, low)
        self._max = np.maximum(self._max, high)

    @property
    def mean(self) -> np.ndarray:
        """Mean per component (NaN before any update)."""
        return self._mean.copy() if self.count else np.full(self.dim, np.nan)

    @property
    def var(self) -> np.ndarray:
        """Population variance (``ddof=0``) per component (NaN if empty)."""
        if not self.count:
            return np.full(self.dim, np.nan)
        return self._m2 / self.count

    @property
    def min(self) -> np.ndarray:
        """Minimum per component (NaN if empty)."""
        return self._min.copy() if self.count else np.full(self.dim, np.nan)

    @property
    def max(self) -> np.ndarray:
        """Maximum per component (NaN if empty)."""
        return self._max.copy() if self.count else np.full(self.dim, np.nan)
