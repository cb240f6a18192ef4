# Copyright (c) mmadc contributors. All rights reserved.
"""Record the dilation rates every ADC layer of a model computes."""
import functools
from typing import Dict, List

import torch
import torch.nn as nn
from torch import Tensor

from .adc_layer_lookup import require_adc_layers


class ADCRateCollector:
    """Records the rates of every ADC layer at every forward.

    A forward hook on each layer copies its ``last_rates`` (detached,
    ``(N, g)``) to the CPU; :meth:`pop` returns what was recorded since the
    previous call. Use it as a context manager (hooks removed on exit).

    Args:
        model (nn.Module): The model; it must contain ADC layers.
        source (str): What the model came from, for the error message.

    Example:
        >>> with ADCRateCollector(model) as collector:
        ...     model(inputs)
        ...     rates = collector.pop()  # {'backbone.layer1.0.conv2': ...}
    """

    def __init__(self, model: nn.Module, source: str = 'the model') -> None:
        self.layers = require_adc_layers(model, source)
        self._records: Dict[str, List[Tensor]] = {n: [] for n in self.layers}
        self._handles: list = []

    def _record(self, name: str, module: nn.Module, args, output) -> None:
        rates = getattr(module, 'last_rates', None)
        if rates is not None:
            self._records[name].append(rates.detach().float().cpu())

    def attach(self) -> None:
        """Register the forward hooks (idempotent)."""
        if self._handles:
            return
        self._handles = [
            layer.register_forward_hook(functools.partial(self._record, name))
            for name, layer in self.layers.items()
        ]

    def detach(self) -> None:
        """Remove the forward hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def pop(self) -> Dict[str, Tensor]:
        """Rates recorded since the last call, one ``(rows, g)`` tensor per
        layer that ran (rows: samples over all its forwards)."""
        out = {
            name: torch.cat(recs) if len(recs) > 1 else recs[0]
            for name, recs in self._records.items() if recs
        }
        for recs in self._records.values():
            recs.clear()
        return out

    def __enter__(self) -> 'ADCRateCollector':
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.detach()
