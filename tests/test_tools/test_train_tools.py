# Copyright (c) mmadc contributors. All rights reserved.
"""Smoke trainings through every user route: mim (pose and seg) and
tools/train.py + tools/test.py, on the generated data sets."""
import json
import os
import os.path as osp

import pytest
from conftest import PYTHON, REPO_ROOT, run_cli

POSE_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                    'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')
SEG_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                   'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py')
MIM = osp.join(osp.dirname(PYTHON), 'mim')
TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')
TEST = osp.join(REPO_ROOT, 'tools', 'test.py')

pytestmark = pytest.mark.slow


def val_records(work_dir: str) -> list:
    records = []
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(dirpath, 'scalars.json')) as f:
                records += [json.loads(line) for line in f]
    return [r for r in records if 'loss' not in r]


def test_mim_train_mmpose(data_workspace, tmp_path):
    work_dir = str(tmp_path / 'pose')
    run_cli([
        MIM, 'train', 'mmpose', POSE_CFG, '--work-dir', work_dir,
        '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'
    ],
            cwd=data_workspace)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    (record, ) = val_records(work_dir)
    assert 0.0 <= record['coco/AP'] <= 1.0


def test_tools_train_and_test_mmpose(data_workspace, tmp_path):
    work_dir = str(tmp_path / 'pose')
    run_cli([
        PYTHON, TRAIN, POSE_CFG, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'
    ],
            cwd=data_workspace)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    out = str(tmp_path / 'preds.pkl')
    proc = run_cli([
        PYTHON, TEST, POSE_CFG, ckpt, '--work-dir',
        str(tmp_path / 'test'), '--out', out
    ],
                   cwd=data_workspace)
    assert 'coco/AP' in proc.stdout + proc.stderr
    assert osp.getsize(out) > 0


def test_mim_train_mmseg_and_tools_test(data_workspace, tmp_path):
    work_dir = str(tmp_path / 'seg')
    run_cli([
        MIM, 'train', 'mmseg', SEG_CFG, '--work-dir', work_dir,
        '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4'
    ],
            cwd=data_workspace)
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)
    (record, ) = val_records(work_dir)
    assert 0.0 <= record['mIoU'] <= 100.0
    proc = run_cli(
        [PYTHON, TEST, SEG_CFG, ckpt, '--work-dir',
         str(tmp_path / 'test')],
        cwd=data_workspace)
    assert 'mIoU' in proc.stdout + proc.stderr


def test_train_refuses_missing_resume_checkpoint(data_workspace, tmp_path):
    import subprocess
    proc = subprocess.run([
        PYTHON, TRAIN, POSE_CFG, '--work-dir',
        str(tmp_path), '--resume',
        str(tmp_path / 'nope.pth')
    ],
                          cwd=data_workspace,
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert '--resume: checkpoint' in proc.stderr


def test_adc_demo_resumes_from_its_last_checkpoint(data_workspace, tmp_path):
    cfg = osp.join(REPO_ROOT, 'configs', 'demo',
                   'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')
    work_dir = str(tmp_path / 'adc')
    common = [
        '--work-dir', work_dir, '--cfg-options', 'train_cfg.val_interval=1'
    ]
    run_cli([PYTHON, TRAIN, cfg, *common, 'train_cfg.max_epochs=1'],
            cwd=data_workspace)
    proc = run_cli(
        [PYTHON, TRAIN, cfg, '--resume', *common, 'train_cfg.max_epochs=2'],
        cwd=data_workspace)
    log = proc.stdout + proc.stderr
    assert 'Auto resumed from the latest checkpoint' in log
    assert 'resumed epoch: 1' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))


def _fake_run(work_dir, config):
    """A work dir as a finished run of ``config`` leaves it: its model's
    weights in epoch_1.pth and last_checkpoint naming it."""
    from mmengine.config import Config

    from mmadc.entrypoints.run_guard import build_config_model
    model = build_config_model(Config.fromfile(config))
    os.makedirs(work_dir, exist_ok=True)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    import torch
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    return ckpt


def test_train_refuses_another_models_work_dir_and_checkpoint(
        data_workspace, tmp_path):
    """Training the ADC demo into the baseline's work dir, or resuming it
    from the baseline's checkpoint, stops with one line before anything is
    written; the baseline's files stay as they were."""
    import subprocess
    adc_cfg = osp.join(REPO_ROOT, 'configs', 'demo',
                       'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')
    work_dir = str(tmp_path / 'baseline')
    ckpt = _fake_run(work_dir, POSE_CFG)
    before = sorted(os.listdir(work_dir)), osp.getmtime(ckpt)
    for extra, pattern in (([], f'work dir "{work_dir}" holds a run of '
                            'another model'), (['--resume'],
                                               '--resume: checkpoint'),
                           (['--resume', ckpt], f'--resume: checkpoint '
                            f'"{ckpt}" is not of the model')):
        proc = subprocess.run(
            [PYTHON, TRAIN, adc_cfg, '--work-dir', work_dir, *extra],
            cwd=data_workspace,
            capture_output=True,
            text=True)
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        # the one-line form of every tool (mmadc.utils.cli.run_cli), which
        # argparse's usage errors have too
        assert last.startswith('train.py: error: ') and pattern in last, \
            proc.stderr
        assert 'rate_regressor' in last and 'Traceback' not in proc.stderr
    assert (sorted(os.listdir(work_dir)), osp.getmtime(ckpt)) == before
