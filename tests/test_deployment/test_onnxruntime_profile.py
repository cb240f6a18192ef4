# Copyright (c) mmadc contributors. All rights reserved.
"""``mmadc.deployment.onnxruntime_profile``: kernel time per operator type.

The oracles are a hand-made profile (which events count, and how) and a
graph whose nodes the test builds itself (which operator types a real
onnxruntime profile must name). No timing is asserted.
"""
import os

import pytest
import torch
from torch import nn

from mmadc.deployment import op_type_times, profile_op_types


def _run(ts, dur):
    return dict(cat='Session', name='model_run', ts=ts, dur=dur, args={})


def _kernel(node, op, ts, dur):
    return dict(
        cat='Node',
        name=f'{node}_kernel_time',
        ts=ts,
        dur=dur,
        args=dict(op_name=op))


# a warm-up run, then two runs; times in microseconds, as onnxruntime's
EVENTS = [
    dict(cat='Session', name='session_initialization', ts=0, dur=50, args={}),
    _run(100, 1000),
    _kernel('conv_1', 'Conv', 110, 900),  # warm-up: not counted
    _run(2000, 400),
    dict(cat='Node', name='conv_1_fence_before', ts=2005, dur=0, args={}),
    _kernel('conv_1', 'Conv', 2010, 100),
    _kernel('conv_2', 'Conv', 2120, 100),
    _kernel('mm', 'MatMul', 2230, 60),
    _run(3000, 600),
    _kernel('conv_1', 'Conv', 3010, 300),
    _kernel('conv_2', 'Conv', 3320, 100),
    _kernel('mm', 'MatMul', 3430, 80),
]


def test_op_type_times_counts_the_last_runs_per_operator_type():
    times = op_type_times(EVENTS, runs=2)
    assert times['runs'] == 2
    assert list(times['ops']) == ['Conv', 'MatMul']  # most time first
    assert times['ops']['Conv'] == dict(ms=pytest.approx(0.3), nodes=2)
    assert times['ops']['MatMul'] == dict(ms=pytest.approx(0.07), nodes=1)
    assert times['kernel_ms'] == pytest.approx(0.37)
    assert times['run_ms'] == pytest.approx(0.5)  # median of 0.4 and 0.6
    # with the warm-up run
    times = op_type_times(EVENTS, runs=3)
    assert times['ops']['Conv']['ms'] == pytest.approx(1.5 / 3)
    assert times['run_ms'] == pytest.approx(0.6)


@pytest.mark.parametrize('runs', [0, 4])
def test_op_type_times_rejects_runs_the_profile_does_not_hold(runs):
    with pytest.raises(ValueError, match=r'^runs: expected 1 to 3 '):
        op_type_times(EVENTS, runs)


class _AbsMatMul(nn.Module):

    def forward(self, x, y):
        return torch.matmul(x.abs(), y)


@pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='the export needs torch >= 2.4')
def test_profile_of_a_real_session_names_its_nodes_and_leaves_no_file(
        tmp_path, monkeypatch):
    pytest.importorskip('onnxruntime')
    from mmadc.deployment import export_module
    onnx_file = str(tmp_path / 'model.onnx')
    x, y = torch.randn(3, 8), torch.randn(8, 5)
    export_module(_AbsMatMul().eval(), (x, y), onnx_file, ['x', 'y'])
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    times = profile_op_types(
        onnx_file, [x.numpy(), y.numpy()], runs=2, warmup=1, threads=1)
    assert set(os.listdir(tmp_path)) == before  # the profile file is gone
    assert times['runs'] == 2
    assert {
        op: t['nodes']
        for op, t in times['ops'].items()
    } == {
        'Abs': 1,
        'MatMul': 1
    }
    assert times['kernel_ms'] == pytest.approx(
        sum(t['ms'] for t in times['ops'].values()))
