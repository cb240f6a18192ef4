# Copyright (c) mmadc contributors. All rights reserved.
"""ADC as a registered PyTorch operator.

``torch.library.opcheck`` checks the schema, the fake kernel (shapes,
dtypes and strides against the real kernel), the registered autograd and
tracing with dynamic shapes; the rest checks what users rely on: compile
without graph breaks, export with a dynamic batch (which fails on any
data-dependent control flow, i.e. on a host synchronisation), the
semantics of rate values that are not checked, and the torch-only import.
"""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from deform_oracle import deform_conv_of_rates

from mmadc.ops import (AdaptiveDilatedConv2d, adaptive_dilated_conv2d,
                       adc_rate_check)

pytestmark = pytest.mark.usefixtures('adc_impl')

needs_custom_op = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='the registered op needs torch >= 2.4 (torch.library.custom_op)')

# (N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups, bias)
CASES = [
    (2, 4, 3, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 4, True),
    (1, 6, 2, 9, 8, (3, 3), (2, 2), (2, 2), (2, 2), 3, False),
    (3, 2, 4, 6, 7, (5, 3), (1, 2), (2, 0), (1, 2), 1, True),
    (2, 4, 5, 5, 5, (3, 3), (2, 1), (0, 1), (1, 1), 2, False),
]


def _case(case, dtype, seed=0, channels_last=False):
    num, cin, cout, h, w, k, s, p, d, g, bias = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num, cin, h, w, generator=gen, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, *k, generator=gen, dtype=dtype)
    rates = 3 * torch.rand(num, g, generator=gen, dtype=dtype)
    b = torch.randn(cout, generator=gen, dtype=dtype) if bias else None
    return x, weight, rates, b, list(s), list(p), list(d)


@needs_custom_op
@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_opcheck_forward(case, dtype):
    x, weight, rates, b, s, p, d = _case(case, dtype)
    for t in (x, weight, rates, b):
        if t is not None:
            t.requires_grad_()
    torch.library.opcheck(torch.ops.mmadc.adaptive_dilated_conv2d,
                          (x, weight, rates, b, s, p, d, dtype))


@needs_custom_op
@pytest.mark.parametrize('case', CASES[:2])
@pytest.mark.parametrize(
    'mask', [[True, True, True], [False, True, False], [True, False, True]])
def test_opcheck_backward(case, mask):
    x, weight, rates, _, s, p, d = _case(case, torch.float64)
    out = adaptive_dilated_conv2d(x, weight, rates, None, s, p, d)
    grad = torch.randn_like(out)
    torch.library.opcheck(
        torch.ops.mmadc.adaptive_dilated_conv2d_backward,
        (grad, x, weight, rates, s, p, d, torch.float64, mask),
        test_utils=('test_schema', 'test_faketensor',
                    'test_aot_dispatch_dynamic'))


@needs_custom_op
def test_opcheck_channels_last():
    """The fake kernel reports the layout the kernels return."""
    x, weight, rates, b, s, p, d = _case(
        CASES[0], torch.float32, channels_last=True)
    out = adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(
        torch.ops.mmadc.adaptive_dilated_conv2d,
        (x, weight.requires_grad_(), rates, b, s, p, d, torch.float32))


def _assert_equals_deform(out, x, weight, rates, b, s, p, d):
    """``out`` and its input, weight and rate gradients equal
    deform_conv2d's with the same offsets (float64)."""
    ref = deform_conv_of_rates(x, weight, rates, b, s, p, d)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, weight, rates), grad)
    expected = torch.autograd.grad(ref, (x, weight, rates), grad)
    for a, e in zip(got, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-9)


@pytest.mark.parametrize('case', CASES)
def test_negative_rates_mirror_the_footprint(case):
    """A negative rate is read as documented (tap i at centre + d*r*i),
    equal to deform_conv2d with the same offsets, values and gradients."""
    x, weight, rates, b, s, p, d = _case(case, torch.float64, seed=3)
    rates = (rates - 1.7).requires_grad_()
    x.requires_grad_()
    weight.requires_grad_()
    out = adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
    _assert_equals_deform(out, x, weight, rates, b, s, p, d)


def test_huge_rates_read_zeros_outside():
    """Rates whose taps all land outside the image leave the centre tap,
    a 1x1 convolution (F.conv2d oracle), also for rates near float max."""
    x, weight, _, b, s, p, d = _case(CASES[0], torch.float64, seed=4)
    centre = weight[:, :, 1:2, 1:2]
    expected = F.conv2d(x, centre, b, stride=s)
    for value in (50.0, 1e9, -3e38):
        rates = torch.full((2, 4), value, dtype=torch.float64)
        rates.requires_grad_()
        out = adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
        grad_r, = torch.autograd.grad(out.sum(), rates)
        assert torch.equal(grad_r, torch.zeros_like(grad_r))


def test_non_finite_rates_give_nan_samples_only():
    """A NaN or inf rate makes its sample NaN (output and gradients), like
    a NaN input of a convolution; the other samples are exact."""
    x, weight, rates, b, s, p, d = _case(CASES[0], torch.float64, seed=5)
    rates = rates.clone()
    rates[1, 2] = float('nan')
    x = torch.cat([x, x[:1]])
    rates = torch.cat([rates, rates[:1]])
    rates[2, 0] = float('inf')
    x.requires_grad_()
    rates.requires_grad_()
    out = adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
    finite = adaptive_dilated_conv2d(x[:1], weight, rates[:1], b, s, p, d)
    torch.testing.assert_close(out[:1], finite, rtol=0, atol=0)
    assert out[1:].isnan().all()
    gx, gr = torch.autograd.grad(out.sum(), (x, rates))
    assert gx[1:].isnan().all() and gr[1:].isnan().all()


def test_rate_check_switch_raises():
    x, weight, rates, b, s, p, d = _case(CASES[0], torch.float32)
    rates[0, 0] = float('nan')
    with adc_rate_check():
        with pytest.raises(ValueError, match='rates must be finite'):
            adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
    rates[0, 0] = -1.0  # negative rates are valid, also when checking
    with adc_rate_check():
        adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)


def test_second_derivative_raises_clearly():
    """A gradient penalty through ADC must not silently drop ADC's part."""
    x, weight, rates, b, s, p, d = _case(CASES[0], torch.float64)
    x.requires_grad_()
    weight.requires_grad_()
    out = adaptive_dilated_conv2d(x, weight, rates, b, s, p, d)
    grad_x, = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='no second derivative'):
        grad_x.square().sum().backward()


def _layer(seed=0):
    torch.manual_seed(seed)
    layer = AdaptiveDilatedConv2d(8, 6, 3, padding=1, dilation_groups=4)
    with torch.no_grad():  # away from rate 1, where sampling is trivial
        layer.rate_regressor.fc2.weight.normal_(0, 0.1)
        layer.rate_regressor.fc2.bias.uniform_(0.3, 2.5)
    return layer


@needs_custom_op
def test_compile_layer_fullgraph_matches_eager():
    """No graph break (fullgraph), outputs and every gradient equal to
    eager, and ``last_rates`` is set by the compiled forward."""
    layer = _layer()
    x = torch.randn(3, 8, 10, 9)
    compiled = torch.compile(layer, fullgraph=True, dynamic=False)
    results = []
    for run in (compiled, layer):
        layer.zero_grad()
        layer.last_rates = None
        xg = x.clone().requires_grad_()
        out = run(xg)
        out.square().sum().backward()
        results.append((out.detach(), xg.grad, layer.last_rates,
                        [q.grad.clone() for q in layer.parameters()]))
    (out_c, gx_c, rates_c, gp_c), (out_e, gx_e, rates_e, gp_e) = results
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_c, gx_e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rates_c, rates_e)
    for got, expected in zip(gp_c, gp_e):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_break_count == 0


@needs_custom_op
def test_export_with_dynamic_batch_equals_eager():
    """torch.export traces no data-dependent branch (a rate value check
    would be one, and a host sync on GPUs) and keeps the op."""
    layer = _layer(1).eval()
    batch = torch.export.Dim('batch', min=1, max=64)
    program = torch.export.export(
        layer, (torch.randn(2, 8, 10, 9), ), dynamic_shapes=({
            0: batch
        }, ))
    targets = {str(node.target) for node in program.graph.nodes}
    assert 'mmadc.adaptive_dilated_conv2d.default' in targets
    for num in (1, 5):
        x = torch.randn(num, 8, 10, 9)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), layer(x))


def test_torch_only_import():
    """``mmadc.ops`` needs torch only: with the OpenMMLab packages made
    unimportable, the operator and the layer work (forward and backward)."""
    code = '''
import sys
for name in ('mmengine', 'mmcv', 'mmdet', 'mmpose', 'mmseg'):
    sys.modules[name] = None
import torch
from mmadc.ops import AdaptiveDilatedConv2d
layer = AdaptiveDilatedConv2d(4, 4, 3, padding=1)
x = torch.randn(2, 4, 6, 6, requires_grad=True)
out = layer(x)
out.sum().backward()
ref = torch.nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)
assert torch.allclose(out, ref, atol=1e-5), 'rate-1 ADC is not the conv'
loaded = [n for n, m in sys.modules.items()
          if m is not None and n.split('.')[0] in (
              'mmengine', 'mmcv', 'mmdet', 'mmpose', 'mmseg')]
assert not loaded, loaded
print('ok')
'''
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0 and 'ok' in proc.stdout, proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
@pytest.mark.parametrize('channels_last', [False, True])
def test_no_host_sync_on_cuda(channels_last):
    """Forward and backward issue no device-to-host synchronisation."""
    x, weight, rates, b, s, p, d = _case(CASES[1], torch.float32)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x, weight, rates = (t.cuda().requires_grad_() for t in (x, weight, rates))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        out = adaptive_dilated_conv2d(x, weight, rates, None, s, p, d)
        out.square().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert x.grad is not None and rates.grad is not None


@pytest.mark.parametrize('case', CASES)
def test_decomposition_for_export_equals_deform_conv2d(case):
    """The standard-operator form that ONNX exports (grid_sample + matmul)
    computes the op: values and gradients against deform_conv2d, also for
    negative rates and taps that leave the image."""
    from mmadc.ops.decomposition import adaptive_dilated_conv2d_decomposed
    x, weight, rates, b, s, p, d = _case(case, torch.float64, seed=7)
    rates = (rates * 2 - 1.5).requires_grad_()
    x.requires_grad_()
    weight.requires_grad_()
    out = adaptive_dilated_conv2d_decomposed(x, weight, rates, b, s, p, d,
                                             torch.float64)
    _assert_equals_deform(out, x, weight, rates, b, s, p, d)


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_input_propagates_within_the_documented_window(value):
    """A bad input pixel raises nothing and turns into non-finite outputs: at
    integer rates exactly within the documented (k + 2) x (k + 2) window,
    which holds F.conv2d's k x k one; every other output is exact."""
    x = torch.randn(1, 2, 12, 11, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    rates = torch.ones(1, 2, dtype=torch.float64)
    clean = adaptive_dilated_conv2d(x, weight, rates, None, 1, 1)
    x[0, 1, 5, 6] = value
    out = adaptive_dilated_conv2d(x, weight, rates, None, 1, 1)
    bad = (~out.isfinite()).any(1)[0]
    conv_bad = (
        ~torch.nn.functional.conv2d(x, weight, padding=1).isfinite()).any(1)[0]
    window = torch.zeros_like(bad)
    window[5 - 2:5 + 3, 6 - 2:6 + 3] = True
    assert bad.equal(window)
    assert (bad | ~conv_bad).all()  # conv2d's window is inside
    torch.testing.assert_close(
        out[..., ~bad], clean[..., ~bad], rtol=0, atol=0)


def test_layer_with_a_non_finite_input_pixel():
    """The regressor pools the whole image: that sample's rates and output
    become NaN (no error about rates the user never passed); the other
    samples of the batch are unaffected."""
    layer = _layer(2)
    x = torch.randn(2, 8, 10, 9)
    clean = layer(x)
    x[1, 3, 4, 4] = float('nan')
    out = layer(x)
    assert layer.last_rates[1].isnan().all()
    assert out[1].isnan().all()
    torch.testing.assert_close(out[0], clean[0], rtol=0, atol=0)
