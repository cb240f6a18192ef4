# Copyright (c) mmadc contributors. All rights reserved.
"""Tests of eager inference, which runs the op's kernel without the
dispatcher (``_runs_kernel_directly``), and a whole layer in one native call
where it can (``native_cpu.layer_forward``).

The values come from independent oracles (``F.conv2d`` at rate 1,
``torchvision.ops.deform_conv2d`` at fractional rates); the other tests
state that everything that must see the op still does: autograd, a dispatch
mode, make_fx's tracer, TorchScript tracing and ``torch.compile``.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from deform_oracle import deform_conv_of_rates
from torch.utils._python_dispatch import TorchDispatchMode

import mmadc.ops.adaptive_dilated_conv as adc_module
from mmadc.ops import (AdaptiveDilatedConv2d, DilationRateRegressor,
                       adaptive_dilated_conv2d, adc_implementation, native_cpu)

# every test runs on both implementations (see tests/conftest.py)
pytestmark = pytest.mark.usefixtures('adc_impl')

needs_custom_op = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='the registered op needs torch >= 2.4 (torch.library.custom_op)')

OP_NAME = 'mmadc.adaptive_dilated_conv2d.default'
#: stride, padding and dilation of the cases
ONE_PAD = ([1, 1], [1, 1], [1, 1])


def _case(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 9, 7, generator=gen)
    weight = torch.randn(5, 4, 3, 3, generator=gen)
    bias = torch.randn(5, generator=gen)
    rates = torch.rand(2, 2, generator=gen) * 2.5 + 0.5
    return x, weight, bias, rates


class _OpCalls:
    """Counts the calls that reach the dispatcher (``_apply``)."""

    def __init__(self, monkeypatch):
        self.count = 0
        apply = adc_module._apply

        def counted(*args):
            self.count += 1
            return apply(*args)

        monkeypatch.setattr(adc_module, '_apply', counted)


@pytest.mark.parametrize('context', ['no_grad', 'inference_mode'])
def test_inference_runs_the_kernel_directly_with_the_op_values(
        context, monkeypatch):
    if adc_module._key_included is None or \
            adc_module._functorch_level is None:
        pytest.skip('this torch lacks the checks the direct call needs')
    calls = _OpCalls(monkeypatch)
    x, weight, bias, rates = _case()
    guard = torch.no_grad() if context == 'no_grad' else \
        torch.inference_mode()
    with guard:
        out = adaptive_dilated_conv2d(x, weight, rates, bias, padding=1)
        ones = adaptive_dilated_conv2d(
            x, weight, torch.ones_like(rates), bias, padding=1)
    assert calls.count == 0
    torch.testing.assert_close(
        out,
        deform_conv_of_rates(x, weight, rates, bias, *ONE_PAD),
        rtol=1e-4,
        atol=1e-4)
    torch.testing.assert_close(
        ones, F.conv2d(x, weight, bias, padding=1), rtol=1e-4, atol=1e-4)


def test_gradients_still_go_through_the_op(monkeypatch):
    """Grad mode with a tensor that requires grad: the autograd formula
    runs, and the rate gradient is the oracle's."""
    calls = _OpCalls(monkeypatch)
    x, weight, bias, rates = _case(1)
    rates.requires_grad_()
    adaptive_dilated_conv2d(
        x, weight, rates, bias, padding=1).square().sum().backward()
    assert calls.count == 1
    expected = rates.detach().clone().requires_grad_()
    deform_conv_of_rates(x, weight, expected, bias,
                         *ONE_PAD).square().sum().backward()
    torch.testing.assert_close(rates.grad, expected.grad, rtol=1e-3, atol=1e-3)


@needs_custom_op
def test_a_dispatch_mode_still_sees_the_op():
    """A logging or FLOP-counting mode under no_grad sees the ADC call."""

    class Recorder(TorchDispatchMode):

        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    x, weight, bias, rates = _case(2)
    with torch.no_grad(), Recorder() as recorder:
        adaptive_dilated_conv2d(x, weight, rates, bias, padding=1)
    assert OP_NAME in recorder.names


@needs_custom_op
def test_make_fx_traces_the_op_from_real_tensors():
    """make_fx with real tensors under no_grad: the graph holds the op and
    computes new inputs (not a constant captured from the example)."""
    from torch.fx.experimental.proxy_tensor import make_fx
    x, weight, bias, rates = _case(3)

    def fn(x, rates):
        return adaptive_dilated_conv2d(x, weight, rates, bias, padding=1)

    with torch.no_grad():
        graph = make_fx(fn)(x, rates)
        targets = {str(node.target) for node in graph.graph.nodes}
        assert OP_NAME in targets
        x2, _, _, rates2 = _case(4)
        torch.testing.assert_close(graph(x2, rates2), fn(x2, rates2))


@needs_custom_op
def test_jit_trace_under_no_grad_follows_new_inputs():
    layer = _layer()
    x = torch.randn(2, 4, 9, 7)
    with torch.no_grad():
        traced = torch.jit.trace(layer, (x, ), check_trace=False)
        x2 = torch.randn(2, 4, 9, 7) * 3
        torch.testing.assert_close(traced(x2), layer(x2))


@needs_custom_op
def test_compile_under_no_grad_has_no_graph_break():
    layer = _layer()
    x = torch.randn(2, 4, 9, 7)
    with torch.no_grad():
        compiled = torch.compile(layer, fullgraph=True, dynamic=False)
        torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-5)
        assert torch._dynamo.explain(layer)(x).graph_break_count == 0


def _layer():
    torch.manual_seed(0)
    layer = AdaptiveDilatedConv2d(4, 5, 3, padding=1, dilation_groups=2)
    with torch.no_grad():  # input-dependent rates away from 1
        layer.rate_regressor.fc2.weight.normal_(0, 0.5)
        layer.rate_regressor.fc2.bias.uniform_(0.5, 2.5)
    return layer.eval()


# ---------------------------------------------------------------------------
# AdaptiveDilatedConv2d in one native call (native_cpu.layer_forward)
# ---------------------------------------------------------------------------

needs_native = pytest.mark.skipif(
    not native_cpu.native_cpu_available(),
    reason='native CPU kernel not built (no compiler at install time)')


class _LayerCalls:
    """Records what each native_cpu.layer_forward call returned: 'output',
    'rates' (rates only: the op clamps them) or 'declined'."""

    def __init__(self, monkeypatch):
        self.results = []
        layer_forward = native_cpu.layer_forward

        def recorded(*args):
            rates, out = layer_forward(*args)
            self.results.append('declined' if rates is
                                None else 'rates' if out is None else 'output')
            return rates, out

        monkeypatch.setattr(native_cpu, 'layer_forward', recorded)


def _varied_layer(activation='relu', max_rate=None, bias=True, **conv):
    """A layer whose rates depend on the input, in 0.5-3 or so."""
    torch.manual_seed(0)
    layer = AdaptiveDilatedConv2d(
        6,
        5,
        3,
        bias=bias,
        dilation_groups=3,
        rate_activation=activation,
        max_rate=max_rate,
        **conv)
    with torch.no_grad():
        layer.rate_regressor.fc2.weight.normal_(0, 0.5)
        layer.rate_regressor.fc2.bias.uniform_(0.5, 2.5)
    return layer.eval()


def _python_rates(layer, x):
    """The regressor's rates from its PyTorch modules (its own forward)."""
    return layer.rate_regressor(x)


@needs_native
@pytest.mark.parametrize('activation', ['relu', 'softplus', 'elu'])
@pytest.mark.parametrize(
    'conv', [
        dict(padding=1),
        dict(stride=2, padding=2, dilation=2, bias=False),
        dict(padding='same', dilation=2, max_rate=1.5),
        dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    ],
    ids=['s1', 's2-d2-nobias', 'same-maxrate', 'mixed'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_layer_inference_in_one_call_equals_the_oracles(
        activation, conv, dtype, adc_impl, monkeypatch):
    """In no_grad, the whole layer is one native call (under 'auto'; the
    reference implementation keeps the PyTorch path): its rates are the
    regressor's modules' and its output deform_conv2d's with those rates."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(activation, **conv).to(dtype)
    x = torch.randn(2, 6, 11, 9, dtype=dtype)
    with torch.no_grad():
        out = layer(x)
        expected_rates = _python_rates(layer, x)
    assert calls.results == (['output'] if adc_impl == 'auto' else [])
    tol = dict(
        rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(
            rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(layer.last_rates, expected_rates, **tol)
    assert float(expected_rates.min()) != float(expected_rates.max())
    padding = layer._padding_pair()
    torch.testing.assert_close(
        out,
        deform_conv_of_rates(x, layer.weight, expected_rates, layer.bias,
                             layer.stride, padding, layer.dilation), **tol)


@needs_native
@pytest.mark.parametrize('bad', ['huge', 'nan'])
def test_layer_inference_leaves_unsafe_rates_to_the_op(bad, adc_impl,
                                                       monkeypatch):
    """Rates beyond the op's bound (clamped there) or NaN (poisoned there):
    the native call returns the rates only and the op computes the output,
    as the reference implementation does with the regressor's rates."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer()
    x = torch.randn(2, 6, 11, 9)
    with torch.no_grad():
        if bad == 'huge':
            layer.rate_regressor.fc2.bias[0] = 1e6
        else:
            x[1, 2, 3, 4] = float('nan')
        out = layer(x)
        with adc_implementation('reference'):
            expected = layer(x)
    assert calls.results == (['rates'] if adc_impl == 'auto' else [])
    torch.testing.assert_close(
        out, expected, rtol=1e-5, atol=1e-5, equal_nan=True)
    if bad == 'nan':
        assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()


@needs_native
def test_layer_inference_declines_what_it_does_not_compute(
        adc_impl, monkeypatch):
    """channels_last input (the op keeps the layout), an input of another
    dtype than the weights, one too small for the kernel, and a stride,
    dilation or padding out of range (the op's errors): the native call
    declines, the op answers."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(padding=1)
    x = torch.randn(2, 6, 11, 9)
    with torch.no_grad():
        out = layer(x.to(memory_format=torch.channels_last))
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, layer(x), rtol=1e-5, atol=1e-5)
        with pytest.raises(TypeError, match='weight dtype'):
            layer(x.double())
        small = _varied_layer(padding=0)
        with pytest.raises(ValueError, match='too small'):
            small(torch.randn(1, 6, 2, 9))
        for name, value in (('stride', (0, 1)), ('dilation', (1, 0)),
                            ('padding', (-1, 1))):
            bad = _varied_layer(padding=1)
            setattr(bad, name, value)
            with pytest.raises(ValueError, match=f'{name} must be >='):
                bad(x)
    assert calls.results == (['declined', 'output'] +
                             ['declined'] * 5 if adc_impl == 'auto' else [])


@needs_native
def test_layer_with_gradients_or_checks_keeps_the_op(monkeypatch):
    """Training (gradients), a rate check (MMADC_CHECK_RATES) or autocast:
    no native layer call."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(padding=1)
    x = torch.randn(2, 6, 11, 9)
    layer(x).sum().backward()
    assert layer.rate_regressor.fc1.weight.grad is not None
    with torch.no_grad(), adc_module.adc_rate_check():
        layer(x)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        layer(x)
    assert calls.results == []


@needs_native
@pytest.mark.parametrize('where', ['regressor', 'fc1', 'global'])
def test_forward_hooks_of_the_regressor_still_run(where, monkeypatch):
    """A forward hook on the regressor or its layers, or a global one, sees
    the call: the layer then runs the regressor's modules, not the one
    native call that would skip them."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(padding=1)
    seen = []

    def hook(module, args, output):
        if isinstance(module, nn.Linear):
            seen.append(output.shape)

    if where == 'global':
        handle = nn.modules.module.register_module_forward_hook(hook)
    else:
        module = layer.rate_regressor
        handle = (module if where == 'regressor' else module.fc1
                  ).register_forward_hook(lambda *a: seen.append(where))
    try:
        with torch.no_grad():
            layer(torch.randn(2, 6, 11, 9))
    finally:
        handle.remove()
    assert seen and calls.results == []


@needs_native
@pytest.mark.parametrize('change', ['subclass', 'instance', 'linear'])
def test_a_changed_regressor_computes_the_rates(change, monkeypatch):
    """A regressor subclass with its own forward, a forward set on the
    instance, or a linear layer of another type: the layer runs them (here:
    rates of 2), not the native call's regressor."""

    class Two(DilationRateRegressor):

        def forward(self, x):
            return x.new_full((x.shape[0], self.fc2.out_features), 2.0)

    class Linear(nn.Linear):

        def forward(self, x):
            return super().forward(x) * 0 + (1.0 if self.out_features == 3 else
                                             0.5)

    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(padding=1)
    regressor = layer.rate_regressor
    if change == 'subclass':
        layer.rate_regressor = Two(6, 3)
    elif change == 'instance':
        regressor.forward = lambda x: x.new_full((x.shape[0], 3), 2.0)
    else:
        regressor.fc2 = Linear(regressor.fc2.in_features, 3)
        with torch.no_grad():
            regressor.fc2.bias.fill_(0.5)
    x = torch.randn(2, 6, 11, 9)
    with torch.no_grad():
        layer(x)
    expected = 1.0 if change == 'linear' else 2.0
    assert torch.equal(layer.last_rates, torch.full((2, 3), expected))
    assert calls.results == []


@needs_native
def test_layer_with_a_replaced_regressor_layer_gets_its_error(
        adc_impl, monkeypatch):
    """An fc1 of the wrong width: the native call declines and the layer
    raises PyTorch's own shape error, as without it."""
    calls = _LayerCalls(monkeypatch)
    layer = _varied_layer(padding=1)
    layer.rate_regressor.fc1 = nn.Linear(5, 16)
    with torch.no_grad(), pytest.raises(RuntimeError, match='shapes'):
        layer(torch.randn(2, 6, 11, 9))
    assert calls.results == (['declined'] if adc_impl == 'auto' else [])
