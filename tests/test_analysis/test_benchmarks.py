# Copyright (c) mmadc contributors. All rights reserved.
"""The benchmark tools: their measurement helpers and their JSON reports.

No timing is asserted (timings depend on the machine); the tests check
that the tools measure what they say (units, memory of a known
allocation, ratios of the reported numbers) and keep their CLI contract.
"""
import argparse
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
