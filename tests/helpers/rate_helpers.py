# Copyright (c) mmadc contributors. All rights reserved.
"""Rates that depend on the input, for tests of what reads the rates."""
from typing import Optional

import torch
import torch.nn as nn

from mmadc.ops import AdaptiveDilatedConv2d


def input_dependent_rates(model: nn.Module,
                          seed: int,
                          bias: Optional[float] = None) -> None:
    """Give every ADC layer's last regressor layer random weights (a
    generator seeded with ``seed``, drawn in module order), so that its
    rates depend on the input; ``bias`` also sets that layer's bias."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, AdaptiveDilatedConv2d):
                fc2 = module.rate_regressor.fc2
                fc2.weight.copy_(
                    torch.randn(fc2.weight.shape, generator=generator))
                if bias is not None:
                    fc2.bias.fill_(bias)
