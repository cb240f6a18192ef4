# Copyright (c) mmadc contributors. All rights reserved.
"""DC and SAC (Table III) against plain convolutions (F.conv2d) and against
each other's deformable-conv backends."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS, DefaultScope

import mmadc.models  # noqa: F401  registers the layers (until mmadc does)
from mmadc.models.backbones.adc_blocks import (build_replacement_conv,
                                               resolve_layer_cfg)
from mmadc.models.layers import DeformableConv2d, ScaleAdaptiveConv2d
from mmadc.models.layers.deform_conv import deform_conv2d, mmcv_deform_conv2d
from mmadc.ops import AdaptiveDilatedConv2d

BACKENDS = [
    'torchvision',
    pytest.param(
        'mmcv',
        marks=pytest.mark.skipif(
            mmcv_deform_conv2d() is None,
            reason='mmcv compiled ops unavailable')),
]
# (stride, dilation): padding is dilation ("same" for 3x3).
GEOMETRIES = [(1, 1), (2, 1), (1, 2), (2, 2)]


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    # Tiny tensors on a shared 2-core machine: one thread is much faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize(layer: nn.Conv2d, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))


def _input(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('stride,dilation', GEOMETRIES)
@pytest.mark.parametrize('layer_cls', [DeformableConv2d, ScaleAdaptiveConv2d])
def test_identity_start_equals_conv(layer_cls, stride, dilation, backend):
    """DC with zero offsets and SAC with every scale 1 are F.conv2d."""
    layer = layer_cls(
        6,
        5,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        backend=backend)
    _randomize(layer, 1)
    x = _input((2, 6, 11, 9))
    expected = F.conv2d(x, layer.weight, layer.bias, stride, dilation,
                        dilation)
    out = layer(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('stride,dilation', GEOMETRIES)
def test_sac_integer_scale_equals_dilated_conv(stride, dilation, backend):
    """Scale 2 everywhere reads centre + 2 * d * (i, j): a conv with
    dilation 2d (and padding 2d, so the centres stay put)."""
    layer = ScaleAdaptiveConv2d(
        4,
        3,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        backend=backend)
    _randomize(layer, 2)
    with torch.no_grad():
        layer.conv_scale.bias.fill_(2.0)
    x = _input((2, 4, 13, 10))
    expected = F.conv2d(x, layer.weight, layer.bias, stride, 2 * dilation,
                        2 * dilation)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('backend', BACKENDS)
def test_dc_constant_offset_shifts_input(backend):
    """Offset (dy, dx) = (0, 1) on every tap reads one column to the right:
    F.conv2d of the input padded by 0 columns on the left and 2 on the
    right instead of 1 and 1."""
    layer = DeformableConv2d(4, 3, 3, padding=1, backend=backend)
    _randomize(layer, 3)
    with torch.no_grad():
        layer.conv_offset.bias.view(-1, 2)[:, 1] = 1.0  # dx of every tap
    x = _input((2, 4, 7, 8))
    expected = F.conv2d(F.pad(x, (0, 2, 1, 1)), layer.weight, layer.bias, 1, 0)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    mmcv_deform_conv2d() is None, reason='mmcv compiled ops unavailable')
@pytest.mark.parametrize('shape,stride', [((3, 4, 9, 7), 1), ((3, 4, 2, 2), 1),
                                          ((5, 4, 1, 5), 2)])
def test_backends_agree(shape, stride):
    """mmcv's and torchvision's kernels give the same values and gradients
    for random offsets, also for batches that are not a multiple of mmcv's
    im2col step and inputs smaller than the kernel (mmcv needs help)."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(shape, generator=gen)
    weight = torch.randn(6, 4, 3, 3, generator=gen)
    bias = torch.randn(6, generator=gen)
    h_out = (shape[2] + 2 - 3) // stride + 1
    w_out = (shape[3] + 2 - 3) // stride + 1
    offset = torch.randn(shape[0], 18, h_out, w_out, generator=gen)
    results = []
    for backend in ('mmcv', 'torchvision'):
        leaves = [t.clone().requires_grad_() for t in (x, offset, weight)]
        out = deform_conv2d(
            leaves[0],
            leaves[1],
            leaves[2],
            bias,
            stride,
            1,
            1,
            backend=backend)
        out.pow(2).sum().backward()
        results.append([out.detach()] + [t.grad for t in leaves])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('layer_cls,predictor', [
    (DeformableConv2d, 'conv_offset'),
    (ScaleAdaptiveConv2d, 'conv_scale'),
])
def test_predictor_gets_gradient_at_identity_start(layer_cls, predictor):
    layer = layer_cls(4, 4, 3, padding=1)
    x = _input((2, 4, 8, 8))
    layer(x).pow(2).sum().backward()
    grad = getattr(layer, predictor).weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize('cfg', [
    dict(type='ADC'),
    dict(type='DC'),
    dict(type='SAC'),
])
def test_replacement_keeps_shape_and_values(cfg):
    """Each layer replacing a stride-2, dilation-2 conv gives that conv's
    output shape and, at its identity start, its values."""
    conv = nn.Conv2d(8, 6, 3, stride=2, padding=2, dilation=2, bias=True)
    _randomize(conv, 5)
    new = build_replacement_conv(conv, cfg)
    assert isinstance(new, nn.Conv2d)
    assert (new.stride, new.padding, new.dilation) == ((2, 2), (2, 2), (2, 2))
    for shape in [(2, 8, 15, 11), (1, 8, 4, 3)]:
        x = _input(shape)
        expected = conv(x)
        out = new(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_conv_state_dict_names():
    """weight/bias are nn.Conv2d's; the rest is the predictor (SAC's tap
    table is not saved)."""
    conv_keys = set(nn.Conv2d(4, 4, 3).state_dict())
    dc = DeformableConv2d(4, 4, 3)
    sac = ScaleAdaptiveConv2d(4, 4, 3)
    assert set(dc.state_dict()) == conv_keys | {
        'conv_offset.weight', 'conv_offset.bias'
    }
    assert set(sac.state_dict()) == conv_keys | {
        'conv_scale.weight', 'conv_scale.bias'
    }
    assert dc.conv_offset.weight.shape == (18, 4, 3, 3)
    assert sac.conv_scale.weight.shape == (1, 4, 3, 3)


@pytest.mark.parametrize('scope', ['mmengine', 'mmpose'])
def test_registry_names(scope):
    """'DC' builds under any default scope; in adc_cfg 'SAC' is the
    scale-adaptive conv, while the root registry's 'SAC' stays mmcv's
    switchable atrous conv (DetectoRS) for mmdet."""
    with DefaultScope.overwrite_default_scope(scope):
        dc = build_conv_layer(dict(type='DC'), 4, 4, 3, padding=1)
        assert type(dc) is DeformableConv2d
        assert resolve_layer_cfg(
            dict(type='SAC'))['type'] is (ScaleAdaptiveConv2d)
        assert resolve_layer_cfg(
            dict(type='ADC'))['type'] is (AdaptiveDilatedConv2d)
    assert MODELS.get('ScaleAdaptiveConv2d') is ScaleAdaptiveConv2d
    assert MODELS.get('SAC') is not ScaleAdaptiveConv2d


def test_resolve_layer_cfg_errors():
    with pytest.raises(KeyError, match='adc_cfg'):
        resolve_layer_cfg(dict(type='NoSuchConv'))
    with pytest.raises(TypeError, match='adc_cfg'):
        resolve_layer_cfg('ADC')
    with pytest.raises(TypeError, match='adc_cfg'):
        resolve_layer_cfg(dict(dilation_groups=2))


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match='backend'):
        DeformableConv2d(4, 4, 3, backend='cuda')
    with pytest.raises(ValueError, match='offset_groups'):
        DeformableConv2d(4, 4, 3, offset_groups=3)
    with pytest.raises(ValueError, match='kernel_size'):
        ScaleAdaptiveConv2d(4, 4, 2)
