# Copyright (c) mmadc contributors. All rights reserved.
"""Receptive fields of ADC layers from observed rates (Eq. 8).

A channel with rate ``r`` in a layer with kernel size ``k`` and base
dilation ``d`` samples a square of side ``k * rho - rho + 1`` with
``rho = d * r`` (taps ``-(k//2) .. k//2`` at spacing ``rho``), so its
receptive field is ``(k * rho - rho + 1)^2`` pixels of the layer's input
(Eq. 8 of the paper, with the base dilation of the replaced conv; ``d = 1``
in the pose backbones). Non-square kernels or dilations give the product of
the two sides.

:class:`ReceptiveFieldStats` accumulates, per layer, the rates observed over
a set of images and their receptive fields (a :class:`RunningStats` per
dilation group for each) and summarises them as mean, min and max over all
samples and channels. The groups of a layer hold equally many channels, so
the mean over groups is the mean over channels.
"""
import copy
from collections import OrderedDict
from typing import Dict, List, Sequence, Union

import numpy as np
from torch import Tensor

from .running_stats import RunningStats

ArrayLike = Union[float, np.ndarray, Tensor]


def _pair(value: Union[int, Sequence[int]]) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f'expected an int or a pair, got {value!r}')
        return tuple(value)
    return (value, value)


def receptive_field(rate: ArrayLike,
                    kernel_size: Union[int, Sequence[int]] = 3,
                    dilation: Union[int, Sequence[int]] = 1) -> ArrayLike:
    """Receptive field (pixels) of a channel with the given rate (Eq. 8).

    ``(k * rho - rho + 1)^2`` with ``rho = dilation * rate``; per axis
    ``(k_h * rho_h - rho_h + 1) * (k_w * rho_w - rho_w + 1)``.

    Args:
        rate (float | np.ndarray | Tensor): Rate(s), any shape.
        kernel_size (int | tuple[int, int]): Kernel size ``k``.
        dilation (int | tuple[int, int]): Base dilation ``d``.

    Returns:
        float | np.ndarray | Tensor: Receptive field(s), like ``rate``.

    Example:
        >>> receptive_field(1.0)   # a plain 3x3 conv
        9.0
        >>> receptive_field(2.5)   # (3 * 2.5 - 2.5 + 1)^2
        36.0
    """
    (kh, kw), (dh, dw) = _pair(kernel_size), _pair(dilation)
    rho_h, rho_w = rate * dh, rate * dw
    return (kh * rho_h - rho_h + 1) * (kw * rho_w - rho_w + 1)


class ReceptiveFieldStats:
    """Observed rates and receptive fields of ADC layers.

    Args:
        layers (dict[str, dict]): Qualified name to
            :func:`~mmadc.models.utils.layer_info` of each ADC layer
            (:func:`~mmadc.models.utils.describe_adc_layers`).
    """

    def __init__(self, layers: Dict[str, dict]) -> None:
        self.layers = OrderedDict(
            (name, copy.deepcopy(info)) for name, info in layers.items())
        self.rates = {
            name: RunningStats(int(info['dilation_groups']))
            for name, info in self.layers.items()
        }
        self.fields = {
            name: RunningStats(int(info['dilation_groups']))
            for name, info in self.layers.items()
        }

    def update(self, rates: Dict[str, Tensor]) -> None:
        """Add the ``(N, g)`` rates of one batch per layer."""
        for name, layer_rates in rates.items():
            if name not in self.layers:
                continue
            info = self.layers[name]
            values = layer_rates.detach().cpu().double()
            self.rates[name].update(values)
            self.fields[name].update(
                receptive_field(values, info['kernel_size'], info['dilation']))

    def merge(self, other: 'ReceptiveFieldStats') -> None:
        """Add what another collection of the same layers has seen."""
        if list(other.layers) != list(self.layers):
            raise ValueError('cannot merge receptive-field statistics of '
                             'different ADC layers')
        for name in self.layers:
            self.rates[name].merge(other.rates[name])
            self.fields[name].merge(other.fields[name])

    def summary(self) -> List[dict]:
        """One JSON-ready row per layer.

        Returns:
            list[dict]: ``layer``, the layer description fields,
            ``samples`` (forwards observed), ``rate`` and
            ``receptive_field`` dicts with ``mean``, ``min`` and ``max``
            over samples and channels (None if the layer never ran).
        """
        rows = []
        for name, info in self.layers.items():
            row = dict(layer=name)
            row.update(copy.deepcopy(info))
            row['samples'] = self.rates[name].count
            for key, stats in (('rate', self.rates[name]),
                               ('receptive_field', self.fields[name])):
                if stats.count:
                    row[key] = dict(
                        mean=float(stats.mean.mean()),
                        min=float(stats.min.min()),
                        max=float(stats.max.max()))
                else:
                    row[key] = dict(mean=None, min=None, max=None)
            rows.append(row)
        return rows
