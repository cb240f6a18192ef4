# Copyright (c) mmadc contributors. All rights reserved.
"""The native CPU kernel against the reference implementation.

The reference (PyTorch operations) is itself checked against ``F.conv2d``,
``deform_conv2d`` and finite differences in ``test_adaptive_dilated_conv.py``
(which also runs every oracle test through the native kernel). Here the
native kernel must reproduce it, values and every gradient, over the
geometry grid, on both threading paths, with blocks that split and that span
samples, and with oneDNN or MKL GEMMs.
"""
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmadc.ops import (adaptive_dilated_conv2d, adc_implementation,
                       implementations, native_cpu, reference)
from mmadc.ops.native_cpu import native_cpu_available

ROOT = Path(__file__).resolve().parents[2]

needs_kernel = pytest.mark.skipif(
    not native_cpu_available(),
    reason='native CPU kernel not built (no compiler at install time)')


def test_kernel_built_where_expected():
    """CI sets MMADC_EXPECT_NATIVE_KERNEL=1: a silently failed build (the
    install only warns) must fail the run there."""
    if os.environ.get('MMADC_EXPECT_NATIVE_KERNEL') != '1':
        pytest.skip('MMADC_EXPECT_NATIVE_KERNEL is not set')
    assert native_cpu_available(), (
        'mmadc.ops._adc_cpu is missing: see the build_ext output of '
        '`pip install --no-build-isolation -e .`')


@pytest.fixture
def ran(monkeypatch):
    """The implementations that computed forwards since the test began."""
    calls = []
    for name, module in (('native', native_cpu), ('reference', reference)):

        def spy(*args, _name=name, _forward=module.forward):
            calls.append(_name)
            return _forward(*args)

        monkeypatch.setattr(module, 'forward', spy)
    return calls


def _run(impl, x, w, r, b, stride, padding, dilation, grad_out, wrt):
    """Output and the gradients w.r.t. ``wrt`` (names) of one call."""
    leaves = {
        'x': x.detach().requires_grad_('x' in wrt),
        'w': w.detach().requires_grad_('w' in wrt),
        'r': r.detach().requires_grad_('r' in wrt),
        'b': None if b is None else b.detach().requires_grad_('b' in wrt),
    }
    with adc_implementation(impl):
        assert implementations.resolve_implementation(x, x.dtype) == impl
        out = adaptive_dilated_conv2d(leaves['x'], leaves['w'], leaves['r'],
                                      leaves['b'], stride, padding, dilation)
        grads = torch.autograd.grad(out, [leaves[k] for k in wrt], grad_out)
    return out, dict(zip(wrt, grads))


def _rates(kind, num, groups, gen):
    if kind == 'fractional':
        return 0.2 + 2.5 * torch.rand(
            num, groups, generator=gen, dtype=torch.float64)
    if kind == 'integer':
        return torch.randint(0, 4, (num, groups), generator=gen).double()
    if kind == 'zero':
        return torch.zeros(num, groups, dtype=torch.float64)
    # large: most taps read outside the image
    return 6.0 + 5 * torch.rand(
        num, groups, generator=gen, dtype=torch.float64)


# (N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups)
GEOMETRIES = [
    (5, 4, 3, 9, 7, (3, 3), (1, 1), (1, 1), (1, 1), 4),
    (1, 4, 3, 9, 7, (3, 3), (1, 1), (1, 1), (1, 1), 2),  # serial backward
    (3, 6, 4, 8, 11, (3, 3), (2, 2), (2, 2), (2, 2), 3),
    (2, 4, 2, 10, 6, (5, 3), (1, 2), (2, 3), (1, 3), 1),
    (4, 2, 5, 5, 5, (3, 5), (2, 1), (0, 3), (2, 1), 2),
    (3, 3, 2, 1, 9, (1, 3), (1, 1), (0, 1), (1, 1), 3),  # a 1-row image
    # more output channels than output pixels (late stages)
    (5, 4, 16, 3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 4),
    (1, 4, 16, 3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (3, 6, 10, 5, 4, (3, 3), (2, 2), (2, 2), (2, 2), 3),
    # stride 2 reads even/odd phase planes: even sizes (rows of the planes
    # as long as the output's), odd sizes (zero-filled plane ends), and
    # stride 2 along H only
    (2, 4, 3, 8, 6, (3, 3), (2, 2), (1, 1), (1, 1), 4),
    (3, 4, 3, 7, 9, (3, 3), (2, 2), (1, 1), (1, 1), 2),
    (2, 3, 2, 6, 10, (3, 3), (2, 1), (1, 1), (1, 1), 3),
]


def _inputs(geometry, seed):
    num, cin, cout, h, w, k, s, p, d, g = geometry
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num, cin, h, w, generator=gen, dtype=torch.float64)
    weight = torch.randn(cout, cin, *k, generator=gen, dtype=torch.float64)
    return gen, x, weight


@needs_kernel
@pytest.mark.parametrize('geometry', GEOMETRIES)
@pytest.mark.parametrize('rates', ['fractional', 'integer', 'zero', 'large'])
@pytest.mark.parametrize('block_bytes', [1, native_cpu.BLOCK_BYTES])
def test_native_equals_reference_float64(geometry, rates, block_bytes,
                                         monkeypatch):
    """Values and input/weight/rate/bias gradients to 1e-12. Tiny blocks
    (block_bytes=1: runs of 256 pixels that span samples, the row-block
    forward and backward) and whole-batch blocks (the whole-call forward and
    the channel-chunk backward) take different paths."""
    monkeypatch.setattr(native_cpu, 'BLOCK_BYTES', block_bytes)
    num, cin, cout, h, w, k, s, p, d, g = geometry
    gen, x, weight = _inputs(geometry,
                             zlib.crc32(repr((geometry, rates)).encode()))
    bias = torch.randn(cout, generator=gen, dtype=torch.float64)
    r = _rates(rates, num, g, gen)
    schedule = native_cpu._adc_cpu.backward_schedule(x, weight, r, s, p, d,
                                                     block_bytes)
    assert schedule == ('rows' if block_bytes == 1 else 'channels')
    schedule = native_cpu._adc_cpu.forward_schedule(x, weight, r, s, p, d,
                                                    block_bytes)
    assert schedule == ('rows' if block_bytes == 1 else 'whole')
    _assert_native_equals_reference(gen, x, weight, r, bias, s, p, d)


@needs_kernel
@pytest.mark.parametrize('out_channels, schedule', [(64, 'whole'),
                                                    (4, 'rows')])
def test_forward_schedule_follows_the_weight(out_channels, schedule,
                                             monkeypatch):
    """Columns too large for one block but within one block per thread:
    the whole call at once where the weight is larger than a block's
    columns (64 output channels: 18 KB against 9 KB), else row blocks; both
    equal the reference."""
    block_bytes = 6000  # the columns take 9 KB (float64): 1-2 blocks
    monkeypatch.setattr(native_cpu, 'BLOCK_BYTES', block_bytes)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        geometry = (2, 4, out_channels, 4, 4, (3, 3), (1, 1), (1, 1), (1, 1),
                    4)
        gen, x, weight = _inputs(geometry, 11)
        r = _rates('fractional', 2, 4, gen)
        assert native_cpu._adc_cpu.forward_schedule(x, weight, r, [1, 1],
                                                    [1, 1], [1, 1],
                                                    block_bytes) == schedule
        _assert_native_equals_reference(gen, x, weight, r, None, 1, 1, 1)
    finally:
        torch.set_num_threads(threads)


def _assert_native_equals_reference(gen, x, weight, r, bias, s, p, d):
    """Values to 1e-12 and the gradients of all inputs to 1e-11 (float64)
    for a random output gradient."""
    out_shape = F.conv2d(x, weight, None, s, p, d).shape
    grad_out = torch.randn(out_shape, generator=gen, dtype=torch.float64)
    wrt = ('x', 'w', 'r') + (() if bias is None else ('b', ))
    ref_out, ref = _run('reference', x, weight, r, bias, s, p, d, grad_out,
                        wrt)
    out, got = _run('native', x, weight, r, bias, s, p, d, grad_out, wrt)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for name in wrt:
        torch.testing.assert_close(
            got[name], ref[name], rtol=0, atol=1e-11, msg=name)


@needs_kernel
@pytest.mark.parametrize('wrt', [('x', ), ('w', ), ('r', ), ('x', 'r'),
                                 ('w', 'b')])
def test_partial_gradients(wrt):
    """Only the requested gradients are computed, and each equals the full
    computation's."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, 7, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(5, generator=gen, dtype=torch.float64)
    r = 0.3 + 2 * torch.rand(3, 2, generator=gen, dtype=torch.float64)
    grad_out = torch.randn(3, 5, 7, 6, generator=gen, dtype=torch.float64)
    _, full = _run('reference', x, weight, r, bias, 1, 1, 1, grad_out,
                   ('x', 'w', 'r', 'b'))
    _, got = _run('native', x, weight, r, bias, 1, 1, 1, grad_out, wrt)
    for name in wrt:
        torch.testing.assert_close(got[name], full[name], rtol=0, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize('onednn', [True, False])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('block_bytes', [1, native_cpu.BLOCK_BYTES])
def test_float32_close_to_reference(onednn, channels_last, block_bytes,
                                    monkeypatch):
    """float32: oneDNN and MKL GEMMs both within float32 accumulation error
    of the reference, in both forward schedules (row blocks, whole call);
    channels_last in, channels_last out."""
    if onednn and not native_cpu._adc_cpu.has_onednn():
        pytest.skip('this PyTorch has no mkldnn::_linear_pointwise')
    monkeypatch.setattr(native_cpu, 'BLOCK_BYTES', block_bytes)
    previous = native_cpu._adc_cpu.uses_onednn()
    native_cpu._adc_cpu.set_onednn(onednn)
    try:
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(4, 16, 12, 10, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        weight = torch.randn(8, 16, 3, 3, generator=gen) / 12
        r = 0.5 + 2 * torch.rand(4, 16, generator=gen)
        grad_out = torch.randn(4, 8, 12, 10, generator=gen)
        assert native_cpu._adc_cpu.forward_schedule(
            x, weight, r, [1, 1], [1, 1], [1, 1],
            block_bytes) == ('rows' if block_bytes == 1 else 'whole')
        wrt = ('x', 'w', 'r')
        ref_out, ref = _run('reference', x.double(), weight.double(),
                            r.double(), None, 1, 1, 1, grad_out.double(), wrt)
        out, got = _run('native', x, weight, r, None, 1, 1, 1, grad_out, wrt)
    finally:
        native_cpu._adc_cpu.set_onednn(previous)
    assert out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last
                             if channels_last else torch.contiguous_format)
    assert got['x'].is_contiguous(memory_format=torch.channels_last if
                                  channels_last else torch.contiguous_format)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-4, atol=1e-4)
    for name in wrt:
        scale = ref[name].abs().max()
        torch.testing.assert_close(
            got[name].double() / scale,
            ref[name] / scale,
            rtol=0,
            atol=1e-5,
            msg=name)


def _cpu_field(name: str) -> str:
    """The first CPU's ``name`` line of /proc/cpuinfo ('' elsewhere)."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return ''
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() == name:
            return value.strip()
    return ''


def _cpu_flags() -> set:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    return set(_cpu_field('flags').split())


@needs_kernel
def test_gemm_library_follows_the_cpu():
    """float32 GEMMs go to oneDNN exactly where the CPU has AVX-512 and is
    not Intel's (MKL runs AVX2 code on AMD's AVX-512 CPUs, AVX-512 code on
    Intel's), else to at::mm."""
    flags = _cpu_flags()
    if not flags:
        pytest.skip('no /proc/cpuinfo flags to compare with')
    intel = _cpu_field('vendor_id') == 'GenuineIntel'
    expected = ('avx512f' in flags and not intel
                and native_cpu._adc_cpu.has_onednn())
    assert native_cpu._adc_cpu.uses_onednn() == expected


@needs_kernel
def test_gemm_library_routes_and_restores():
    """gemm_library (the benchmarks' --gemm) routes float32 GEMMs within
    its block only, and refuses a name it does not know."""
    default = native_cpu.gemm_library_in_use()
    names = ['mm'] + (['onednn'] if native_cpu._adc_cpu.has_onednn() else [])
    for name in names:
        with native_cpu.gemm_library(name):
            assert native_cpu.gemm_library_in_use() == {
                'mm': 'at::mm',
                'onednn': 'oneDNN'
            }[name]
        assert native_cpu.gemm_library_in_use() == default
    with native_cpu.gemm_library('auto'):
        assert native_cpu.gemm_library_in_use() == default
    with pytest.raises(ValueError, match="one of .*got 'mkl'"):
        with native_cpu.gemm_library('mkl'):
            pass


@needs_kernel
def test_thread_count_does_not_change_results():
    """One thread (serial GEMMs) and two (samples split between threads) give
    the same float64 results."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 6, 9, 8, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 6, 3, 3, generator=gen, dtype=torch.float64)
    r = 0.5 + 2 * torch.rand(4, 3, generator=gen, dtype=torch.float64)
    grad_out = torch.randn(4, 3, 9, 8, generator=gen, dtype=torch.float64)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(
                _run('native', x, weight, r, None, 1, 1, 1, grad_out,
                     ('x', 'w', 'r')))
    finally:
        torch.set_num_threads(threads)
    (out1, g1), (out2, g2) = results
    torch.testing.assert_close(out1, out2, rtol=0, atol=1e-13)
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=0, atol=1e-12)


@needs_kernel
def test_auto_dispatch(ran):
    """auto: native for CPU float32/float64, reference under autocast;
    native: a clear error where it does not apply."""
    x = torch.randn(2, 4, 6, 6)
    weight = torch.randn(4, 4, 3, 3)
    r = torch.ones(2, 4)
    with adc_implementation('auto'):
        adaptive_dilated_conv2d(x, weight, r.requires_grad_(), None, 1, 1)
        assert ran == ['native']
        with torch.autocast('cpu', dtype=torch.bfloat16):
            adaptive_dilated_conv2d(x, weight, r, None, 1, 1)
        assert ran == ['native', 'reference']
    with adc_implementation('native'), torch.autocast(
            'cpu', dtype=torch.bfloat16):
        with pytest.raises(RuntimeError, match='does not run under autocast'):
            adaptive_dilated_conv2d(x, weight, r, None, 1, 1)


def test_without_kernel_falls_back(monkeypatch, ran):
    """An install without a compiler: auto runs the reference (still equal
    to F.conv2d at rate 1), native names the missing kernel."""
    monkeypatch.setattr(native_cpu, '_adc_cpu', None)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    r = torch.ones(2, 1, dtype=torch.float64, requires_grad=True)
    with adc_implementation('auto'):
        out = adaptive_dilated_conv2d(x, weight, r, None, 1, 1)
    assert ran == ['reference']
    torch.testing.assert_close(out, F.conv2d(x, weight, padding=1))
    with adc_implementation('native'):
        with pytest.raises(RuntimeError, match='without its native CPU'):
            adaptive_dilated_conv2d(x, weight, r, None, 1, 1)


def test_implementation_names_checked(monkeypatch):
    with pytest.raises(ValueError, match='implementation must be one of'):
        with adc_implementation('fast'):
            pass
    monkeypatch.setenv('MMADC_ADC_IMPL', 'fast')
    with pytest.raises(ValueError, match='MMADC_ADC_IMPL must be one of'):
        implementations.get_adc_implementation()


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['auto', '1'])
def test_build_without_compiler(tmp_path, mode):
    """With a failing compiler, the default build warns and succeeds (the
    install works, on the reference path); MMADC_WITH_CPU_KERNEL=1 fails."""
    fake_cxx = tmp_path / 'broken-c++'
    fake_cxx.write_text('#!/bin/sh\necho "no compiler here" >&2\nexit 1\n')
    fake_cxx.chmod(0o755)
    env = dict(
        os.environ,
        CXX=str(fake_cxx),
        CC=str(fake_cxx),
        MMADC_WITH_CPU_KERNEL=mode)
    proc = subprocess.run([
        sys.executable, 'setup.py', 'build_ext', '--build-lib',
        str(tmp_path / 'lib'), '--build-temp',
        str(tmp_path / 'tmp')
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True)
    built = list((tmp_path / 'lib').rglob('_adc_cpu*'))
    assert not built
    if mode == 'auto':
        assert proc.returncode == 0, proc.stderr
        assert 'installing without it' in proc.stderr
    else:
        assert proc.returncode != 0


@pytest.mark.slow
@needs_kernel
def test_portable_build_equals_reference(tmp_path, monkeypatch):
    """The installed kernel runs the AVX-512 or AVX2 clones of its loops on
    CPUs that have them; this builds the portable default alone
    (MMADC_ADC_PORTABLE) and compares it with the reference like
    test_native_equals_reference_float64."""
    from torch.utils.cpp_extension import load
    portable = load(
        'adc_cpu_portable',
        [str(ROOT / 'mmadc' / 'ops' / 'csrc' / 'adc_cpu.cpp')],
        extra_cflags=['-O3', '-fopenmp', '-DMMADC_ADC_PORTABLE'],
        extra_ldflags=['-fopenmp'],
        build_directory=str(tmp_path))
    monkeypatch.setattr(native_cpu, '_adc_cpu', portable)
    for index, geometry in enumerate(GEOMETRIES):
        num, cin, cout, h, w, k, s, p, d, g = geometry
        gen, x, weight = _inputs(geometry, index)
        r = _rates('fractional', num, g, gen)
        _assert_native_equals_reference(gen, x, weight, r, None, s, p, d)


@needs_kernel
def test_inference_mode_and_no_grad():
    """The kernel's worker threads run tensor ops: they must work in the
    caller's inference mode (mmengine/mmpose inference) and give the same
    values as with gradients enabled."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(4, 6, 9, 8, generator=gen)
    weight = torch.randn(5, 6, 3, 3, generator=gen)
    bias = torch.randn(5, generator=gen)
    r = 0.5 + 2 * torch.rand(4, 3, generator=gen)
    with adc_implementation('native'):
        expected = adaptive_dilated_conv2d(x, weight.requires_grad_(), r, bias,
                                           1, 1)
        with torch.no_grad():
            no_grad = adaptive_dilated_conv2d(x, weight, r, bias, 1, 1)
        with torch.inference_mode():
            inference = adaptive_dilated_conv2d(x, weight, r, bias, 1, 1)
    torch.testing.assert_close(no_grad, expected.detach(), rtol=0, atol=0)
    torch.testing.assert_close(inference, expected.detach(), rtol=0, atol=0)


@needs_kernel
@pytest.mark.parametrize('onednn', [True, False])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_gemm_nt_is_a_times_b_transposed(onednn, dtype):
    """The kernel's GEMM as benchmark_adc.py --gemm-floor calls it: ``a @
    b.T`` with either operand contiguous or a transposed view, against
    ``torch.mm`` in float64."""
    if onednn and not native_cpu._adc_cpu.has_onednn():
        pytest.skip('this PyTorch has no mkldnn::_linear_pointwise')
    gen = torch.Generator().manual_seed(7)
    a = torch.randn(6, 20, generator=gen, dtype=dtype)
    b = torch.randn(9, 20, generator=gen, dtype=dtype)
    expected = a.double() @ b.double().t()
    previous = native_cpu._adc_cpu.uses_onednn()
    native_cpu._adc_cpu.set_onednn(onednn)
    try:
        for left in (a, a.t().contiguous().t()):
            for right in (b, b.t().contiguous().t()):
                got = native_cpu.gemm_nt(left, right)
                assert got.shape == (6, 9) and got.dtype == dtype
                torch.testing.assert_close(
                    got.double(), expected, rtol=1e-5, atol=1e-5)
    finally:
        native_cpu._adc_cpu.set_onednn(previous)
