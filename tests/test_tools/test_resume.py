# Copyright (c) mmadc contributors. All rights reserved.
"""Resume regression test: torch >= 2.6 loads with ``weights_only=True``.

Train two epochs without interruption (run A, which also leaves the
epoch-1 checkpoint), resume a second run from that epoch-1 checkpoint to
epoch 2 (run B), and require the two epoch-2 checkpoints to agree in
counters, weights and optimizer state.
"""
import os.path as osp
import pickle
import subprocess
import textwrap

import pytest
import torch
from conftest import PYTHON, REPO_ROOT, run_cli

import mmadc  # noqa: F401  registers the checkpoint globals
from mmadc.compat.checkpoint_globals import (CHECKPOINT_GLOBALS,
                                             allow_checkpoint_globals,
                                             allowed_checkpoint_globals)

pytestmark = pytest.mark.slow

TORCH = tuple(int(part) for part in torch.__version__.split('.')[:2])

TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')
POSE_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                    'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')
SEG_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                   'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py')


@pytest.fixture(scope='module')
def deterministic_pose_cfg(tmp_path_factory) -> str:
    """The pose demo without random augmentation or shuffling, so an
    interrupted and an uninterrupted run see the same batches."""
    path = tmp_path_factory.mktemp('cfg') / 'pose_deterministic.py'
    path.write_text(
        textwrap.dedent(f'''
        _base_ = [{POSE_CFG!r}]
        codec = dict(type='MSRAHeatmap', input_size=(96, 128),
                     heatmap_size=(24, 32), sigma=2)
        train_pipeline = [
            dict(type='LoadImage'),
            dict(type='GetBBoxCenterScale'),
            dict(type='TopdownAffine', input_size=codec['input_size']),
            dict(type='GenerateTarget', encoder=codec),
            dict(type='PackPoseInputs'),
        ]
        train_dataloader = dict(
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(pipeline=train_pipeline))
        # two epochs, a checkpoint and a validation after each, and an LR
        # step in between so the scheduler state matters too
        train_cfg = dict(max_epochs=2, val_interval=1)
        default_hooks = dict(checkpoint=dict(interval=1))
        param_scheduler = [
            dict(type='MultiStepLR', begin=0, end=2, milestones=[1],
                 gamma=0.1, by_epoch=True)
        ]
        '''))
    return str(path)


@pytest.fixture(scope='module')
def resumed_runs(data_workspace, deterministic_pose_cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    straight, resumed = str(root / 'straight'), str(root / 'resumed')
    run_cli([PYTHON, TRAIN, deterministic_pose_cfg, '--work-dir', straight],
            cwd=data_workspace)
    run_cli([
        PYTHON, TRAIN, deterministic_pose_cfg, '--work-dir', resumed,
        '--resume',
        osp.join(straight, 'epoch_1.pth')
    ],
            cwd=data_workspace)
    return straight, resumed


@pytest.mark.skipif(
    TORCH < (2, 6), reason='torch.load defaults to weights_only since 2.6')
def test_checkpoint_needs_the_globals(resumed_runs):
    """Without mmadc, torch's weights-only load refuses the checkpoint:
    the gap is real and mmadc closes it."""
    ckpt = osp.join(resumed_runs[0], 'epoch_1.pth')
    proc = subprocess.run(
        [PYTHON, '-c', f'import torch; torch.load({ckpt!r})'],
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stderr
    torch.load(ckpt)  # mmadc is imported here: loads


def test_resume_matches_uninterrupted_run(resumed_runs):
    straight, resumed = resumed_runs
    a = torch.load(osp.join(straight, 'epoch_2.pth'), map_location='cpu')
    b = torch.load(osp.join(resumed, 'epoch_2.pth'), map_location='cpu')
    assert a['meta']['epoch'] == b['meta']['epoch'] == 2
    assert a['meta']['iter'] == b['meta']['iter'] > 0
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(
            b['state_dict'][key], value, rtol=1e-5, atol=1e-6, msg=key)
    opt_a, opt_b = a['optimizer']['state'], b['optimizer']['state']
    assert opt_a.keys() == opt_b.keys() and len(opt_a) > 0
    for param_id, state in opt_a.items():
        for name, value in state.items():
            torch.testing.assert_close(
                opt_b[param_id][name], value, rtol=1e-5, atol=1e-6)
    assert a['optimizer']['param_groups'][0]['lr'] == \
        b['optimizer']['param_groups'][0]['lr']
    # the first run's epoch-1 checkpoint is left untouched
    assert osp.isfile(osp.join(straight, 'epoch_1.pth'))


@pytest.mark.skipif(
    TORCH < (2, 4),
    reason='add_safe_globals arrived in torch 2.4; before, tests/test_compat '
    'checks the restricted unpickler')
def test_allowed_globals_are_exactly_what_checkpoints_need(
        resumed_runs, data_workspace, tmp_path):
    """The allowed globals load pose and seg training checkpoints, and
    dropping any one of them breaks loading one: no blanket allowance."""
    seg_dir = str(tmp_path / 'seg')
    run_cli([
        PYTHON, TRAIN, SEG_CFG, '--work-dir', seg_dir, '--cfg-options',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2'
    ],
            cwd=data_workspace)
    ckpts = (osp.join(resumed_runs[0],
                      'epoch_2.pth'), osp.join(seg_dir, 'iter_2.pth'))
    allowed = allowed_checkpoint_globals()
    assert len(allowed) == len(CHECKPOINT_GLOBALS)

    def loads_all(safe: list) -> bool:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(safe)
        try:
            for ckpt in ckpts:
                torch.load(ckpt, map_location='cpu')
        except pickle.UnpicklingError:
            return False
        return True

    try:
        assert loads_all(allowed)
        for i, name in enumerate(CHECKPOINT_GLOBALS):
            assert not loads_all(allowed[:i] + allowed[i + 1:]), \
                f'{name} is allowed but no checkpoint needs it'
    finally:
        torch.serialization.clear_safe_globals()
        allow_checkpoint_globals()


def _augmented_cfg(directory,
                   base: str,
                   by_epoch: bool,
                   with_hook: bool = True) -> str:
    """The demo config itself (its random augmentation), shortened: two
    epochs (pose) or four iterations (seg), a checkpoint and a validation
    half-way."""
    path = directory / f'{"pose" if by_epoch else "seg"}_{with_hook}.py'
    schedule = ('train_cfg = dict(max_epochs=2, val_interval=1)\n'
                'default_hooks = dict(checkpoint=dict(interval=1))\n' if
                by_epoch else 'train_cfg = dict(max_iters=4, val_interval=2)\n'
                'default_hooks = dict(checkpoint=dict(interval=2))\n')
    hooks = '' if with_hook else (
        "custom_hooks = [h for h in _base_.custom_hooks\n"
        "                if h['type'] != 'RandomStateHook']\n")
    path.write_text(f'_base_ = [{base!r}]\n' + schedule + hooks)
    return str(path)


def _weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def _max_difference(a, b):
    return max(
        float((a[k].double() - b[k].double()).abs().max()) for k in a
        if a[k].is_floating_point())


@pytest.mark.parametrize('by_epoch', [True, False], ids=['pose', 'seg'])
def test_resume_with_augmentation_matches_uninterrupted_run(
        data_workspace, tmp_path, by_epoch):
    """With the demo's random augmentation, a run resumed from the
    half-way checkpoint ends with the uninterrupted run's weights (the
    checkpoint carries the random states); without RandomStateHook it does
    not, so the comparison is a real one."""
    base, half, last = ((POSE_CFG, 'epoch_1.pth',
                         'epoch_2.pth') if by_epoch else
                        (SEG_CFG, 'iter_2.pth', 'iter_4.pth'))
    results = {}
    for with_hook in (True, False):
        cfg = _augmented_cfg(tmp_path, base, by_epoch, with_hook)
        straight = str(tmp_path / f'straight_{with_hook}')
        resumed = str(tmp_path / f'resumed_{with_hook}')
        run_cli([PYTHON, TRAIN, cfg, '--work-dir', straight],
                cwd=data_workspace)
        run_cli([
            PYTHON, TRAIN, cfg, '--work-dir', resumed, '--resume',
            osp.join(straight, half)
        ],
                cwd=data_workspace)
        results[with_hook] = _max_difference(
            _weights(osp.join(straight, last)),
            _weights(osp.join(resumed, last)))
    assert results[True] < 1e-5, results
    assert results[False] > 1e-3, results
