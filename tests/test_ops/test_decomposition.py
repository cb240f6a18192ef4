# Copyright (c) mmadc contributors. All rights reserved.
"""The standard-operator form of ADC that ONNX exports
(:mod:`mmadc.ops.decomposition`) against independent oracles: the op's
kernels, torchvision's ``deform_conv2d``, ``F.conv2d`` at integer rates, and
onnxruntime running the export.
"""
import pytest
import torch
import torch.nn.functional as F
from deform_oracle import deform_conv_of_rates

from mmadc.ops import AdaptiveDilatedConv2d, adaptive_dilated_conv2d
from mmadc.ops.decomposition import (DECOMPOSITIONS,
                                     adaptive_dilated_conv2d_decomposed,
                                     rows_read_first)

pytestmark = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='the registered op (and its export) needs torch >= 2.4')

# (N, C_in, C_out, H, W, (kh, kw), stride, padding, dilation, groups)
CASES = [
    (2, 8, 5, 9, 11, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (2, 8, 4, 10, 7, (3, 3), (2, 2), (2, 2), (2, 2), 2),
    (1, 8, 3, 7, 9, (3, 3), (1, 2), (1, 0), (2, 1), 4),
    (3, 6, 2, 5, 8, (3, 3), (2, 1), (1, 1), (1, 1), 6),  # g = C
    (2, 4, 3, 6, 5, (5, 3), (1, 1), (0, 1), (1, 2), 2),
    (1, 4, 4, 1, 6, (1, 3), (1, 1), (0, 1), (1, 1), 4),  # a single row
]

#: What the export may contain: standard ONNX operators only.
STANDARD_OPS = {
    'Abs', 'Add', 'BatchNormalization', 'Cast', 'Concat', 'Constant', 'Conv',
    'Div', 'Expand', 'Gemm', 'MatMul', 'Mul', 'ReduceMean', 'Relu', 'Reshape',
    'Shape', 'Slice', 'Sqrt', 'Squeeze', 'Sub', 'Transpose', 'Unsqueeze'
}


def _case(case, dtype, rates, seed=0):
    num, cin, cout, h, w, k, s, p, d, g = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num, cin, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(cout, cin, *k, generator=gen, dtype=dtype)
    bias = torch.randn(cout, generator=gen, dtype=dtype)
    low, high = rates
    r = torch.rand(num, g, generator=gen, dtype=dtype) * (high - low) + low
    return x, weight, r, bias, list(s), list(p), list(d)


def _assert_close(out, expected, tol):
    scale = expected.abs().max().item() or 1.0
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize(
    'rates', [(0.5, 3.0), (0.05, 0.95), (4.0, 9.5), (-2.5, -0.5)],
    ids=['fractional', 'below-one', 'outside-image', 'negative'])
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5),
                                       (torch.float64, 1e-12)])
@pytest.mark.parametrize(
    'rows_first', [True, False], ids=['rows-first', 'columns-first'])
def test_decomposition_equals_the_op(case, rates, dtype, tol, rows_first):
    """Values of the op's kernels for fractional rates, including rates
    whose taps leave the image (zero padding) and negative ones, with
    either axis interpolated first."""
    x, weight, r, bias, s, p, d = _case(case, dtype, rates)
    expected = adaptive_dilated_conv2d(x, weight, r, bias, s, p, d)
    out = adaptive_dilated_conv2d_decomposed(
        x, weight, r, bias, s, p, d, dtype, rows_first=rows_first)
    assert out.shape == expected.shape and out.dtype == dtype
    _assert_close(out, expected, tol)


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize(
    'rates', [(0.5, 3.0), (0.05, 0.95), (4.0, 9.5), (-2.5, -0.5)],
    ids=['fractional', 'below-one', 'outside-image', 'negative'])
@pytest.mark.parametrize(
    'rows_first', [True, False], ids=['rows-first', 'columns-first'])
def test_decomposition_equals_deform_conv2d(case, rates, rows_first):
    """Values of torchvision's deform_conv2d with the offsets of the rates,
    an oracle that shares no code with the op's kernels (float64)."""
    x, weight, r, bias, s, p, d = _case(case, torch.float64, rates)
    out = adaptive_dilated_conv2d_decomposed(
        x, weight, r, bias, s, p, d, torch.float64, rows_first=rows_first)
    _assert_close(out, deform_conv_of_rates(x, weight, r, bias, s, p, d),
                  1e-12)


@pytest.mark.parametrize('height,width,rows_first', [(64, 48, True),
                                                     (64, 128, False),
                                                     (97, 97, True)])
def test_the_longer_axis_is_read_first(monkeypatch, height, width, rows_first):
    """The second pass runs once per tap of the first, so the longer axis
    is read first: rows for pose maps (64x48), columns for segmentation
    maps (64x128), rows on a tie; the decomposition takes that order when
    none is given."""
    from mmadc.ops import decomposition
    rates = torch.full((1, 1, 1, 1, 1), 1.5)
    like = dict(dtype=torch.float32, device='cpu')
    rows = decomposition._axis_reads(rates, 3, 1, 1, 1, height, height, like,
                                     False)
    cols = decomposition._axis_reads(rates, 3, 1, 1, 1, width, width, like,
                                     True)
    assert rows_read_first(rows, cols) is rows_first
    taken = []
    for name in ('_row_first_blocks', '_column_first_blocks'):
        original = getattr(decomposition, name)
        monkeypatch.setattr(
            decomposition,
            name,
            lambda *args, n=name, f=original: taken.append(n) or f(*args))
    x, weight = torch.randn(1, 2, height, width), torch.randn(3, 2, 3, 3)
    two_rates = torch.tensor([[1.5, 0.7]])
    adaptive_dilated_conv2d_decomposed(x, weight, two_rates, None, [1, 1],
                                       [1, 1], [1, 1], torch.float32)
    assert taken == [
        '_row_first_blocks' if rows_first else '_column_first_blocks'
    ]


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('rate', [1, 2])
def test_integer_rates_equal_conv2d(case, rate):
    """At an integer rate ``r`` ADC is ``F.conv2d`` with dilation ``d r``
    and padding ``d r (k // 2)`` where ``padding = d (k // 2)``."""
    x, weight, r, bias, s, _, d = _case(case, torch.float64, (0, 1))
    k = weight.shape[2:]
    padding = [d[0] * (k[0] // 2), d[1] * (k[1] // 2)]
    r = torch.full_like(r, rate)
    out = adaptive_dilated_conv2d_decomposed(x, weight, r, bias, s, padding, d,
                                             torch.float64)
    expected = F.conv2d(
        x,
        weight,
        bias,
        s,
        padding=[rate * q for q in padding],
        dilation=[rate * q for q in d])
    _assert_close(out, expected, 1e-12)


def test_the_decomposition_is_registered_for_the_op():
    op = torch.ops.mmadc.adaptive_dilated_conv2d.default
    assert DECOMPOSITIONS[op] is adaptive_dilated_conv2d_decomposed


@pytest.mark.parametrize('groups,stride,dilation', [(1, 1, 1), (2, 2, 1),
                                                    (4, 1, 2), (8, 2, 2)])
def test_onnx_export_is_standard_and_matches_pytorch(tmp_path, groups, stride,
                                                     dilation):
    """An ADC layer with fractional rates exported with a dynamic batch:
    standard ONNX operators only (no custom domain), and onnxruntime at
    another batch size equals the layer in PyTorch."""
    onnx = pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    layer = AdaptiveDilatedConv2d(
        8,
        6,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        dilation_groups=groups).eval()
    with torch.no_grad():
        layer.rate_regressor.fc2.weight.normal_(0, 0.05)
        layer.rate_regressor.fc2.bias.uniform_(0.5, 3.0)
    example = torch.randn(2, 8, 13, 10)
    batch = torch.export.Dim('batch', min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(
            layer, (example, ), dynamic_shapes=({
                0: batch
            }, ))
    program = program.run_decompositions(DECOMPOSITIONS)
    path = str(tmp_path / 'adc.onnx')
    torch.onnx.export(
        program, (example, ),
        path,
        input_names=['input'],
        output_names=['output'],
        dynamo=True,
        verbose=False)
    model = onnx.load(path)
    assert {o.domain for o in model.opset_import} <= {'', 'ai.onnx'}
    op_types = {node.op_type for node in model.graph.node}
    assert {node.domain for node in model.graph.node} <= {'', 'ai.onnx'}
    assert op_types <= STANDARD_OPS, op_types - STANDARD_OPS
    assert 'MatMul' in op_types and 'GridSample' not in op_types
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    x = torch.randn(3, 8, 13, 10)
    got = session.run(None, {'input': x.numpy()})[0]
    with torch.no_grad():
        expected = layer(x)
    rates = layer.last_rates
    assert ((rates - rates.round()).abs() > 0.01).all()  # fractional
    _assert_close(torch.from_numpy(got), expected, 1e-5)
