# Copyright (c) mmadc contributors. All rights reserved.
"""``tools/analysis/benchmark_deploy.py``: its JSON report (schema and the
ratios it derives) and its one-line argument errors. No timing is asserted.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from conftest import REPO_ROOT

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')
POSE_ADC = osp.join(DEMO, 'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')
POSE = osp.join(DEMO, 'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')


@pytest.fixture(scope='module')
def tool():
    path = osp.join(REPO_ROOT, 'tools', 'analysis', 'benchmark_deploy.py')
    spec = importlib.util.spec_from_file_location('benchmark_deploy', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spread_schema(spread, rounds):
    assert set(spread) == {'median', 'min', 'max', 'rounds'}
    assert len(spread['rounds']) == rounds
    assert spread['min'] <= spread['median'] <= spread['max']


@pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='exporting ADC needs torch >= 2.4')
def test_json_report_of_configs_then_of_their_onnx_files(
        tool, tmp_path, capsys):
    """Configs: exported, checked in onnxruntime, rates fractional in the
    asked range; then the exported files themselves, JSON on stdout."""
    pytest.importorskip('onnxruntime')
    report_file = tmp_path / 'report.json'
    work_dir = tmp_path / 'onnx'
    tool.main([
        POSE, POSE_ADC, '--rounds', '2', '--warmup', '0', '--threads', '1',
        '--rates', '0.5', '3', '--work-dir',
        str(work_dir), '--json',
        str(report_file)
    ])
    assert 'B/A' in capsys.readouterr().out  # the table
    report = json.loads(report_file.read_text())
    assert set(report) == {'setup', 'models', 'results'}
    setup = report['setup']
    assert setup['batch'] == 1 and setup['shape'] == [128, 96]
    assert setup['runtimes'] == ['onnxruntime', 'torch']
    assert setup['threads'] == 1 and setup['rounds'] == 2
    assert setup['rates'] == [0.5, 3.0]
    assert set(setup['cpu']) == {'model', 'avx512', 'cores'}
    a, b = report['models']['A'], report['models']['B']
    assert a['adc_layers'] == 0 and a['rates'] is None
    assert b['adc_layers'] > 0
    assert 0.5 <= b['rates'][0] < b['rates'][1] <= 3.0
    for info in (a, b):
        assert osp.isfile(info['onnx'])
        assert info['onnx_max_error'] <= 1e-4
    assert [r['runtime'] for r in report['results']] == setup['runtimes']
    for r in report['results']:
        _spread_schema(r['a_ms'], 2)
        _spread_schema(r['b_ms'], 2)
        ratios = [
            y / x for x, y in zip(r['a_ms']['rounds'], r['b_ms']['rounds'])
        ]
        assert r['ratio'] == pytest.approx(sum(ratios) / 2)
        assert r['ratio_min'] == min(ratios)

    assert 'op_profile' not in report  # not asked for

    tool.main([
        a['onnx'], b['onnx'], '--runtime', 'onnxruntime', '--rounds', '1',
        '--warmup', '0', '--op-profile', '--json'
    ])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    report = json.loads(out[0])
    assert report['setup']['shape'] == [128, 96]
    assert report['models']['B']['source'] == b['onnx']
    assert [r['runtime'] for r in report['results']] == ['onnxruntime']
    # each model's own profile: ADC's decomposition is MatMuls, the
    # baseline has none
    profile = report['op_profile']
    assert set(profile) == {'A', 'B'}
    assert profile['A']['runs'] == profile['B']['runs'] == 1
    assert 'MatMul' not in profile['A']['ops']
    assert profile['B']['ops']['MatMul']['nodes'] > 0
    tool.print_op_profile(profile)
    table = capsys.readouterr().out
    assert 'MatMul' in table and 'all kernels' in table


def test_ratio_is_the_median_of_per_round_ratios(tool):
    times = {'torch/A': [1., 2., 4.], 'torch/B': [2., 2., 2.]}
    (result, ) = tool.summarise(times, ['torch'])
    assert result['ratio'] == 1.0  # of 2, 1, 0.5 (the medians give 1 too)
    assert (result['ratio_min'], result['ratio_max']) == (0.5, 2.0)
    assert result['a_ms']['median'] == 2.0


@pytest.mark.parametrize('extra,start', [
    (['--batch', '0'], '--batch must be >= 1'),
    (['--rounds', '0'], '--rounds must be >= 1'),
    (['--warmup', '-1'], '--warmup must be >= 0'),
    (['--threads', '0'], '--threads must be >= 1'),
    (['--runtime', 'tensorrt'], '--runtime: expected'),
    (['--runtime', ''], '--runtime: expected'),
    (['--rates', '3', '1'], '--rates: expected 0 <= LOW <= HIGH'),
    (['--shape', '0', '96'], '--shape: expected two positive sizes'),
    (['--runtime', 'torch', '--op-profile'], '--op-profile: profiles '
     'onnxruntime'),
])
def test_bad_arguments_give_one_line_errors(tool, extra, start):
    args = tool.parse_args([POSE, POSE_ADC, *extra])
    with pytest.raises(SystemExit) as error:
        tool.benchmark(args)
    message = str(error.value)
    assert message.startswith(start) and '\n' not in message


def test_bad_models_give_one_line_errors(tool, tmp_path):
    missing = str(tmp_path / 'missing.py')
    onnx_file = tmp_path / 'model.onnx'
    onnx_file.write_bytes(b'')
    for models, extra, start in (
        ([missing, POSE], [], 'CONFIG_A: no such file'),
        ([POSE, missing], [], 'CONFIG_B: no such file'),
        ([POSE, str(onnx_file)], [], '--runtime: torch needs a config, but '
         'CONFIG_B'),
    ):
        args = tool.parse_args([*models, *extra])
        with pytest.raises(SystemExit) as error:
            tool.benchmark(args)
        message = str(error.value)
        assert message.startswith(start) and '\n' not in message, message
