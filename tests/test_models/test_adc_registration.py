# Copyright (c) mmadc contributors. All rights reserved.
"""The ADC layer inside OpenMMLab: registered as the mmcv conv layer
``'ADC'`` by ``mmadc.models`` and safe under MMEngine's initialisation."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, constant_init, kaiming_init
from mmengine.registry import MODELS, DefaultScope

import mmadc.models  # noqa: F401  registers 'ADC'
from mmadc.ops import AdaptiveDilatedConv2d


def test_init_weights_protects_the_identity_start():
    """Backbone init code that walks modules must not break rates == 1."""

    class Block(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=[
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Normal', layer='Linear', std=1.),
                dict(type='Constant', layer='BatchNorm2d', val=1),
            ])
            self.conv = AdaptiveDilatedConv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

    block = Block()
    before = block.conv.weight.detach().clone()
    block.init_weights()
    # the conv weight was initialised by the parent's init_cfg ...
    assert not torch.equal(block.conv.weight, before)
    # ... and the regressor is back at its identity start
    drm = block.conv.rate_regressor
    assert torch.equal(drm.fc2.weight, torch.zeros_like(drm.fc2.weight))
    assert torch.equal(drm.fc2.bias, torch.ones_like(drm.fc2.bias))
    block.conv(torch.randn(2, 4, 6, 6))
    assert torch.equal(block.conv.last_rates, torch.ones(2, 4))


def test_mmengine_init_functions_work():
    adc = AdaptiveDilatedConv2d(4, 6, 3, padding=1)
    kaiming_init(adc, bias=0.5)
    assert torch.equal(adc.bias, torch.full((6, ), 0.5))
    constant_init(adc, val=0.25, bias=0.)
    assert torch.equal(adc.weight, torch.full((6, 4, 3, 3), 0.25))
    # reset_parameters (nn.Conv2d API) also restores rates == 1
    with torch.no_grad():
        adc.rate_regressor.fc2.weight.fill_(3.)
    adc.reset_parameters()
    assert torch.equal(adc.rate_regressor.fc2.weight,
                       torch.zeros_like(adc.rate_regressor.fc2.weight))


def test_registered_in_root_registry():
    assert MODELS.get('ADC') is AdaptiveDilatedConv2d
    assert MODELS.get('AdaptiveDilatedConv2d') is AdaptiveDilatedConv2d


def test_registration_survives_reimport():
    from mmadc.utils.conv_registry import register_conv_layer as _register

    # What importlib.reload produces: a new class object with the same
    # module and qualified name. It replaces the old entry without error.
    reloaded = type('AdaptiveDilatedConv2d', (AdaptiveDilatedConv2d, ),
                    {'__module__': AdaptiveDilatedConv2d.__module__})
    try:
        _register('ADC', reloaded)
        assert MODELS.get('ADC') is reloaded
        _register('ADC', reloaded)  # idempotent
    finally:
        _register('ADC', AdaptiveDilatedConv2d)
    assert MODELS.get('ADC') is AdaptiveDilatedConv2d

    # a foreign class under a taken name is a real conflict
    foreign = type('Foreign', (nn.Module, ), {})
    with pytest.raises(KeyError):
        _register('ADC', foreign)
    assert MODELS.get('ADC') is AdaptiveDilatedConv2d


@pytest.mark.parametrize('scope', [None, 'mmpose', 'mmseg'])
def test_build_conv_layer_under_default_scope(scope):
    cnn = pytest.importorskip('mmcv.cnn')
    if scope is not None:
        # registers the scope's registries (children of MMEngine's root)
        pytest.importorskip(f'{scope}.models')
    with DefaultScope.overwrite_default_scope(scope):
        layer = cnn.build_conv_layer(
            dict(type='ADC', dilation_groups=4),
            8,
            16,
            3,
            stride=2,
            padding=2,
            dilation=2,
            bias=False)
    assert type(layer).__name__ == 'AdaptiveDilatedConv2d'
    assert layer.dilation_groups == 4 and layer.bias is None
    assert layer.stride == (2, 2) and layer.dilation == (2, 2)
    x = torch.randn(2, 8, 12, 10)
    ref = F.conv2d(x, layer.weight, stride=2, padding=2, dilation=2)
    torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-5)
