# Copyright (c) mmadc contributors. All rights reserved.
"""Run every ADC operator test under both implementations.

``auto`` takes the native CPU kernel wherever it applies (float32/float64
outside autocast, when it was built) and ``reference`` the PyTorch
implementation, so each oracle test (``F.conv2d``, ``deform_conv2d``,
gradcheck, ...) checks both.
"""
import pytest

from mmadc.ops.native_cpu import adc_implementation


@pytest.fixture(autouse=True, params=['auto', 'reference'])
def adc_impl(request):
    with adc_implementation(request.param):
        yield request.param
