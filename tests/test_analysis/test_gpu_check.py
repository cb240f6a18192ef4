# Copyright (c) mmadc contributors. All rights reserved.
"""``tools/analysis/gpu_check.py``: the code paths that need no GPU.

The correctness check and the layer timing take a device, so they run here
on CPU (implementations ``reference`` and ``native``); the deform_conv2d
offsets the timing uses are checked against ADC; the JSON report keeps a
user's file; without CUDA the command fails with one line.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from conftest import REPO_ROOT

from mmadc.ops import adc_implementation
from mmadc.ops.native_cpu import native_cpu_available

CPU = torch.device('cpu')


@pytest.fixture(scope='module')
def gpu_check():
    path = osp.join(REPO_ROOT, 'tools', 'analysis', 'gpu_check.py')
    spec = importlib.util.spec_from_file_location('gpu_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_are_the_backbones_3x3_convs(gpu_check):
    """256x192 input: ResNet-50's bottleneck 3x3 convs (stride 4 stem, the
    first block of stages 2-4 strided) and HRNet-W32's four branches."""
    shapes = {s.name: s for s in gpu_check.benchmark_adc.SHAPES}
    for stage, channels in enumerate((64, 128, 256, 512)):
        size = (64 >> stage, 48 >> stage)
        s = shapes[f'resnet50-stage{stage + 1}']
        assert (s.channels, (s.height, s.width), s.stride) == (channels, size,
                                                               1)
        if stage:
            s = shapes[f'resnet50-stage{stage + 1}-s2']
            assert (s.channels, s.height, s.width,
                    s.stride) == (channels, 2 * size[0], 2 * size[1], 2)
        s = shapes[f'hrnet-w32-branch{stage + 1}']
        assert (s.channels, (s.height, s.width), s.stride) == (32 << stage,
                                                               size, 1)


@pytest.mark.parametrize('groups', [1, 4])
def test_deform_offsets_reproduce_adc(gpu_check, groups):
    """The timing's deform_conv2d computes ADC: values and input, weight and
    rate gradients (through the offsets) agree in float64."""
    args = gpu_check.argparse.Namespace(
        device='cpu', dtype='float64', seed=0, groups=groups, batch=2)
    shape = gpu_check.benchmark_adc.Shape('small', 8, 9, 7, 2)
    case = gpu_check.benchmark_adc.Case(shape, args)
    results = []
    for op in (case.adc, case.deform):
        x, w, r = case.leaves(with_rates=True)
        with adc_implementation('reference'):
            out = op(x, w, r)
        results.append(
            [out, *torch.autograd.grad(out, [x, w, r], case.grad_out)])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # and the offsets are not trivially zero: rates differ from 1
    assert (case.rates - 1).abs().min() > 0


def test_correctness_check_on_cpu(gpu_check):
    """The check passes for the CPU implementations (float32 and bf16
    autocast where they apply) and reports the others with their reason."""
    impls = ('reference', 'native') if native_cpu_available() else \
        ('reference', )
    report = gpu_check.correctness(CPU, impls)
    checked = {
        f'{c}/{d}'
        for c in gpu_check.CORRECTNESS_CASES
        for d in gpu_check.TOLERANCE
    }
    assert set(report['reference']) == checked
    if 'native' in impls:  # float32 only: no autocast in the native kernel
        assert report['native']['*/bfloat16']['skipped'].endswith(
            'does not run under autocast; use "auto" or "reference"')
        assert len(report['native']) == len(gpu_check.CORRECTNESS_CASES) + 1
    for impl in impls:
        for name, result in report[impl].items():
            if 'skipped' in result:
                continue
            assert result['passed'], (impl, name, result)
            assert set(result['vs_reference']) == {'out', 'x', 'w', 'r', 'b'}
            assert set(result['vs_conv2d_rate1']) == {'out', 'x', 'w', 'b'}
    assert gpu_check.applies(report, 'reference')


def test_check_detects_a_wrong_implementation(gpu_check, monkeypatch):
    """A kernel off by a fraction of a pixel fails the check."""
    from mmadc.ops import reference
    forward = reference.forward

    def shifted(input, weight, rates, *args):
        if input.dtype == torch.float64:  # the oracle stays right
            return forward(input, weight, rates, *args)
        return forward(input, weight, rates * 1.01, *args)

    monkeypatch.setattr(reference, 'forward', shifted)
    result = gpu_check.check_case('g1', 'reference', 'float32', CPU)
    assert not result['passed']
    assert result['vs_reference']['out'] > 1e-3


def test_layer_timing_report_on_cpu(gpu_check):
    shape = gpu_check.benchmark_adc.Shape('tiny', 8, 6, 5, 1)
    entry = gpu_check.time_layer(
        shape,
        'float32',
        True, ['reference'],
        CPU,
        batch=1,
        repeat=2,
        warmup=0)
    assert set(entry['ms']) == {'conv', 'deform', 'adc-reference'}
    assert set(entry['over_conv']) == {'deform', 'adc-reference'}
    assert entry['over_conv']['adc-reference'] > 0
    assert entry['layout'] == 'channels_last'
    skipped = gpu_check.layers(
        CPU, ['reference'], 1, 1, 0, deadline=0., shapes=[shape])
    assert all('skipped' in e for e in skipped) and len(skipped) == 4


def test_table_prints_every_section(gpu_check, capsys):
    shape = gpu_check.benchmark_adc.Shape('tiny', 4, 5, 4, 1)
    report = dict(
        environment=gpu_check.environment(),
        correctness=gpu_check.correctness(CPU, ('reference', )),
        layers=gpu_check.layers(CPU, ['reference'], 1, 1, 0, float('inf'),
                                [shape])[:1] +
        [dict(shape='late', dtype='float32', skipped='time budget')],
        training=[
            dict(
                config='configs/pose/a.py',
                impl='reference',
                images_per_s=10.,
                throughput_vs_baseline=1.,
                memory_mb=None)
        ])
    assert set(report['environment']) >= {'torch', 'cuda', 'triton'}
    gpu_check.print_table(report)
    text = capsys.readouterr().out
    assert 'g1/float32' in text and 'adc-reference=' in text
    assert 'skipped: time budget' in text and 'a.py' in text
    assert 'triton' in text and 'not applicable' in text


def test_json_keeps_an_existing_file(gpu_check, tmp_path):
    path = tmp_path / 'sub' / 'report.json'
    gpu_check.write_json({'a': 1}, str(path), overwrite=False)
    assert json.loads(path.read_text()) == {'a': 1}
    with pytest.raises(SystemExit, match='exists; pass --overwrite'):
        gpu_check.write_json({'a': 2}, str(path), overwrite=False)
    gpu_check.write_json({'a': 2}, str(path), overwrite=True)
    assert json.loads(path.read_text()) == {'a': 2}


def test_without_gpu_one_line_error(gpu_check, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = tmp_path / 'report.json'
    with pytest.raises(SystemExit) as error:
        gpu_check.main(['--out', str(out)])
    message = str(error.value)
    assert 'needs a CUDA GPU' in message and '\n' not in message
    assert not out.exists()
