# Copyright (c) mmadc contributors. All rights reserved.
"""Tests of eager inference, which runs the op's kernel without the
dispatcher (``_runs_kernel_directly``).

The values come from independent oracles (``F.conv2d`` at rate 1,
``torchvision.ops.deform_conv2d`` at fractional rates); the other tests
state that everything that must see the op still does: autograd, a dispatch
mode, make_fx's tracer, TorchScript tracing and ``torch.compile``.
"""
import pytest
import torch
import torch.nn.functional as F
from deform_oracle import deform_conv_of_rates
from torch.utils._python_dispatch import TorchDispatchMode

import mmadc.ops.adaptive_dilated_conv as adc_module
from mmadc.ops import AdaptiveDilatedConv2d, adaptive_dilated_conv2d

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
