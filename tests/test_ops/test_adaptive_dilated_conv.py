# Copyright (c) mmadc contributors. All rights reserved.
"""Tests of the functional adaptive dilated convolution.

Every expected value comes from an independent oracle: ``F.conv2d`` (integer
rates), ``torchvision.ops.deform_conv2d`` (any rates, values and gradients),
``F.grid_sample`` (the bilinear reads) or finite differences (gradcheck).
"""
import itertools

import pytest
import torch
import torch.nn.functional as F
from deform_oracle import deform_offsets
from torchvision.ops import deform_conv2d

from mmadc.ops import adaptive_dilated_conv2d
from mmadc.ops.dilated_sampling import (adjoint_bags, gather, make_axis_plan,
                                        new_source_buffer, resample_bags)

# every test runs on both implementations (see tests/conftest.py)
pytestmark = pytest.mark.usefixtures('adc_impl')

DTYPE = torch.float64


def _rand(*shape, seed=None, dtype=DTYPE):
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(*shape, generator=gen, dtype=dtype)


def _rate_grad_from_offset_grad(grad_offset, kernel_size, dilation):
    """Chain rule: d out / d r_g = sum over taps and positions of
    d_h * i * grad_dy + d_w * j * grad_dx."""
    num = grad_offset.shape[0]
    kh, kw = kernel_size
    grad = grad_offset.sum((2, 3)).view(num, -1, kh, kw, 2)
    ii = torch.arange(kh, dtype=grad.dtype) - kh // 2
    jj = torch.arange(kw, dtype=grad.dtype) - kw // 2
    return (dilation[0] * (grad[..., 0] * ii[:, None]).sum(
        (2, 3)) + dilation[1] * (grad[..., 1] * jj[None, :]).sum((2, 3)))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _adc_and_grads(x, w, rates, b, grad_out, **kw):
    leaves = [t.detach().clone().requires_grad_() for t in (x, w, rates, b)]
    out = adaptive_dilated_conv2d(*leaves[:3], leaves[3], **kw)
    grads = torch.autograd.grad(out, leaves, grad_out)
    return out.detach(), grads


def _deform_and_grads(x, w, rates, b, grad_out, stride, padding, dilation):
    dilation = _pair(dilation)
    xx, ww, bb = (t.detach().clone().requires_grad_() for t in (x, w, b))
    out_size = grad_out.shape[2:]
    offset = deform_offsets(rates.detach(), w.shape[2:], out_size,
                            dilation).requires_grad_()
    out = deform_conv2d(
        xx, offset, ww, bb, stride=stride, padding=padding, dilation=dilation)
    gx, gw, gb, goff = torch.autograd.grad(out, (xx, ww, bb, offset), grad_out)
    grate = _rate_grad_from_offset_grad(goff, w.shape[2:], dilation)
    return out.detach(), (gx, gw, grate, gb)


# --------------------------------------------------------------------------
# integer rates == F.conv2d


@pytest.mark.parametrize(
    'rate,dilation,stride,k',
    list(itertools.product([1, 2, 3], [1, 2], [1, 2], [3, 5])))
def test_uniform_integer_rates_equal_dilated_conv(rate, dilation, stride, k):
    x = _rand(2, 4, 11, 9, seed=0)
    w = _rand(3, 4, k, k, seed=1)
    b = _rand(3, seed=2)
    rates = torch.full((2, 2), float(rate), dtype=DTYPE)
    out = adaptive_dilated_conv2d(
        x,
        w,
        rates,
        b,
        stride=stride,
        padding=dilation * (k // 2),
        dilation=dilation)
    ref = F.conv2d(
        x,
        w,
        b,
        stride=stride,
        padding=dilation * rate * (k // 2),
        dilation=dilation * rate)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('padding', [0, 3])
def test_integer_rate_with_non_same_padding(padding):
    # The kernel centre stays where the replaced conv has it, so padding P
    # with rate r equals conv2d(dilation=r, padding=P + (r - 1) * (k // 2)).
    x = _rand(1, 3, 10, 12, seed=3)
    w = _rand(2, 3, 3, 3, seed=4)
    rates = torch.full((1, 3), 2., dtype=DTYPE)
    out = adaptive_dilated_conv2d(x, w, rates, padding=padding)
    ref = F.conv2d(x, w, padding=padding + 1, dilation=2)
    assert out.shape == F.conv2d(x, w, padding=padding).shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('stride', [1, 2])
def test_zero_rate_equals_summed_1x1_conv(stride):
    # rate 0: every tap reads the kernel centre.
    x = _rand(2, 4, 7, 8, seed=5)
    w = _rand(3, 4, 3, 3, seed=6)
    rates = torch.zeros(2, 4, dtype=DTYPE)
    out = adaptive_dilated_conv2d(x, w, rates, stride=stride, padding=1)
    ref = F.conv2d(x, w.sum((2, 3), keepdim=True), stride=stride)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('dilation,stride', [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_per_group_integer_rates_equal_sum_of_group_convs(dilation, stride):
    num, channels, groups = 3, 6, 3
    x = _rand(num, channels, 12, 10, seed=7)
    w = _rand(4, channels, 3, 3, seed=8)
    b = _rand(4, seed=9)
    # different integer rates per group and per sample
    rates = torch.tensor([[1., 2., 3.], [3., 1., 2.], [2., 2., 1.]],
                         dtype=DTYPE)
    out = adaptive_dilated_conv2d(
        x, w, rates, b, stride=stride, padding=dilation, dilation=dilation)
    per = channels // groups
    for n in range(num):
        ref = b[None, :, None, None].clone()
        for gr in range(groups):
            chans = slice(gr * per, (gr + 1) * per)
            eff = dilation * int(rates[n, gr])
            ref = ref + F.conv2d(
                x[n:n + 1, chans],
                w[:, chans],
                stride=stride,
                padding=eff,
                dilation=eff)
        torch.testing.assert_close(out[n:n + 1], ref, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# any rates == deform_conv2d (values and all gradients)

DEFORM_CASES = [
    # (N, C, H, W, C_out, k, stride, padding, dilation, groups, rates)
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 1, 'frac'),
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 2, 'frac'),
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 4, 'frac'),
    (2, 4, 10, 7, 3, (3, 3), 2, 1, 1, 2, 'frac'),
    (2, 4, 9, 11, 3, (3, 3), 1, 2, 2, 4, 'frac'),
    (2, 4, 11, 8, 3, (3, 3), 2, 2, 2, 1, 'frac'),
    (1, 4, 8, 13, 2, (3, 3), 1, 0, 1, 2, 'frac'),  # padding != same
    (2, 4, 9, 8, 2, (3, 3), 2, 3, 2, 4, 'frac'),  # padding != same
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 4, 'large'),  # taps leave the image
    (2, 4, 9, 7, 3, (3, 3), 2, 2, 2, 2, 'large'),
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 4, 'integer'),
    (2, 4, 9, 7, 3, (3, 3), 2, 2, 2, 2, 'integer'),
    (2, 4, 9, 7, 3, (3, 3), 1, 1, 1, 2, 'zero'),
    (2, 4, 9, 7, 3, (3, 3), 2, 2, 2, 4, 'zero'),
    (2, 2, 12, 10, 2, (5, 5), 1, 2, 1, 2, 'frac'),
    (2, 2, 12, 10, 2, (3, 5), 2, (1, 4), (1, 2), 2, 'frac'),
    (2, 2, 12, 10, 2, (5, 3), 1, (4, 1), (2, 1), 1, 'large'),
]


def _rates(kind, num, groups, seed):
    gen = torch.Generator().manual_seed(seed)
    if kind == 'frac':
        return torch.rand(num, groups, generator=gen, dtype=DTYPE) * 2.5
    if kind == 'large':
        return 3 + torch.rand(num, groups, generator=gen, dtype=DTYPE) * 3
    if kind == 'integer':
        return torch.randint(0, 4, (num, groups), generator=gen).to(DTYPE)
    return torch.zeros(num, groups, dtype=DTYPE)


@pytest.mark.parametrize('seed,case', list(enumerate(DEFORM_CASES)))
def test_matches_deform_conv2d_values_and_gradients(seed, case):
    (num, channels, height, width, out_channels, k, stride, padding, dilation,
     groups, kind) = case
    seed *= 10
    x = _rand(num, channels, height, width, seed=seed)
    w = _rand(out_channels, channels, *k, seed=seed + 1)
    b = _rand(out_channels, seed=seed + 2)
    rates = _rates(kind, num, groups, seed + 3)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    out_ref = F.conv2d(x, w, b, **kwargs)
    grad_out = _rand(*out_ref.shape, seed=seed + 4)

    out, grads = _adc_and_grads(x, w, rates, b, grad_out, **kwargs)
    ref, ref_grads = _deform_and_grads(x, w, rates, b, grad_out, **kwargs)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    for name, got, expected in zip(('input', 'weight', 'rates', 'bias'), grads,
                                   ref_grads):
        if name == 'rates' and kind in ('integer', 'zero'):
            # at kinks ADC takes the derivative as rates increase, where
            # deform_conv2d's floor convention takes the right derivative
            # of every tap: test_rate_gradient_at_kinks checks these
            continue
        torch.testing.assert_close(
            got, expected, rtol=0, atol=1e-10, msg=f'grad of {name}')


KINK_CASES = [  # (stride, padding, dilation, groups)
    (1, 1, 1, 4),
    (2, 2, 2, 2),
    (1, 2, 2, 1),
    (2, 1, 1, 4),
]


@pytest.mark.parametrize('rate', [0.0, 1.0, 2.0])
@pytest.mark.parametrize('stride,padding,dilation,groups', KINK_CASES)
def test_rate_gradient_at_kinks(rate, stride, padding, dilation, groups):
    """At integer rates (every rate is 1 at initialisation, and 0 bounds
    them below) the rate gradient is the one-sided derivative as the rate
    increases: a forward finite difference in float64. The backward
    difference differs there (so the point is a kink), and the other
    gradients keep matching deform_conv2d."""
    gen = torch.Generator().manual_seed(int(rate) * 10 + stride + groups)
    x = torch.randn(2, 4, 9, 8, generator=gen, dtype=DTYPE)
    w = torch.randn(3, 4, 3, 3, generator=gen, dtype=DTYPE)
    grad_out = None
    rates = torch.full((2, groups), rate, dtype=DTYPE)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)

    def objective(r):
        nonlocal grad_out
        out = adaptive_dilated_conv2d(x, w, r, None, **kwargs)
        if grad_out is None:
            grad_out = torch.randn(out.shape, generator=gen, dtype=DTYPE)
        return (out * grad_out).sum()

    leaf = rates.clone().requires_grad_()
    analytic, = torch.autograd.grad(objective(leaf), leaf)
    h = 1e-7
    base = objective(rates)
    forward = torch.zeros_like(rates)
    backward = torch.zeros_like(rates)
    for n in range(2):
        for g in range(groups):
            step = torch.zeros_like(rates)
            step[n, g] = h
            forward[n, g] = (objective(rates + step) - base) / h
            if rate > 0:
                backward[n, g] = (base - objective(rates - step)) / h
    torch.testing.assert_close(analytic, forward, rtol=1e-5, atol=1e-5)
    if rate > 0:
        assert (forward - backward).abs().max() > 1e-2


@pytest.mark.parametrize('chunk_bytes', [1, 4000])
def test_chunked_batch_matches_deform_conv2d(monkeypatch, chunk_bytes):
    """Samples processed in chunks (1 and 2 per chunk, uneven last chunk)."""
    from mmadc.ops import reference as module
    monkeypatch.setitem(module.CHUNK_BYTES, 'cpu', chunk_bytes)
    x = _rand(5, 2, 7, 6, seed=81)
    w = _rand(3, 2, 3, 3, seed=82)
    b = _rand(3, seed=83)
    rates = torch.rand(5, 2, dtype=DTYPE) * 3
    kwargs = dict(stride=2, padding=1, dilation=1)
    grad_out = _rand(5, 3, 4, 3, seed=84)
    out, grads = _adc_and_grads(x, w, rates, b, grad_out, **kwargs)
    ref, ref_grads = _deform_and_grads(x, w, rates, b, grad_out, **kwargs)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    for got, expected in zip(grads, ref_grads):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_scratch_buffers_never_alias_results():
    """Outputs and gradients stay intact when later calls (other shapes and
    dtypes) reuse the per-thread scratch buffers."""
    from mmadc.ops.reference import release_workspace
    x = _rand(2, 3, 6, 5, seed=91)
    w = _rand(2, 3, 3, 3, seed=92)
    rates = torch.rand(2, 3, dtype=DTYPE) * 2
    grad_out = _rand(2, 2, 6, 5, seed=93)
    out, grads = _adc_and_grads(
        x, w, rates, w.new_zeros(2), grad_out, padding=1)
    kept = [out.clone()] + [g.clone() for g in grads]
    # larger shapes, then float32, then a fresh workspace
    _adc_and_grads(
        _rand(3, 4, 11, 9, seed=94),
        _rand(5, 4, 3, 3, seed=95),
        torch.rand(3, 2, dtype=DTYPE),
        w.new_zeros(5),
        _rand(3, 5, 11, 9, seed=96),
        padding=1)
    adaptive_dilated_conv2d(x.float(), w.float(), rates.float(), padding=1)
    release_workspace()
    for got, expected in zip([out, *grads], kept):
        assert torch.equal(got, expected)
    again, _ = _adc_and_grads(x, w, rates, w.new_zeros(2), grad_out, padding=1)
    assert torch.equal(again, out)


def test_float32_matches_deform_conv2d():
    x = _rand(2, 8, 16, 12, seed=11, dtype=torch.float32)
    w = _rand(4, 8, 3, 3, seed=12, dtype=torch.float32)
    rates = torch.rand(2, 8) * 3
    out = adaptive_dilated_conv2d(x, w, rates, padding=2, dilation=2)
    offset = deform_offsets(rates, (3, 3), out.shape[2:], (2, 2))
    ref = deform_conv2d(x, offset, w, padding=2, dilation=2)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# gradcheck (finite differences)

GRADCHECK_GRID = list(
    itertools.product([1, 2, 4], [1, 2], [1, 2],
                      ['frac', 'large', 'integer', 'zero']))


@pytest.mark.parametrize('groups,stride,dilation,kind', GRADCHECK_GRID)
def test_gradcheck(groups, stride, dilation, kind):
    gen = torch.Generator().manual_seed(groups * 100 + stride * 10 + dilation)
    x = torch.randn(2, 4, 6, 5, generator=gen, dtype=DTYPE)
    w = torch.randn(2, 4, 3, 3, generator=gen, dtype=DTYPE)
    b = torch.randn(2, generator=gen, dtype=DTYPE)
    if kind in ('frac', 'large'):
        # Effective shifts d * r * i (i = +-1) kept 0.2 away from integers,
        # so that the finite differences do not straddle a kink; 'large'
        # moves every non-centre tap out of the 6 x 5 image.
        whole = (
            torch.randint(0, 2, (2, groups), generator=gen)
            if kind == 'frac' else torch.full((2, groups), 6))
        rho = whole + 0.2 + 0.6 * torch.rand(
            2, groups, generator=gen, dtype=DTYPE)
        rates = rho / dilation
    else:
        rates = _rates(kind, 2, groups, 0)
    # At integer rates (and zero) the bilinear interpolant has a kink: the
    # one-sided derivatives w.r.t. the rate differ, so central finite
    # differences of the rate gradient are ill-defined there; the rate
    # gradient at those points is checked against one-sided differences in
    # test_rate_gradient_at_kinks instead; here only the other gradients.
    rates_need_grad = kind in ('frac', 'large')
    inputs = (x.requires_grad_(), w.requires_grad_(),
              rates.requires_grad_(rates_need_grad), b.requires_grad_())

    def fn(x, w, rates, b):
        return adaptive_dilated_conv2d(
            x, w, rates, b, stride=stride, padding=dilation, dilation=dilation)

    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize('stride', [1, 2])
def test_gradcheck_full_jacobian(stride):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(1, 2, 5, 4, generator=gen, dtype=DTYPE)
    w = torch.randn(2, 2, 3, 3, generator=gen, dtype=DTYPE)
    b = torch.randn(2, generator=gen, dtype=DTYPE)
    rates = torch.tensor([[0.63, 1.71]], dtype=DTYPE)
    inputs = tuple(t.requires_grad_() for t in (x, w, rates, b))

    def fn(x, w, rates, b):
        return adaptive_dilated_conv2d(
            x, w, rates, b, stride=stride, padding=2, dilation=2)

    assert torch.autograd.gradcheck(fn, inputs)


def test_only_needed_gradients():
    x = _rand(1, 2, 5, 5, seed=1).requires_grad_()
    w = _rand(2, 2, 3, 3, seed=2)
    rates = torch.full((1, 2), 1.5, dtype=DTYPE)
    out = adaptive_dilated_conv2d(x, w, rates, padding=1)
    out.sum().backward()
    assert x.grad is not None and w.grad is None and rates.grad is None


# --------------------------------------------------------------------------
# the facts the implementation relies on, checked on the sampling helpers


def _resample(src, plan, num_sub, taps_inner=False):
    planes = plan.floor.shape[0]
    return gather(src, resample_bags(plan, num_sub, planes, taps_inner))


def _adjoint(grad, plan, num_sub):
    planes = plan.floor.shape[0]
    value = gather(grad, adjoint_bags(plan, num_sub, planes, rho_term=False))
    both = gather(grad, adjoint_bags(plan, num_sub, planes, rho_term=True))
    both = both.view(-1, 2, grad.shape[1])
    # the interleaved value bags are the plain value bags
    torch.testing.assert_close(both[:, 0], value, rtol=0, atol=0)
    return value, both[:, 1].contiguous()


@pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 2), (2, 1)])
def test_separable_reads_equal_bilinear_grid_sample(stride, dilation):
    """W pass then H pass == 2-D bilinear read (grid_sample, zero padding)."""
    planes, height, width, k, padding = 3, 7, 9, 3, 1
    x = _rand(planes, height, width, seed=21)
    rho = torch.tensor([0.4, 1.7, 3.6], dtype=DTYPE)
    plan_h, plan_w = (
        make_axis_plan(rho, k, n, stride, padding, dilation, DTYPE)
        for n in (height, width))
    # W pass on rows that run along W: (plane, w) rows of length H
    xt, data = new_source_buffer(planes * width, height, DTYPE, x.device)
    data.copy_(x.transpose(1, 2).reshape(-1, height))
    maps = _resample(xt, plan_w, 1).view(planes, k, plan_w.out_len, height)
    src, data = new_source_buffer(planes * k * height, plan_w.out_len, DTYPE,
                                  x.device)
    data.copy_(maps.transpose(2, 3).reshape(-1, plan_w.out_len))
    cols = _resample(src, plan_h, k).view(planes, k, k, plan_h.out_len,
                                          plan_w.out_len)

    half = k // 2
    for p, i, j in itertools.product(range(planes), range(k), range(k)):
        ys = (
            torch.arange(plan_h.out_len, dtype=DTYPE) * stride - padding +
            dilation * half + dilation * rho[p] * (i - half))
        xs = (
            torch.arange(plan_w.out_len, dtype=DTYPE) * stride - padding +
            dilation * half + dilation * rho[p] * (j - half))
        grid = torch.stack([
            (2 * xs / (width - 1) - 1)[None, :].expand(len(ys), -1),
            (2 * ys / (height - 1) - 1)[:, None].expand(-1, len(xs)),
        ],
                           dim=-1)[None]
        ref = F.grid_sample(
            x[p][None, None],
            grid,
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True)[0, 0]
        torch.testing.assert_close(cols[p, i, j], ref, rtol=0, atol=1e-12)


def test_taps_inner_order_is_a_permutation():
    rho = torch.tensor([0.3, 2.6], dtype=DTYPE)
    plan = make_axis_plan(rho, 3, 8, 2, 1, 1, DTYPE)
    src, data = new_source_buffer(2 * 2 * 8, 5, DTYPE, torch.device('cpu'))
    data.copy_(_rand(32, 5, seed=25))
    first = _resample(src, plan, 2).view(2, 3, 2, plan.out_len, 5)
    inner = _resample(
        src, plan, 2, taps_inner=True).view(2, 2, plan.out_len, 3, 5)
    torch.testing.assert_close(inner, first.permute(0, 2, 3, 1, 4))


@pytest.mark.parametrize('kernel_size,dilation', [(3, 1), (5, 3), (7, 4)])
def test_float32_plan_is_exact_without_float64(kernel_size, dilation):
    """float32 rates get the plan of their exact products (float64 holds
    them exactly): the same base rows, kinks included, and the weights
    rounded once. Rates n/m put products within rounding of an integer
    (3 * fl(4/3) rounds to 4 in float32 but lies below it)."""
    gen = torch.Generator().manual_seed(kernel_size)
    rates = torch.cat([
        6 * torch.rand(20000, generator=gen),
        torch.randint(0, 40, (5000, ), generator=gen).float() /
        torch.randint(1, 13, (5000, ), generator=gen).float(),
        torch.tensor([0., 1., 2., 3., 4 / 3, 1 / 9, -2 / 3])
    ])
    got = make_axis_plan(rates, kernel_size, 20, 1, 1, dilation, torch.float32)
    half = kernel_size // 2
    taps = torch.arange(-half, half + 1)
    shift = rates.double()[:, None] * (dilation * taps).double()
    floor = torch.where(taps < 0, torch.ceil(shift) - 1, torch.floor(shift))
    assert torch.equal(got.floor, floor.long())
    assert torch.equal(got.frac, (shift - floor).float())


@pytest.mark.parametrize('stride', [1, 2, 3])
def test_adjoint_reads_are_the_transpose(stride):
    """<resample(a), g> == <a, adjoint(g)> (no scatter needed)."""
    planes, num_sub, in_len, row = 4, 2, 11, 5
    rho = torch.tensor([0., 0.8, 1.0, 2.3], dtype=DTYPE)
    plan = make_axis_plan(rho, 3, in_len, stride, 1, 1, DTYPE)
    a, a_data = new_source_buffer(planes * num_sub * in_len, row, DTYPE,
                                  torch.device('cpu'))
    a_data.copy_(_rand(planes * num_sub * in_len, row, seed=31))
    out = _resample(a, plan, num_sub)
    g, g_data = new_source_buffer(out.shape[0], row, DTYPE,
                                  torch.device('cpu'))
    g_data.copy_(_rand(*out.shape, seed=32))
    value, _ = _adjoint(g, plan, num_sub)
    lhs = (out * g_data).sum()
    rhs = (a_data * value).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_adjoint_rho_term_is_the_interpolant_derivative():
    """<src, rho_term(g)> == d/d rho <resample(src; rho), g> (central
    differences away from kinks)."""
    planes, in_len, row, eps = 3, 9, 4, 1e-6
    rho = torch.tensor([0.35, 1.45, 2.7], dtype=DTYPE)
    src, src_data = new_source_buffer(planes * in_len, row, DTYPE,
                                      torch.device('cpu'))
    src_data.copy_(_rand(planes * in_len, row, seed=41))
    plan = make_axis_plan(rho, 3, in_len, 1, 1, 2, DTYPE)
    g, g_data = new_source_buffer(planes * 3 * plan.out_len, row, DTYPE,
                                  torch.device('cpu'))
    g_data.copy_(_rand(planes * 3 * plan.out_len, row, seed=42))
    _, rho_term = _adjoint(g, plan, 1)
    # the plan's shift is dilation * rho * i, so d/d rho carries dilation 2
    analytic = 2 * (rho_term.view(planes, -1) *
                    src_data.view(planes, -1)).sum(1)

    def objective(r):
        p = make_axis_plan(r, 3, in_len, 1, 1, 2, DTYPE)
        return (_resample(src, p, 1) * g_data).view(planes, -1).sum(1)

    numeric = (objective(rho + eps) - objective(rho - eps)) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# layouts, dtypes, edge cases


def test_channels_last_input():
    x = _rand(2, 4, 8, 6, seed=51)
    w = _rand(3, 4, 3, 3, seed=52)
    b = _rand(3, seed=53)
    rates = torch.rand(2, 4, dtype=DTYPE) * 2
    grad_out = _rand(2, 3, 8, 6, seed=54)
    out, grads = _adc_and_grads(x, w, rates, b, grad_out, padding=1)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out_cl, grads_cl = _adc_and_grads(x_cl, w, rates, b, grad_out, padding=1)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, out, rtol=0, atol=1e-12)
    for got, expected in zip(grads_cl, grads):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_empty_batch():
    x = torch.zeros(0, 4, 6, 6, requires_grad=True)
    w = torch.randn(3, 4, 3, 3, requires_grad=True)
    rates = torch.ones(0, 2, requires_grad=True)
    out = adaptive_dilated_conv2d(x, w, rates, stride=2, padding=1)
    assert out.shape == (0, 3, 3, 3)
    out.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert rates.grad.shape == (0, 2)


def test_pair_arguments_and_rectangular_kernel():
    x = _rand(1, 2, 9, 12, seed=61)
    w = _rand(2, 2, 3, 5, seed=62)
    rates = torch.full((1, 2), 2., dtype=DTYPE)
    out = adaptive_dilated_conv2d(
        x, w, rates, stride=(1, 2), padding=(1, 2), dilation=(1, 1))
    ref = F.conv2d(x, w, stride=(1, 2), padding=(2, 4), dilation=2)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def _autocast_supported(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except (RuntimeError, ValueError):
        return False
    return True


# Tolerances under autocast, relative to the largest output magnitude: the
# inputs and weights are rounded to the autocast dtype (8 mantissa bits for
# bfloat16, 11 for float16) and the GEMM accumulates in float32.
AUTOCAST_TOL = {torch.bfloat16: 2e-2, torch.float16: 4e-3}


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_close_to_float32(dtype):
    if not _autocast_supported(dtype):
        pytest.skip(f'CPU autocast does not support {dtype}')
    x = _rand(2, 16, 12, 10, seed=71, dtype=torch.float32)
    w = _rand(8, 16, 3, 3, seed=72, dtype=torch.float32) * 0.1
    b = _rand(8, seed=73, dtype=torch.float32)
    rates = (torch.rand(2, 16) * 2.5).requires_grad_()
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref = adaptive_dilated_conv2d(x, w, rates.detach(), b, padding=1)
    with torch.autocast('cpu', dtype=dtype):
        out = adaptive_dilated_conv2d(
            leaves[0], leaves[1], rates, leaves[2], padding=1)
    assert out.dtype == dtype
    tol = AUTOCAST_TOL[dtype] * ref.abs().max().item()
    assert (out.float() - ref).abs().max().item() <= tol
    out.float().sum().backward()
    for leaf in (*leaves, rates):
        assert leaf.grad is not None and leaf.grad.dtype == torch.float32
        assert torch.isfinite(leaf.grad).all()
    # compare the input gradient with float32
    x32 = x.clone().requires_grad_()
    adaptive_dilated_conv2d(
        x32, w, rates.detach(), b, padding=1).sum().backward()
    tol = AUTOCAST_TOL[dtype] * x32.grad.abs().max().item()
    assert (leaves[0].grad - x32.grad).abs().max().item() <= tol


# --------------------------------------------------------------------------
# errors


def _args(**overrides):
    args = dict(
        input=torch.randn(2, 4, 6, 6),
        weight=torch.randn(3, 4, 3, 3),
        rates=torch.ones(2, 2),
        bias=None,
        stride=1,
        padding=1,
        dilation=1)
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    'overrides,error,match',
    [
        (dict(rates=torch.ones(2, 3)), ValueError, 'rates'),  # 3 ∤ 4
        (dict(rates=torch.ones(2)), ValueError, 'rates'),
        (dict(rates=torch.ones(3, 2)), ValueError, 'rates'),
        (dict(rates=torch.ones(2, 0)), ValueError, 'rates'),
        # rate values are not checked (no host sync): see
        # test_adc_operator.py for negative and non-finite rates
        (dict(rates=[[1., 1.], [1., 1.]]), TypeError, 'rates'),
        (dict(input=torch.randn(4, 6, 6)), ValueError, 'input must be a 4-D'),
        (dict(input=torch.randn(2, 5, 6, 6)), ValueError, 'weight expects'),
        (dict(weight=torch.randn(3, 4, 2, 2)), ValueError, 'weight'),
        (dict(weight=torch.randn(3, 4, 3, 3, dtype=torch.float64)), TypeError,
         'weight dtype'),
        (dict(bias=torch.randn(4)), ValueError, 'bias'),
        (dict(stride=0), ValueError, 'stride'),
        (dict(stride=1.5), TypeError, 'stride'),
        (dict(padding=-1), ValueError, 'padding'),
        (dict(dilation=(1, 2, 3)), ValueError, 'dilation'),
        (dict(input=torch.randn(2, 4, 1, 1),
              padding=0), ValueError, 'too small'),
    ])
def test_bad_arguments_raise(overrides, error, match):
    with pytest.raises(error, match=match):
        adaptive_dilated_conv2d(**_args(**overrides))
