# Copyright (c) mmadc contributors. All rights reserved.
"""The Triton kernels against the reference, on CPU through Triton's
interpreter.

Triton decides whether a kernel is interpreted when the kernel is defined,
from ``TRITON_INTERPRET``. Setting the variable in this process would change
every Triton kernel defined after it (``torch._inductor`` defines its own
when another test compiles a model), so the kernels run in one subprocess
that has ``TRITON_INTERPRET=1`` from the start: it computes every case
through the registered op (``adc_implementation('triton')``) and through
the reference in float64, and reports the relative errors (max absolute
difference over the oracle's max magnitude) that the tests here check.

Skipped where triton (>= 3.0) is missing or the op is not registered
(torch < 2.4).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

try:
    import triton
except ImportError:  # the tests skip, see pytestmark
    triton = None

from mmadc.ops import adc_implementation, implementations


def _triton_missing():
    if not hasattr(torch.library, 'custom_op'):
        return 'the registered op needs torch >= 2.4 (torch.library.custom_op)'
    try:
        implementations.triton_kernels()
    except ImportError as error:
        return str(error)
    return None


pytestmark = pytest.mark.skipif(
    _triton_missing() is not None,
    reason=f'triton kernels unavailable: {_triton_missing()}')

# (N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups, dtype,
#  channels_last, bias); groups 1, 4 and C_in; dtype None: float32 outside
# autocast, else the autocast dtype (input in float32, or in that dtype
# with '+input')
CASES = {
    'g1': (2, 8, 5, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, None, 0, 1),
    'g4': (2, 8, 5, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 4, None, 0, 1),
    'gC': (2, 8, 5, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 8, None, 0, 0),
    'stride2-dil2':
    (2, 8, 4, 9, 8, (3, 3), (2, 2), (2, 2), (2, 2), 4, None, 0, 1),
    'stride2-gC':
    (1, 4, 3, 8, 9, (3, 3), (2, 2), (1, 1), (1, 1), 4, None, 0, 0),
    'mixed-axes':
    (2, 4, 3, 10, 6, (5, 3), (2, 1), (2, 3), (1, 2), 2, None, 0, 1),
    'channels_last':
    (2, 8, 5, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 4, None, 1, 1),
    # 32 channels per group: the input gradient's tl.dot path
    'wide-g1': (1, 32, 20, 6, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, None, 0,
                1),
    'bf16': (2, 8, 5, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 4, 'bfloat16', 0,
             1),
    'bf16-input-cl-gC': (2, 8, 5, 9, 8, (3, 3), (2, 2), (2, 2), (2, 2), 8,
                         'bfloat16+input', 1, 1),
    'fp16-wide': (1, 32, 20, 6, 5, (3, 3), (1, 1), (1, 1), (1, 1), 2,
                  'float16', 0, 1),
    'fp16-stride2-g1': (2, 8, 4, 9, 8, (3, 3), (2, 2), (2, 2), (2, 2), 1,
                        'float16', 0, 0),
}

TOLERANCE = {
    None: 1e-5,
    'bfloat16': torch.finfo(torch.bfloat16).eps,
    'float16': torch.finfo(torch.float16).eps,
}


def _rates(num, groups, gen):
    """Rates in [0, 3], exact integers included (the kinks): with the
    images' sizes every edge is crossed by some tap."""
    rates = 3 * torch.rand(num, groups, generator=gen)
    flat = rates.view(-1)
    flat[::3] = flat[::3].round()
    flat[0] = 0.
    return rates


def _compute(name):
    """Relative errors of the op's output and gradients (triton against the
    float64 reference), and the output layout."""
    (num, cin, cout, h, w, k, s, p, d, g, dtype, channels_last,
     bias) = CASES[name]
    from mmadc.ops import adaptive_dilated_conv2d
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    x = torch.randn(num, cin, h, w, generator=gen)
    weight = torch.randn(
        cout, cin, *k, generator=gen) / (cin * k[0] * k[1])**.5
    b = torch.randn(cout, generator=gen) if bias else None
    r = _rates(num, g, gen)
    autocast = dtype.split('+')[0] if dtype else None
    if dtype and dtype.endswith('+input'):
        x = x.to(getattr(torch, autocast))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    leaves = [t for t in (x, weight, r, b) if t is not None]
    leaves = [t.detach().requires_grad_() for t in leaves]
    with adc_implementation('triton'), torch.autocast(
            'cpu',
            getattr(torch, autocast or 'float32'),
            enabled=autocast is not None):
        assert implementations.resolve_implementation(
            leaves[0], leaves[0].dtype if autocast is None else getattr(
                torch, autocast)) == 'triton'
        out = adaptive_dilated_conv2d(leaves[0], leaves[1], leaves[2],
                                      leaves[3] if bias else None, s, p, d)
    grad_out = torch.randn(out.shape, generator=gen)
    grads = torch.autograd.grad(out, leaves, grad_out.to(out.dtype))
    oracle = [t.detach().double().requires_grad_() for t in leaves]
    with adc_implementation('reference'):
        ref = adaptive_dilated_conv2d(oracle[0], oracle[1], oracle[2],
                                      oracle[3] if bias else None, s, p, d)
    ref_grads = torch.autograd.grad(ref, oracle, grad_out.double())
    errors = {}
    for key, got, want in zip(('out', 'x', 'w', 'r', 'b'), (out, *grads),
                              (ref, *ref_grads)):
        diff = (got.detach().double() - want.detach()).abs().max() / \
            want.detach().abs().max()
        errors[key] = float(diff)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return {
        'errors':
        errors,
        'dtype':
        str(out.dtype),
        'layout_kept':
        out.is_contiguous(memory_format=layout)
        and grads[0].is_contiguous(memory_format=layout),
    }


@pytest.fixture(scope='module')
def results():
    """Every case, computed in one interpreted subprocess."""
    env = dict(os.environ, TRITON_INTERPRET='1', OMP_NUM_THREADS='2')
    env.pop('MMADC_ADC_IMPL', None)
    proc = subprocess.run([sys.executable, __file__],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('name', sorted(CASES))
def test_triton_equals_reference(results, name):
    """Output and the gradients of input, weight, rates and bias: float32
    to 1e-5 relative, float16/bfloat16 (autocast) to their resolution; the
    output in the autocast dtype and in the input's memory format."""
    result = results[name]
    assert 'failure' not in result, result.get('failure')
    dtype = CASES[name][10]
    tol = TOLERANCE[dtype and dtype.split('+')[0]]
    bad = {k: v for k, v in result['errors'].items() if not v <= tol}
    assert not bad, f'relative errors above {tol:.1e}: {bad}'
    expected = 'torch.float32' if dtype is None else \
        f'torch.{dtype.split("+")[0]}'
    assert result['dtype'] == expected
    assert result['layout_kept']


def test_unsupported_calls_raise_one_line(results):
    """``triton`` names why it does not apply instead of falling back
    silently: float64, a non-interpreted process on CPU."""
    assert results['float64'].startswith('ADC implementation "triton" '
                                         'requested but the triton kernels '
                                         'take float32/float16/bfloat16')
    from mmadc.ops import triton_kernels
    if triton_kernels.INTERPRETED:
        pytest.skip('this process interprets triton (TRITON_INTERPRET=1)')
    x = torch.randn(1, 2, 5, 5)
    with adc_implementation('triton'), pytest.raises(
            RuntimeError, match='need a CUDA input .*TRITON_INTERPRET=1'):
        implementations.resolve_implementation(x, x.dtype)


def _compile_for_sm90(kernel, pointers, constants):
    """Compile ``kernel`` ahead of time for an sm_90 GPU (no GPU needed):
    pointer arguments of the given types, the other runtime arguments
    int32."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    signature, constexprs = {}, {}
    for index, (name,
                param) in enumerate(zip(kernel.arg_names, kernel.params)):
        if param.is_constexpr:
            signature[name] = 'constexpr'
            constexprs[(index, )] = constants[name]
        else:
            signature[name] = pointers.get(name, 'i32')
    return triton.compile(
        ASTSource(kernel, signature, constexprs),
        target=GPUTarget('cuda', 90, 32))


@pytest.mark.parametrize('kernel,dtype,extra', [
    ('_adc_forward_kernel', 'bfloat16', dict(HAS_BIAS=True)),
    ('_adc_weight_grad_kernel', 'float32', {}),
    ('_adc_rate_grad_kernel', 'float16', {}),
    ('_adc_input_grad_kernel', 'bfloat16', dict(BLOCK_C=32, USE_DOT=True)),
    ('_adc_input_grad_kernel', 'float32', dict(BLOCK_C=2, USE_DOT=False)),
])
def test_kernels_compile_for_a_gpu(kernel, dtype, extra):
    """The interpreter runs the kernels' Python, not Triton's compiler: the
    compiled path (types, constexpr branches, tl.dot's operand rules) is
    checked by compiling each kernel to an sm_90 binary here."""
    from mmadc.ops import triton_kernels
    if triton_kernels.INTERPRETED:
        pytest.skip('this process interprets triton (TRITON_INTERPRET=1)')
    tl_dtype = triton_kernels._TL_DTYPES[getattr(torch, dtype)]
    data = {'float32': '*fp32', 'bfloat16': '*bf16', 'float16': '*fp16'}[dtype]
    pointers = dict(
        x_ptr='*fp32',
        frac_h_ptr='*fp32',
        frac_w_ptr='*fp32',
        part_ptr='*fp32',
        grad_x_ptr='*fp32',
        floor_h_ptr='*i32',
        floor_w_ptr='*i32',
        w_ptr=data,
        bias_ptr=data,
        grad_ptr=data,
        out_ptr=data)
    constants = dict(
        KH=3,
        KW=3,
        GEMM_DTYPE=tl_dtype,
        PRECISION='tf32' if dtype == 'float32' else 'ieee',
        EMULATE=False,
        BLOCK_P=64,
        BLOCK_CO=32,
        BLOCK_K=32,
        BLOCK_HW=64,
        **extra)
    kernel = getattr(triton_kernels, kernel)
    while not isinstance(kernel, triton.runtime.JITFunction):
        kernel = kernel.fn  # the kernel under @triton.autotune
    compiled = _compile_for_sm90(kernel, pointers, constants)
    assert compiled.asm['cubin']


def test_every_autotune_config_gives_the_same_result(results):
    """Which config the autotuner picks does not change the result: the
    output and the weight gradient are bitwise the same under each config
    (float32 and bfloat16 GEMMs, several tiles). Under the interpreter a
    config that changed the block sizes would fail here (numpy's matmul
    sums another tile in another order)."""
    assert results['configs_agree'] == {'float32': True, 'bfloat16': True}


def _every_config_agrees():
    """Per compute dtype, whether the forward and the weight gradient are
    bitwise equal under every config of the autotuned kernels (the i-th
    config of each, the last where a kernel has fewer)."""
    from mmadc.ops import triton_kernels as kernels
    tuned = (kernels._adc_forward_kernel, kernels._adc_weight_grad_kernel)
    all_configs = [kernel.configs for kernel in tuned]
    gen = torch.Generator().manual_seed(0)
    # 9 x 15 output positions and 8 * 9 columns: several tiles per config
    x = torch.randn(2, 8, 9, 15, generator=gen)
    weight = torch.randn(5, 8, 3, 3, generator=gen) / 72**.5
    rates = _rates(2, 4, gen)
    grad = torch.randn(2, 5, 9, 15, generator=gen)
    conv = ([1, 1], [1, 1], [1, 1])
    agree = {}
    try:
        for dtype in (torch.float32, torch.bfloat16):
            got = []
            for index in range(max(map(len, all_configs))):
                for kernel, configs in zip(tuned, all_configs):
                    kernel.configs = [configs[min(index, len(configs) - 1)]]
                    kernel.cache.clear()
                out = kernels.forward(x, weight, rates, None, *conv, dtype)
                _, grad_w, _ = kernels.backward(grad, x, weight, rates, *conv,
                                                dtype, False, True, False)
                got.append((out, grad_w))
            agree[str(dtype).split('.')[1]] = all(
                torch.equal(a, b) for other in got[1:]
                for a, b in zip(got[0], other))
    finally:
        for kernel, configs in zip(tuned, all_configs):
            kernel.configs = configs
            kernel.cache.clear()
    return agree


def _float64_error():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    with adc_implementation('triton'):
        try:
            implementations.resolve_implementation(x, x.dtype)
        except RuntimeError as error:
            return str(error)
    return 'no error'


if __name__ == '__main__':  # the interpreted subprocess of ``results``
    assert os.environ.get('TRITON_INTERPRET') == '1'
    report = {
        'float64': _float64_error(),
        'configs_agree': _every_config_agrees()
    }
    for case in CASES:
        try:
            report[case] = _compute(case)
        except Exception as error:  # reported per case by the test
            report[case] = {'failure': f'{type(error).__name__}: {error}'}
    print(json.dumps(report))
