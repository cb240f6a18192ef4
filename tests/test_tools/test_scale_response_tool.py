# Copyright (c) mmadc contributors. All rights reserved.
"""tools/analysis/scale_response.py on the demo configs (the item-4
commands, on the small generated sets) and its one-line refusals."""
import importlib.util
import json
import os.path as osp
import re
import subprocess

import numpy as np
import pytest
import torch
from conftest import PYTHON, REPO_ROOT
from demo_helpers import POSE_ADC_CFG, POSE_CFG, SEG_ADC_CFG, write_checkpoint
from rate_helpers import input_dependent_rates

TOOL = osp.join(REPO_ROOT, 'tools', 'analysis', 'scale_response.py')

torch.set_num_threads(1)


def load(name: str):
    spec = importlib.util.spec_from_file_location(
        f'scale_response_test_{name}',
        osp.join(REPO_ROOT, 'tools', 'analysis', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_rate_checkpoint(config: str, path: str) -> str:
    """A demo model whose rate regressors' last layers have random
    weights: rates that differ between persons and with the input."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    input_dependent_rates(model, seed=1)
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('scale_ckpt')
    return dict(
        pose_random=random_rate_checkpoint(POSE_ADC_CFG,
                                           str(root / 'pose_random.pth')),
        pose=write_checkpoint(POSE_CFG, str(root / 'pose.pth')),
        seg_adc=write_checkpoint(SEG_ADC_CFG, str(root / 'seg_adc.pth')))


def test_pose_demo_config_agrees_with_rate_statistics_at_scale_1(
        data_workspace, checkpoints, tmp_path, monkeypatch):
    """At scale 1 the pipeline is the config's own: each person's stage
    rates are those the size statistics (item 1) record for that person;
    at scale 1/2 the model sees another input."""
    monkeypatch.chdir(data_workspace)  # the configs' data/... roots
    ckpt = checkpoints['pose_random']
    report = load('scale_response').main([
        POSE_ADC_CFG, ckpt, '--scales', '0.5', '1', '--num-samples', '3',
        '--out-dir',
        str(tmp_path / 'scale'), '--bootstrap', '50'
    ])
    sizes = load('rate_statistics').main([
        POSE_ADC_CFG, ckpt, '--max-instances', '3', '--out-dir',
        str(tmp_path / 'size'), '--no-plots', '--bootstrap', '10'
    ])
    assert report['num_samples'] == 3
    assert list(report['stages']) == ['layer1', 'layer2', 'layer3', 'layer4']
    assert len(report['layers']) == 8
    for stage, by_scale in report['samples']['stage_rate'].items():
        np.testing.assert_allclose(
            by_scale['1'], sizes['persons']['stage_rate'][stage], rtol=1e-6)
        assert not np.allclose(by_scale['0.5'], by_scale['1'], rtol=1e-4)
        means = [e['value'] for e in report['stages'][stage]['mean']]
        np.testing.assert_allclose(
            means, [np.mean(by_scale['0.5']),
                    np.mean(by_scale['1'])])
    with open(tmp_path / 'scale' / 'scale_response.json') as f:
        assert json.load(f)['scales'] == [0.5, 1.0]


def test_seg_demo_config_rates_by_construction(data_workspace, checkpoints,
                                               tmp_path, monkeypatch):
    """write_checkpoint leaves the regressors' last weights at 0, so each
    rate is relu(bias) whatever the input: the curve is flat at the
    checkpoint's numbers."""
    monkeypatch.chdir(data_workspace)
    ckpt = checkpoints['seg_adc']
    report = load('scale_response').main([
        SEG_ADC_CFG, ckpt, '--scales', '0.5', '1', '--num-samples', '1',
        '--out-dir',
        str(tmp_path / 'out'), '--bootstrap', '20', '--no-plots'
    ])
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    by_stage = {}
    for name, entry in report['layers'].items():
        expected = state[f'{name}.rate_regressor.fc2.bias'].clamp(
            min=0).double().mean().item()
        assert entry['mean'] == pytest.approx([expected] * 2, rel=1e-6)
        by_stage.setdefault(entry['stage'], []).append(expected)
    for stage, curve in report['stages'].items():
        for entry in curve['mean']:
            assert entry['value'] == pytest.approx(
                np.mean(by_stage[stage]), rel=1e-6)
    assert report['scaling'].startswith('the whole model input')


def _refused(capsys, argv, pattern):
    tool = load('scale_response')
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err, 'no message'
    assert re.search(r'^scale_response.py: error: ' + pattern, err[-1]), \
        err[-1]


@pytest.mark.parametrize('scales, pattern', [
    (['0'], r'--scales: each scale must be > 0 and <= 8, got 0$'),
    (['-1'], r'--scales: each scale must be > 0 and <= 8, got -1$'),
    (['0.5', '-0.25'], r'--scales: .* got -0.25$'),
    (['nan'], r'--scales: .* got nan$'),
    (['16'], r'--scales: .* got 16$'),
    (['1', '1.0'], r'--scales: 1 is given twice$'),
])
def test_bad_scales_are_one_line(checkpoints, tmp_path, capsys, scales,
                                 pattern):
    out = tmp_path / 'out'
    _refused(capsys, [
        POSE_ADC_CFG, checkpoints['pose_random'], '--out-dir',
        str(out), '--scales', *scales
    ], pattern)
    assert not out.exists()  # refused before any work


def test_other_mistakes_are_one_line(data_workspace, checkpoints, tmp_path,
                                     capsys, monkeypatch):
    monkeypatch.chdir(data_workspace)
    ckpt = checkpoints['pose_random']
    out = str(tmp_path / 'out')
    _refused(capsys,
             [POSE_ADC_CFG, ckpt, '--out-dir', out, '--num-samples', '0'],
             '--num-samples must be >= 1, got 0$')
    _refused(capsys, [str(tmp_path / 'missing.py'), ckpt],
             'config: ".*missing.py" does not exist$')
    _refused(capsys,
             [POSE_ADC_CFG, str(tmp_path / 'missing.pth')],
             'checkpoint: ".*missing.pth" does not exist')
    # a config without ADC: refused when its model is built, at the first
    # scale, before any sample runs
    _refused(
        capsys,
        [POSE_CFG, checkpoints['pose'], '--out-dir', out, '--scales', '1'],
        f'no ADC layers in the model of {re.escape(POSE_CFG)}')
    assert not osp.exists(osp.join(out, 'scale_response.json'))
    # an earlier run's report is kept without --overwrite
    args = [
        POSE_ADC_CFG, ckpt, '--out-dir', out, '--scales', '1', '--num-samples',
        '1', '--bootstrap', '5', '--no-plots'
    ]
    load('scale_response').main(args)
    _refused(capsys, args, r'--out-dir: ".*scale_response.json" exists; '
             'pass --overwrite')
    load('scale_response').main(args + ['--overwrite'])


def test_config_without_adc_from_the_command_line(data_workspace, checkpoints,
                                                  tmp_path):
    proc = subprocess.run([
        PYTHON, TOOL, POSE_CFG, checkpoints['pose'], '--out-dir',
        str(tmp_path / 'out')
    ],
                          cwd=data_workspace,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('scale_response.py: error: no ADC layers in '
                           'the model of'), last
