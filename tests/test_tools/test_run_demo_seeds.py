# Copyright (c) mmadc contributors. All rights reserved.
"""``tools/run_demo.py --seeds``: the statistics over seeds against hand
computations, the runs it starts (with ``mim`` replaced by a recorder, and
once for real on a two-iteration schedule), the default single-seed run
unchanged, and that the seed it passes reaches the weights, the data order
and the augmentation."""
import importlib.util
import json
import math
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from demo_helpers import POSE_ADC_CFG, POSE_CFG, SEG_ADC_CFG
from scipy import stats

from mmadc.analysis.seed_comparison import (compare_over_seeds,
                                            plot_seed_comparison, seed_table)
from mmadc.evaluation.functional import (paired_t_interval, t_interval,
                                         t_quantile)

RUN_DEMO = osp.join(REPO_ROOT, 'tools', 'run_demo.py')


def load_run_demo():
    spec = importlib.util.spec_from_file_location('run_demo_under_test',
                                                  RUN_DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The statistics ---------------------------------------------------------


@pytest.mark.parametrize(
    'df, table',
    [
        # Student's t, two-sided 95% (0.975 quantile), printed tables
        (1, 12.7062047),
        (2, 4.30265273),
        (4, 2.77644511),
        (9, 2.26215716),
        (30, 2.04227246),
    ])
def test_t_quantile_against_the_table(df, table):
    assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-7)
    assert t_quantile(0.025, df) == pytest.approx(-table, abs=1e-7)


def test_paired_t_interval_by_hand():
    adc, base = [0.12, 0.10, 0.14], [0.10, 0.11, 0.09]
    # differences 0.02, -0.01, 0.05: mean 0.02, deviations 0, -0.03, 0.03,
    # s^2 = (0 + 0.0009 + 0.0009) / 2, s = 0.03, se = 0.03 / sqrt(3)
    res = paired_t_interval(adc, base)
    se = 0.03 / math.sqrt(3)
    half = 4.30265273 * se
    assert res['value'] == pytest.approx(0.02)
    assert res['std'] == pytest.approx(0.03)
    assert res['se'] == pytest.approx(se)
    assert res['df'] == 2 and res['n'] == 3 and res['level'] == 0.95
    assert res['interval'] == pytest.approx([0.02 - half, 0.02 + half],
                                            abs=1e-9)
    assert res['excludes_zero'] is False
    # scipy's paired t-test, another implementation
    ci = stats.ttest_rel(adc, base).confidence_interval(0.95)
    assert res['interval'] == pytest.approx([ci.low, ci.high], abs=1e-12)

    # a consistent gain: 0.05, 0.06, 0.07, s = 0.01
    res = paired_t_interval([0.15, 0.16, 0.17], [0.10, 0.10, 0.10])
    half = 4.30265273 * 0.01 / math.sqrt(3)
    assert res['interval'] == pytest.approx([0.06 - half, 0.06 + half],
                                            abs=1e-9)
    assert res['excludes_zero'] is True
    # a run without a result drops its pair: (1, 0), (3, 1), df = 1
    res = paired_t_interval([1., None, 3.], [0., 1., 1.])
    assert res['n'] == 2 and res['value'] == pytest.approx(1.5)
    assert res['std'] == pytest.approx(math.sqrt(0.5))
    assert res['interval'] == pytest.approx(
        [1.5 - 12.7062047 * 0.5, 1.5 + 12.7062047 * 0.5], abs=1e-6)
    # one pair: a difference, no spread to make an interval of
    one = paired_t_interval([0.2], [0.1])
    assert one['value'] == pytest.approx(0.1)
    assert one['std'] is None and one['interval'] is None
    assert paired_t_interval([], [])['value'] is None
    with pytest.raises(ValueError, match='paired'):
        paired_t_interval([1., 2.], [1.])


def test_t_interval_mean_and_std_by_hand():
    res = t_interval([0.12, 0.10, 0.14])
    assert res['value'] == pytest.approx(0.12)
    assert res['std'] == pytest.approx(0.02)  # sqrt((4e-4 + 4e-4) / 2)
    half = 4.30265273 * 0.02 / math.sqrt(3)
    assert res['interval'] == pytest.approx([0.12 - half, 0.12 + half],
                                            abs=1e-9)
    with pytest.raises(ValueError, match='level'):
        t_interval([1., 2.], level=1.)


def fake_runs():
    """Three seeds of both demo pairs; the seg baseline lacks seed 2's
    result."""
    table = {
        ('pose', False): [0.10, 0.11, 0.09],
        ('pose', True): [0.12, 0.10, 0.14],
        ('seg', False): [30.0, 31.0, None],
        ('seg', True): [31.5, 31.0, 33.0],
    }
    runs = []
    for seed in (0, 1, 2):
        for (task, adc), values in table.items():
            runs.append(
                dict(
                    task=task,
                    adc=adc,
                    seed=seed,
                    metric='coco/AP' if task == 'pose' else 'mIoU',
                    value=values[seed],
                    config=f'{task}-{"adc" if adc else "base"}.py'))
    return runs


def test_compare_over_seeds_and_its_table(tmp_path):
    pose, seg = compare_over_seeds(fake_runs())
    assert pose['task'] == 'pose' and pose['metric'] == 'coco/AP'
    assert pose['seeds'] == [0, 1, 2]
    assert pose['baseline']['values'] == [0.10, 0.11, 0.09]
    assert pose['baseline']['value'] == pytest.approx(0.10)
    assert pose['baseline']['std'] == pytest.approx(0.01)
    assert pose['adc']['std'] == pytest.approx(0.02)
    diff = pose['adc_minus_baseline']
    assert diff['values'] == pytest.approx([0.02, -0.01, 0.05])
    half = 4.30265273 * 0.03 / math.sqrt(3)
    assert diff['interval'] == pytest.approx([0.02 - half, 0.02 + half],
                                             abs=1e-9)
    # seg: seed 2's pair is incomplete, so 2 pairs (1.5, 0.0), df = 1
    assert seg['baseline']['n'] == 2 and seg['adc']['n'] == 3
    sdiff = seg['adc_minus_baseline']
    assert sdiff['values'][2] is None
    assert sdiff['n'] == 2 and sdiff['df'] == 1
    assert sdiff['value'] == pytest.approx(0.75)
    # s = |1.5 - 0| / sqrt(2), se = s / sqrt(2) = 0.75
    assert sdiff['interval'] == pytest.approx(
        [0.75 - 12.7062047 * 0.75, 0.75 + 12.7062047 * 0.75], abs=1e-6)

    lines = seed_table([pose, seg])
    assert 'paired t-interval, df = n-1' in lines[0]
    assert lines[1].startswith('pose  coco/AP')
    assert '0.1000 +- 0.0100 (n=3)' in lines[1]
    assert '0.1200 +- 0.0200 (n=3)' in lines[1]
    assert (f'+0.0200 [{0.02 - half:+.4f}, {0.02 + half:+.4f}] '
            '(n=3, includes 0)') in lines[1]
    assert '30.5000 +- 0.7071 (n=2)' in lines[2]
    path = plot_seed_comparison([pose, seg], str(tmp_path / 'seeds.png'))
    assert osp.getsize(path) > 5000

    # ADC alone (--no-baseline): no difference to report
    (alone, ) = compare_over_seeds(
        [r for r in fake_runs() if r['adc'] and r['task'] == 'pose'])
    assert 'baseline' not in alone and 'adc_minus_baseline' not in alone
    assert 'n/a' in seed_table([alone])[1]
    plot_seed_comparison([alone], str(tmp_path / 'alone.png'))


# The runs run_demo starts -----------------------------------------------

METRICS = {  # (config name stem, seed) -> the metric the fake run logs
    'td-hm_res18_1xb32-40e_synthetic-coco-128x96': [0.10, 0.11, 0.09],
    'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96': [0.12, 0.10, 0.14],
    'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128':
    [30.0, 31.0, 29.0],
    'fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128':
    [31.5, 31.0, 33.0],
}


@pytest.fixture
def fake_mim(monkeypatch, tmp_path):
    """run_demo with ``mim train`` replaced: each command is recorded and
    its work dir gets the scalars.json of one validation."""
    module = load_run_demo()
    commands = []

    def fake_run(cmd, check):
        assert check
        commands.append(list(cmd))
        work_dir = cmd[cmd.index('--work-dir') + 1]
        stem = osp.splitext(osp.basename(cmd[3]))[0]
        seed = 0
        if '--cfg-options' in cmd:
            option = cmd[cmd.index('--cfg-options') + 1]
            assert option.startswith('randomness.seed=')
            seed = int(option.split('=')[1])
        metric = 'coco/AP' if cmd[2] == 'mmpose' else 'mIoU'
        vis = osp.join(work_dir, '20260101_000000', 'vis_data')
        os.makedirs(vis)
        with open(osp.join(vis, 'scalars.json'), 'w') as f:
            f.write(json.dumps(dict(loss=1.0, step=1)) + '\n')
            f.write(
                json.dumps({
                    metric: METRICS[stem][seed],
                    'step': 1
                }) + '\n')

    monkeypatch.setattr(module.subprocess, 'run', fake_run)
    monkeypatch.setattr(module, 'ensure_data', lambda task: None)
    monkeypatch.chdir(tmp_path)  # restored after main's chdir
    return module, commands


def test_default_run_is_one_seed_as_before(fake_mim, tmp_path, capsys):
    module, commands = fake_mim
    work = str(tmp_path / 'demo')
    results = module.main(['--work-dir', work])
    mim = osp.join(osp.dirname(module.sys.executable), 'mim')
    expected = [[
        mim, 'train', job['package'], f'configs/demo/{job["config"]}',
        '--work-dir',
        osp.join(work,
                 osp.splitext(job['config'])[0])
    ] for job in module.JOBS]
    assert commands == expected  # no seed option, the same work dirs
    with open(osp.join(work, 'summary.json')) as f:
        saved = json.load(f)
    assert saved == results
    for entry in saved:
        assert list(entry) == [
            'task', 'adc', 'config', 'metric', 'value', 'minutes', 'work_dir'
        ]
    assert [r['value'] for r in saved] == [0.10, 0.12, 30.0, 31.5]
    assert sorted(os.listdir(work)) == sorted(
        [osp.splitext(j['config'])[0] for j in module.JOBS] + ['summary.json'])
    out = capsys.readouterr().out.splitlines()
    # the table as run_demo has always printed it
    start = out.index('[demo] summary (same data and budget for each pair)')
    dirs = [osp.join(work, osp.splitext(j['config'])[0]) for j in module.JOBS]
    assert out[start + 1:start + 6] == [
        'task  model     metric      value  minutes  work dir',
        f'pose  baseline  coco/AP    0.1000      0.0  {dirs[0]}',
        f'pose  ADC       coco/AP    0.1200      0.0  {dirs[1]}',
        f'seg   baseline  mIoU      30.0000      0.0  {dirs[2]}',
        f'seg   ADC       mIoU      31.5000      0.0  {dirs[3]}',
    ]
    assert not any('over the seeds' in line for line in out)


def test_seeds_run_each_pair_per_seed(fake_mim, tmp_path, capsys):
    module, commands = fake_mim
    work = str(tmp_path / 'demo')
    results = module.main(['--work-dir', work, '--seeds', '0', '1', '2'])
    assert len(commands) == 12
    for i, cmd in enumerate(commands):  # seed by seed, all jobs each
        seed, job = divmod(i, 4)
        assert cmd[cmd.index('--cfg-options') +
                   1:] == [f'randomness.seed={seed}']
        assert cmd[cmd.index('--work-dir') + 1] == osp.join(
            work, f'{osp.splitext(module.JOBS[job]["config"])[0]}-seed{seed}')
    assert [r['seed'] for r in results] == [0] * 4 + [1] * 4 + [2] * 4
    with open(osp.join(work, 'seed_statistics.json')) as f:
        saved = json.load(f)
    pose, seg = saved
    assert pose['adc_minus_baseline']['value'] == pytest.approx(0.02)
    half = 4.30265273 * 0.03 / math.sqrt(3)
    assert pose['adc_minus_baseline']['interval'] == pytest.approx(
        [0.02 - half, 0.02 + half], abs=1e-9)
    # seg: differences 1.5, 0.0, 4.0: mean 11/6, against scipy
    assert seg['adc_minus_baseline']['value'] == pytest.approx(5.5 / 3)
    ci = stats.ttest_rel([31.5, 31.0, 33.0],
                         [30.0, 31.0, 29.0]).confidence_interval(0.95)
    assert seg['adc_minus_baseline']['interval'] == pytest.approx(
        [ci.low, ci.high], abs=1e-9)
    assert seg['baseline']['std'] == pytest.approx(1.0)
    assert osp.getsize(osp.join(work, 'seed_statistics.png')) > 5000
    out = capsys.readouterr().out
    assert 'task  model     seed  metric      value' in out
    assert f'+0.0200 [{0.02 - half:+.4f}, {0.02 + half:+.4f}]' in out
    assert '30.0000 +- 1.0000 (n=3)' in out  # the seg baseline
    # a second run never touches the first one's files
    module.main(['--work-dir', work, '--seeds', '0', '1', '--tasks', 'pose'])
    assert osp.isfile(osp.join(work, 'seed_statistics-2.json'))
    assert osp.isfile(osp.join(work, 'seed_statistics-2.png'))
    assert osp.isdir(
        osp.join(work, 'td-hm_res18_1xb32-40e_synthetic-coco-128x96-seed0-2'))


@pytest.mark.parametrize('seeds, message', [
    (['1', '1'], '--seeds: seed 1 is given twice'),
    (['-1'], r'--seeds: a seed must be in \[0, 2\*\*32\), got -1'),
    (['x'], "argument --seeds: invalid int value: 'x'"),
])
def test_bad_seeds_are_one_line(fake_mim, tmp_path, capsys, seeds, message):
    module, commands = fake_mim
    with pytest.raises(SystemExit) as info:
        module.main(['--work-dir', str(tmp_path / 'd'), '--seeds', *seeds])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(': error: ' + message + '$', last), last
    assert commands == []


# What a seed reaches ----------------------------------------------------


def seeded_runner(config: str, seed: int, work_dir: str):
    """The Runner ``mim train CONFIG --cfg-options randomness.seed=SEED``
    builds (from the current directory's data/)."""
    from mmengine.config import Config

    from mmadc.engine.independent_runner import build_independent_runner
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'randomness.seed': seed})
    cfg.work_dir = work_dir
    return build_independent_runner(cfg)


def first_batch(runner):
    """The samples of the first training batch, in order, and its
    inputs."""
    batch = next(iter(runner.train_loop.dataloader))
    order = [
        s.metainfo.get('id', s.metainfo.get('img_path'))
        for s in batch['data_samples']
    ]
    return order, [x.clone() for x in batch['inputs']]


def same_inputs(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y)
                                    for x, y in zip(a, b))


def stem_weight(runner):
    return next(p for n, p in runner.model.named_parameters()
                if 'backbone' in n).detach().clone()


@pytest.mark.parametrize('config', [POSE_CFG, SEG_ADC_CFG])
def test_the_seed_sets_weights_order_and_augmentation(config, data_workspace,
                                                      tmp_path, monkeypatch):
    monkeypatch.chdir(data_workspace)
    torch.set_num_threads(1)
    runs = {}
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        runner = seeded_runner(config, seed, str(tmp_path / name))
        assert runner.seed == seed
        runs[name] = (stem_weight(runner), *first_batch(runner))
    weight, order, batch = runs['a']
    torch.testing.assert_close(runs['b'][0], weight, rtol=0, atol=0)
    assert runs['b'][1] == order
    assert same_inputs(runs['b'][2], batch)
    assert not torch.equal(runs['c'][0], weight)
    assert runs['c'][1] != order
    assert not same_inputs(runs['c'][2], batch)
    # the augmentation too: a sample in both first batches is drawn
    # differently (a flip, another box or crop) under the other seed
    other = dict(zip(runs['c'][1], runs['c'][2]))
    common = [(x, other[k]) for k, x in zip(order, batch) if k in other]
    assert common and not same_inputs(*zip(*common))


def test_a_seed_gives_both_models_the_same_batches(data_workspace, tmp_path,
                                                   monkeypatch):
    """The pairing: with one seed the baseline and ADC see the same first
    batch (order and augmentation), whatever their weights draw."""
    monkeypatch.chdir(data_workspace)
    base = first_batch(seeded_runner(POSE_CFG, 3, str(tmp_path / 'b')))
    adc = first_batch(seeded_runner(POSE_ADC_CFG, 3, str(tmp_path / 'a')))
    assert base[0] == adc[0]
    assert same_inputs(base[1], adc[1])


# For real: mim train on a two-iteration schedule ------------------------


@pytest.mark.slow
def test_seeds_end_to_end_with_mim(data_workspace, tmp_path, monkeypatch):
    """``run_demo.py --tasks seg --seeds 0 1`` with the segmentation demo
    configs cut to two iterations: four mim trainings, each with its seed
    in the config it ran, and the statistics of their results."""
    module = load_run_demo()
    configs = tmp_path / 'configs'
    configs.mkdir()
    for job in module.JOBS:
        if job['task'] == 'seg':
            base = osp.join(REPO_ROOT, 'configs', 'demo', job['config'])
            (configs / job['config']).write_text(
                f'_base_ = [{base!r}]\n'
                'train_cfg = dict(max_iters=2, val_interval=2)\n'
                'default_hooks = dict(checkpoint=dict(interval=2))\n')
    monkeypatch.setattr(module, 'DEMO_CFG_DIR', str(configs))
    monkeypatch.setattr(module, 'ROOT', data_workspace)
    monkeypatch.setattr(module, 'ensure_data', lambda task: None)
    monkeypatch.chdir(tmp_path)
    work = str(tmp_path / 'demo')
    results = module.main(
        ['--tasks', 'seg', '--seeds', '0', '1', '--work-dir', work])
    from mmengine.config import Config
    assert [(r['adc'], r['seed']) for r in results] == [(False, 0), (True, 0),
                                                        (False, 1), (True, 1)]
    for r in results:
        assert r['work_dir'].endswith(f'-seed{r["seed"]}')
        ran = Config.fromfile(
            osp.join(r['work_dir'], osp.basename(r['config'])))
        assert ran.randomness.seed == r['seed']
        assert 0 <= r['value'] <= 100
    # the seeds trained different weights
    first, second = (
        torch.load(osp.join(r['work_dir'], 'iter_2.pth'),
                   map_location='cpu')['state_dict'] for r in results[:3:2])
    assert any(not torch.equal(first[k], second[k]) for k in first)
    with open(osp.join(work, 'seed_statistics.json')) as f:
        (seg, ) = json.load(f)
    adc = [r['value'] for r in results if r['adc']]
    base = [r['value'] for r in results if not r['adc']]
    assert seg['adc_minus_baseline']['value'] == pytest.approx(
        np.mean(adc) - np.mean(base))
    if np.ptp(np.subtract(adc, base)) > 0:
        ci = stats.ttest_rel(adc, base).confidence_interval(0.95)
        assert seg['adc_minus_baseline']['interval'] == pytest.approx(
            [ci.low, ci.high])
