# Copyright (c) mmadc contributors. All rights reserved.
"""Tests of the AdaptiveDilatedConv2d layer and its rate regressor (torch
only; its OpenMMLab registration: tests/test_models/test_adc_registration.py).
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmadc.ops import (AdaptiveDilatedConv2d, DilationRateRegressor,
                       adaptive_dilated_conv2d)

# every test runs on both implementations (see tests/conftest.py)
pytestmark = pytest.mark.usefixtures('adc_impl')

INIT_CONFIGS = [
    # in, out, kernel, stride, padding, dilation, bias, dilation_groups
    (8, 6, 3, 1, 1, 1, True, None),
    (8, 6, 3, 2, 1, 1, False, None),
    (8, 6, 3, 1, 2, 2, True, 2),
    (8, 6, 3, 2, 2, 2, False, 1),
    (8, 4, 3, 1, 0, 1, True, 4),
    (4, 4, 5, 1, 2, 1, True, None),
    (4, 4, 3, 1, 'same', 2, True, None),
]


@pytest.mark.parametrize('cfg', INIT_CONFIGS)
def test_equals_conv2d_at_init(cfg):
    in_ch, out_ch, k, stride, padding, dilation, bias, groups = cfg
    torch.manual_seed(0)
    adc = AdaptiveDilatedConv2d(
        in_ch,
        out_ch,
        k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
        dilation_groups=groups).double()
    conv = nn.Conv2d(
        in_ch,
        out_ch,
        k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias).double()
    conv.load_state_dict(adc.state_dict(), strict=False)
    x = torch.randn(2, in_ch, 13, 10, dtype=torch.float64)
    out = adc(x)
    assert torch.equal(adc.last_rates,
                       torch.ones(2, groups or in_ch, dtype=torch.float64))
    torch.testing.assert_close(out, conv(x), rtol=0, atol=1e-12)


def test_conv2d_state_dict_loads_with_only_regressor_missing():
    conv = nn.Conv2d(8, 6, 3, padding=1)
    adc = AdaptiveDilatedConv2d(8, 6, 3, padding=1, dilation_groups=2)
    result = adc.load_state_dict(conv.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == [
        'rate_regressor.fc1.bias', 'rate_regressor.fc1.weight',
        'rate_regressor.fc2.bias', 'rate_regressor.fc2.weight'
    ]
    assert torch.equal(adc.weight, conv.weight)
    assert adc.weight.shape == conv.weight.shape
    assert adc.bias.shape == conv.bias.shape


def test_last_rates_detached_and_replaced():
    adc = AdaptiveDilatedConv2d(4, 4, 3, padding=1, dilation_groups=2)
    assert adc.last_rates is None
    with torch.no_grad():
        adc.rate_regressor.fc2.weight.normal_()
    x1 = torch.randn(3, 4, 8, 8)
    adc(x1).sum().backward()
    first = adc.last_rates
    assert first.shape == (3, 2)
    assert not first.requires_grad and first.grad_fn is None
    torch.testing.assert_close(first, adc.rate_regressor(x1).detach())
    adc(torch.randn(1, 4, 8, 8) * 5)
    assert adc.last_rates is not first
    assert adc.last_rates.shape == (1, 2)
    # the old tensor was not modified in place
    torch.testing.assert_close(first, adc.rate_regressor(x1).detach())


def test_forward_and_gradients_through_the_regressor():
    torch.manual_seed(1)
    adc = AdaptiveDilatedConv2d(
        8, 4, 3, stride=2, padding=2, dilation=2, dilation_groups=4).double()
    with torch.no_grad():
        adc.rate_regressor.fc2.weight.normal_(std=0.5)
    x = torch.randn(2, 8, 9, 11, dtype=torch.float64)
    out = adc(x)
    rates = adc.rate_regressor(x)
    assert (rates != 1).any()
    ref = adaptive_dilated_conv2d(
        x, adc.weight, rates, adc.bias, stride=2, padding=2, dilation=2)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    out.square().sum().backward()
    for name, param in adc.named_parameters():
        assert param.grad is not None, name
    assert adc.rate_regressor.fc2.weight.grad.abs().sum() > 0


def test_regressor_at_init_receives_gradient():
    # fc2 starts at zero weight, but its gradient must not vanish or the
    # rates could never leave 1.
    adc = AdaptiveDilatedConv2d(16, 8, 3, padding=1)
    x = torch.randn(2, 16, 10, 10)
    adc(x).square().sum().backward()
    assert adc.rate_regressor.fc2.weight.grad.abs().sum() > 0


def test_regressor_structure_and_defaults():
    assert AdaptiveDilatedConv2d(8, 8, 3).rate_regressor.fc1.out_features \
        == 16
    assert AdaptiveDilatedConv2d(256, 8, 3).rate_regressor.fc1.out_features \
        == 64
    adc = AdaptiveDilatedConv2d(8, 8, 3, hidden_channels=5)
    assert adc.rate_regressor.fc1.out_features == 5
    assert adc.rate_regressor.fc2.out_features == 8
    assert adc.dilation_groups == 8
    drm = DilationRateRegressor(6, 3)
    assert torch.equal(drm.fc2.weight, torch.zeros(3, 16))
    assert torch.equal(drm.fc2.bias, torch.ones(3))
    # non-negative whatever the input
    with torch.no_grad():
        drm.fc2.weight.normal_(std=10)
    assert (drm(torch.randn(5, 6, 4, 4)) >= 0).all()


def test_autocast_keeps_rates_in_float32():
    torch.manual_seed(2)
    adc = AdaptiveDilatedConv2d(8, 4, 3, padding=1)
    with torch.no_grad():
        adc.rate_regressor.fc2.weight.normal_(std=0.3)
    x = torch.randn(2, 8, 10, 9)
    ref = adc(x)
    ref_rates = adc.last_rates
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = adc(x)
    assert out.dtype == torch.bfloat16
    assert adc.last_rates.dtype == torch.float32
    torch.testing.assert_close(adc.last_rates, ref_rates)
    tol = 2e-2 * ref.abs().max().item()
    assert (out.float() - ref).abs().max().item() <= tol
    out.float().sum().backward()
    assert adc.rate_regressor.fc2.weight.grad.dtype == torch.float32


def test_max_rate_clamps():
    adc = AdaptiveDilatedConv2d(4, 4, 3, padding=1, max_rate=2.5)
    with torch.no_grad():
        adc.rate_regressor.fc2.bias.fill_(7.)
    adc(torch.randn(2, 4, 6, 6))
    assert torch.equal(adc.last_rates, torch.full((2, 4), 2.5))
    with pytest.raises(ValueError, match='max_rate'):
        AdaptiveDilatedConv2d(4, 4, 3, max_rate=0)


def test_deepcopy_and_repr():
    adc = AdaptiveDilatedConv2d(4, 4, 3, padding=1, dilation_groups=2)
    clone = copy.deepcopy(adc)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(clone(x), adc(x))
    assert 'dilation_groups=2' in repr(adc)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(groups=2), NotImplementedError, 'groups'),
    (dict(padding_mode='reflect'), NotImplementedError, 'padding_mode'),
    (dict(dilation_groups=3), ValueError, 'dilation_groups'),
    (dict(dilation_groups=0), ValueError, 'dilation_groups'),
    (dict(kernel_size=2), ValueError, 'kernel_size'),
    (dict(hidden_channels=0), ValueError, 'hidden_channels'),
    (dict(hidden_channels=2.5), ValueError, 'hidden_channels'),
])
def test_bad_construction_raises(kwargs, error, match):
    args = dict(in_channels=4, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        AdaptiveDilatedConv2d(**args)


def test_bad_input_raises():
    adc = AdaptiveDilatedConv2d(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match='in_channels'):
        adc(torch.randn(1, 3, 6, 6))
    with pytest.raises(ValueError, match='4-D .* or unbatched 3-D'):
        adc(torch.randn(4, 6))
    with pytest.raises(ValueError, match='in_channels'):
        adc(torch.randn(3, 6, 6))


def test_unbatched_input_like_conv2d():
    """A (C, H, W) input gives nn.Conv2d's unbatched output (the oracle at
    rate 1) and equals the batch of one with fractional rates."""
    adc = AdaptiveDilatedConv2d(4, 5, 3, padding=1)
    x = torch.randn(4, 7, 6)
    conv = nn.Conv2d(4, 5, 3, padding=1)
    conv.load_state_dict(adc.state_dict(), strict=False)
    torch.testing.assert_close(adc(x), conv(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        adc.rate_regressor.fc2.bias.uniform_(0.3, 2.5)
    torch.testing.assert_close(adc(x), adc(x[None])[0], rtol=0, atol=0)


@pytest.mark.parametrize('activation', ['relu', 'softplus', 'elu'])
def test_rate_activations(activation):
    """Every activation starts at rate exactly 1 (the conv, F.conv2d
    oracle) and keeps rates >= 0; below 0 only ReLU kills the gradient."""
    adc = AdaptiveDilatedConv2d(4, 4, 3, padding=1, rate_activation=activation)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(
        adc(x), F.conv2d(x, adc.weight, adc.bias, padding=1))
    assert torch.equal(adc.last_rates, torch.ones(2, 4))
    with torch.no_grad():
        adc.rate_regressor.fc2.bias.fill_(-3.)
    adc(x).square().sum().backward()
    grad = adc.rate_regressor.fc2.bias.grad
    assert (adc.last_rates >= 0).all()
    if activation == 'relu':
        assert torch.equal(adc.last_rates, torch.zeros(2, 4))
        assert torch.equal(grad, torch.zeros_like(grad))  # dead
    else:
        assert (adc.last_rates > 0).all() and (grad != 0).all()
    with pytest.raises(ValueError, match='activation'):
        AdaptiveDilatedConv2d(4, 4, 3, rate_activation='tanh')


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('cfg', INIT_CONFIGS)
def test_meta_device_like_conv2d(cfg, dtype):
    """On the meta device, which shape inference, model-size tools and lazy
    initialisation use, the layer gives nn.Conv2d's output metadata (the
    oracle), batched and unbatched, and gradients of its parameters'
    shapes."""
    in_ch, out_ch, k, stride, padding, dilation, bias, groups = cfg
    args = dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
        device='meta',
        dtype=dtype)
    adc = AdaptiveDilatedConv2d(
        in_ch, out_ch, k, dilation_groups=groups, **args)
    conv = nn.Conv2d(in_ch, out_ch, k, **args)

    def metadata(t):
        return t.device, t.shape, t.dtype

    for shape in [(in_ch, 13, 10), (2, in_ch, 13, 10)]:
        x = torch.empty(shape, device='meta', dtype=dtype)
        assert metadata(adc(x)) == metadata(conv(x))
    assert adc.last_rates.device.type == 'meta'
    assert adc.last_rates.shape == (2, groups or in_ch)
    adc(x).sum().backward()
    for name, param in adc.named_parameters():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape, name


def test_lazy_initialisation_from_meta():
    """Built on meta, materialised with ``to_empty`` and re-initialised with
    ``reset_parameters`` (the lazy-initialisation recipe), the layer is the
    convolution again: rates exactly 1, F.conv2d's output."""
    adc = AdaptiveDilatedConv2d(4, 5, 3, padding=1, device='meta')
    adc.to_empty(device='cpu')
    adc.reset_parameters()
    x = torch.randn(2, 4, 7, 6)
    out = adc(x)
    assert torch.equal(adc.last_rates, torch.ones(2, 4))
    torch.testing.assert_close(out,
                               F.conv2d(x, adc.weight, adc.bias, padding=1))
