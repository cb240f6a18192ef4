# Copyright (c) mmadc contributors. All rights reserved.
"""Backends are found by name: one registered here, outside the operator's
file, computes the op's forward and backward through the common signature,
and raises with its own reason where it does not apply."""
import types

import pytest
import torch
import torch.nn.functional as F

from mmadc.ops import (adaptive_dilated_conv2d, adc_implementation,
                       implementations, reference)


@pytest.fixture
def fake_calls():
    """Register backend ``fake`` (the reference, float32 only, recording
    its calls) for one test; yields the calls."""
    calls = []

    def forward(*args):
        calls.append(('forward', args[7]))  # compute_dtype
        return reference.forward(*args)

    def backward(*args):
        calls.append(('backward', args[7], tuple(args[8:])))  # need_x/w/r
        return reference.backward(*args)

    def unsupported_reason(input, compute_dtype, weight=None):
        if input.dtype != torch.float32:
            return 'the fake takes float32 only'
        return None

    backend = types.SimpleNamespace(
        forward=forward,
        backward=backward,
        unsupported_reason=unsupported_reason)
    implementations.register_backend('fake', lambda: backend)
    try:
        yield calls
    finally:
        implementations.unregister_backend('fake')


def test_registered_backend_computes_the_op(fake_calls):
    """At rate 1 ADC is F.conv2d: output and gradients through the fake."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 6, generator=gen, requires_grad=True)
    weight = torch.randn(3, 4, 3, 3, generator=gen, requires_grad=True)
    bias = torch.randn(3, generator=gen)
    rates = torch.ones(2, 2)  # no rate gradient: need_r False
    with adc_implementation('fake'):
        assert implementations.resolve_implementation(x, x.dtype) == 'fake'
        out = adaptive_dilated_conv2d(x, weight, rates, bias, 1, 1)
        grad_out = torch.randn(out.shape, generator=gen)
        grad_x, grad_w = torch.autograd.grad(out, (x, weight), grad_out)
    assert fake_calls == [('forward', torch.float32),
                          ('backward', torch.float32, (True, True, False))]
    expected = F.conv2d(x, weight, bias, padding=1)
    want_x, want_w = torch.autograd.grad(expected, (x, weight), grad_out)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_x, want_x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_w, want_w, rtol=1e-5, atol=1e-5)


def test_registered_backend_raises_its_reason(fake_calls):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    rates = torch.ones(1, 1, dtype=torch.float64)
    with adc_implementation('fake'), pytest.raises(
            RuntimeError,
            match='^ADC implementation "fake" requested but the fake takes '
            'float32 only; use "auto" or "reference"$'):
        adaptive_dilated_conv2d(x, weight, rates, None, 1, 1)
    assert fake_calls == []


def test_auto_never_takes_a_registered_backend(fake_calls):
    x = torch.randn(1, 2, 5, 5)
    with adc_implementation('auto'):
        chosen = implementations.resolve_implementation(x, x.dtype)
    assert chosen in ('native', 'reference')


def test_backend_that_does_not_import_names_why():

    def loader():
        raise ImportError('fakelib is not installed')

    implementations.register_backend('missing', loader)
    try:
        x = torch.randn(1, 2, 5, 5)
        with adc_implementation('missing'), pytest.raises(
                RuntimeError,
                match='"missing" requested but fakelib is not installed'):
            implementations.resolve_implementation(x, x.dtype)
    finally:
        implementations.unregister_backend('missing')


def test_names_are_checked():
    for name in implementations.IMPLEMENTATIONS:
        with pytest.raises(ValueError, match='exists already'):
            implementations.register_backend(name, lambda: reference)
    with pytest.raises(ValueError, match='not a registered ADC backend'):
        implementations.unregister_backend('reference')
    with pytest.raises(ValueError, match='not a registered ADC backend'):
        implementations.unregister_backend('fake')
    # unregistered: not selectable
    with pytest.raises(ValueError, match='implementation must be one of'):
        with adc_implementation('fake'):
            pass
