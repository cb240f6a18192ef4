# Copyright (c) mmadc contributors. All rights reserved.
"""The benchmark tools: their measurement helpers and their JSON reports.

No timing is asserted (timings depend on the machine); the tests check
that the tools measure what they say (units, memory of a known
allocation, ratios of the reported numbers) and keep their CLI contract.
"""
import argparse
import importlib.util
import json
import statistics
import sys
import time

import pytest
import torch
from conftest import PYTHON, REPO_ROOT, run_cli

from mmadc.analysis.benchmarking import (median_ratio, peak_memory_mb,
                                         selected_kernels, time_interleaved_ms)
from mmadc.ops import native_cpu
from mmadc.ops.native_cpu import gemm_library_in_use

CPU = torch.device('cpu')


@pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='peak RSS needs Linux')
def test_peak_memory_counts_a_temporary():
    """A 64 MiB temporary written in full (so its pages are resident) is
    counted even though it is freed before the call returns."""

    def allocate():
        torch.ones(16 << 20)  # 64 MiB of float32

    measured = peak_memory_mb(allocate, CPU)
    assert 60 <= measured <= 80
    assert peak_memory_mb(lambda: None, CPU) < 8


def test_interleaved_times_are_milliseconds():
    times = time_interleaved_ms(
        {
            'sleep': lambda: time.sleep(0.01),
            'noop': lambda: None
        },
        CPU,
        repeat=3,
        warmup=1)
    assert set(times) == {'sleep', 'noop'}
    assert times['sleep'] >= 10  # time.sleep sleeps at least this long
    assert 0 <= times['noop'] < times['sleep']


def test_median_ratio_pairs_rounds():
    """Rounds are compared pairwise: a slow phase that spans rounds (here
    the first, 10x slower for both) does not skew the ratio, as it would a
    ratio of medians (1 / 2 here)."""
    assert median_ratio([10.0, 1.0, 1.0], [10.0, 2.0, 1.0]) == 1.0
    assert median_ratio([3.0], [2.0]) == 1.5
    with pytest.raises(ValueError, match='equally long'):
        median_ratio([1.0], [1.0, 2.0])


def _json(proc) -> dict:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # exactly one JSON object
    return json.loads(lines[0])


def test_benchmark_adc_json():
    proc = run_cli([
        PYTHON, 'tools/analysis/benchmark_adc.py', '--shapes',
        'hrnet-w32-branch4', '--batch', '2', '--repeat', '3', '--warmup', '0',
        '--impl', 'reference', '--json'
    ], REPO_ROOT)
    report = _json(proc)
    assert report['config']['impl'] == 'reference'
    assert report['config']['gemm'] == gemm_library_in_use()
    (entry, ) = report['results']
    assert entry['shape'] == 'hrnet-w32-branch4'
    for mode in ('fwd', 'fwdbwd'):
        m = entry[mode]
        assert min(m['conv_ms'], m['adc_ms'], m['deform_ms']) > 0
        rounds = m['rounds_ms']
        assert all(len(rounds[k]) == 3 for k in ('conv', 'adc', 'deform'))
        assert m['adc_ms'] == pytest.approx(statistics.median(rounds['adc']))
        assert m['adc_over_conv'] == pytest.approx(
            statistics.median(a / c
                              for a, c in zip(rounds['adc'], rounds['conv'])))
        assert m['deform_over_adc'] == pytest.approx(
            statistics.median(
                d / a for d, a in zip(rounds['deform'], rounds['adc'])))
    memory = entry['memory_mb']
    if sys.platform.startswith('linux'):
        assert min(memory.values()) > 0
        assert entry['memory_adc_over_conv'] == pytest.approx(memory['adc'] /
                                                              memory['conv'])


@pytest.mark.slow
def test_benchmark_model_json():
    """Training steps of the demo pose configs (ResNet-18, 128x96) without
    and with ADC; the second is reported relative to the first."""
    proc = run_cli([
        PYTHON, 'tools/analysis/benchmark_model.py',
        'configs/demo/td-hm_res18_1xb32-40e_synthetic-coco-128x96.py',
        'configs/demo/td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py',
        '--batch', '2', '--steps', '1', '--warmup', '0', '--json'
    ], REPO_ROOT)
    report = _json(proc)
    base, adc = report['results']
    assert (base['backbone'], adc['backbone']) == ('ResNet', 'ResNetADC')
    assert base['throughput_vs_first'] == 1
    assert adc['throughput_vs_first'] == pytest.approx(adc['images_per_s'] /
                                                       base['images_per_s'])
    assert adc['images_per_s'] == pytest.approx(2 / (adc['step_ms'] / 1e3))
    if sys.platform.startswith('linux'):
        assert base['memory_mb'] > 0 and adc['memory_mb'] > 0


def test_gemm_choice_without_kernel_exits_with_one_line(monkeypatch):
    """--gemm naming a library needs the native kernel: without it the
    tools stop with one line naming the flag, not a traceback."""
    monkeypatch.setattr(native_cpu, '_adc_cpu', None)
    args = argparse.Namespace(impl='auto', gemm='mm')
    with pytest.raises(SystemExit) as exc:
        with selected_kernels(args):
            pass
    message = str(exc.value)
    assert message.startswith('--gemm mm: ') and 'not built' in message
    assert '\n' not in message
    with selected_kernels(argparse.Namespace(impl='auto', gemm='auto')):
        pass  # auto needs no kernel


@pytest.fixture(scope='module')
def benchmark_adc():
    path = REPO_ROOT + '/tools/analysis/benchmark_adc.py'
    spec = importlib.util.spec_from_file_location('benchmark_adc', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_export = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='exporting ADC needs torch >= 2.4')


@needs_export
@pytest.mark.parametrize('shape', ['hrnet-w32-branch4', 'resnet50-stage4-s2'])
def test_onnxruntime_layers_equal_their_oracles(benchmark_adc, shape,
                                                tmp_path):
    """What --runtime onnxruntime times is the layer: the exported conv
    gives F.conv2d's output and the exported ADC deform_conv2d's with the
    rates' offsets, at a batch (3) other than the traced one (2); the
    reported error is ADC's in onnxruntime against PyTorch's."""
    pytest.importorskip('onnxruntime')
    from mmadc.deployment import relative_error
    args = benchmark_adc.parse_args(
        ['--runtime', 'onnxruntime', '--batch', '3', '--shapes', shape])
    (layer, ) = benchmark_adc.select_shapes(args.shapes)
    case = benchmark_adc.Case(layer, args)
    fns, error = benchmark_adc.onnxruntime_fns(case, 1, str(tmp_path))
    conv = torch.from_numpy(fns['conv']()[0])
    adc = torch.from_numpy(fns['adc']()[0])
    with torch.no_grad():
        assert relative_error(conv, case.conv(case.x, case.weight,
                                              None)) < 1e-5
        assert relative_error(adc, case.deform(case.x, case.weight,
                                               case.rates)) < 1e-5
        assert error == pytest.approx(
            relative_error(adc, case.adc(case.x, case.weight, case.rates)))
    assert error < 1e-5


@needs_export
def test_benchmark_adc_onnxruntime_json(benchmark_adc, capsys):
    pytest.importorskip('onnxruntime')
    benchmark_adc.main([
        '--runtime', 'onnxruntime', '--shapes', 'hrnet-w32-branch4', '--batch',
        '1', '--repeat', '2', '--warmup', '0', '--threads', '1', '--json'
    ])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object
    report = json.loads(lines[0])
    config = report['config']
    assert config['runtime'] == 'onnxruntime'
    assert isinstance(config['onnxruntime'], str)
    assert config['memory'] is None
    (entry, ) = report['results']
    assert 'fwdbwd' not in entry  # onnxruntime runs the forward only
    fwd = entry['fwd']
    rounds = fwd['rounds_ms']
    assert set(rounds) == {'conv', 'adc'}
    assert all(len(v) == 2 and min(v) > 0 for v in rounds.values())
    assert fwd['deform_ms'] is None and fwd['deform_over_adc'] is None
    assert fwd['adc_over_conv'] == pytest.approx(
        statistics.median(a / c
                          for a, c in zip(rounds['adc'], rounds['conv'])))
    assert entry['onnx_max_error'] < 1e-4
    assert entry['memory_mb'] == {'conv': None, 'adc': None}


@pytest.mark.parametrize('extra, start', [
    (['--mode', 'fwdbwd'], '--mode fwdbwd: '),
    (['--mode', 'both'], '--mode both: '),
    (['--dtype', 'float64'], '--dtype float64: '),
    (['--device', 'cuda'], '--device cuda: '),
])
def test_benchmark_adc_onnxruntime_one_line_errors(benchmark_adc, extra,
                                                   start):
    with pytest.raises(SystemExit) as exc:
        benchmark_adc.parse_args(['--runtime', 'onnxruntime'] + extra)
    message = str(exc.value)
    assert message.startswith(start) and '\n' not in message


def test_benchmark_adc_onnxruntime_missing_names_the_install(
        benchmark_adc, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import fails
    with pytest.raises(SystemExit) as exc:
        benchmark_adc.parse_args(['--runtime', 'onnxruntime'])
    message = str(exc.value)
    assert message.startswith('--runtime onnxruntime needs ')
    assert '.[deploy]' in message and '\n' not in message


def test_benchmark_adc_mode_defaults_follow_the_runtime(benchmark_adc):
    assert benchmark_adc.parse_args([]).mode == 'both'
    for module in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(module)
    assert benchmark_adc.parse_args(['--runtime', 'onnxruntime']).mode == 'fwd'


@pytest.mark.skipif(
    not native_cpu.native_cpu_available(),
    reason='the native CPU kernel is not built')
def test_benchmark_adc_gemm_floor_json(benchmark_adc, capsys):
    """--gemm-floor times the kernel's GEMMs alone in both modes, and the
    ratios are the medians of the per-round ratios."""
    benchmark_adc.main([
        '--shapes', 'hrnet-w32-branch4', '--batch', '2', '--repeat', '3',
        '--warmup', '0', '--no-deform', '--gemm-floor', '--json'
    ])
    report = json.loads(capsys.readouterr().out)
    assert report['config']['gemm_floor'] is True
    (entry, ) = report['results']
    for mode in ('fwd', 'fwdbwd'):
        m = entry[mode]
        rounds = m['rounds_ms']
        assert len(rounds['gemm']) == 3 and m['gemm_ms'] > 0
        assert m['gemm_over_conv'] == pytest.approx(
            statistics.median(g / c
                              for g, c in zip(rounds['gemm'], rounds['conv'])))
        assert m['adc_over_gemm'] == pytest.approx(
            statistics.median(a / g
                              for a, g in zip(rounds['adc'], rounds['gemm'])))
    benchmark_adc.print_table(report)
    assert 'adc/gemm' in capsys.readouterr().out


def test_benchmark_adc_without_gemm_floor_reports_none(benchmark_adc):
    args = benchmark_adc.parse_args([
        '--shapes', 'hrnet-w32-branch4', '--batch', '1', '--repeat', '1',
        '--warmup', '0', '--no-deform', '--mode', 'fwd', '--impl', 'reference'
    ])
    (entry, ) = benchmark_adc.benchmark(args)['results']
    assert 'gemm' not in entry['fwd']['rounds_ms']
    assert entry['fwd']['gemm_ms'] is None
    assert entry['fwd']['adc_over_gemm'] is None


@pytest.mark.parametrize('extra, start', [
    (['--device', 'cuda'], '--device cuda: --gemm-floor times the native '),
    (['--dtype', 'bfloat16'], '--dtype bfloat16: --gemm-floor times the '),
])
def test_benchmark_adc_gemm_floor_one_line_errors(benchmark_adc, extra, start):
    with pytest.raises(SystemExit) as exc:
        benchmark_adc.parse_args(['--gemm-floor'] + extra)
    message = str(exc.value)
    assert message.startswith(start) and '\n' not in message


def test_benchmark_adc_gemm_floor_without_kernel_names_the_build(
        benchmark_adc, monkeypatch):
    monkeypatch.setattr(benchmark_adc, 'native_cpu_available', lambda: False)
    with pytest.raises(SystemExit) as exc:
        benchmark_adc.parse_args(['--gemm-floor'])
    message = str(exc.value)
    assert message.startswith('--gemm-floor: the native CPU kernel is not '
                              'built') and '\n' not in message
