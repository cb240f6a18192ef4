# Copyright (c) mmadc contributors. All rights reserved.
"""Two-process CPU training through PyTorch's launcher (gloo): the path
users take to multi-GPU and multi-node training."""
import json
import os
import os.path as osp
import textwrap

import pytest
from conftest import PYTHON, REPO_ROOT, run_cli

pytestmark = pytest.mark.slow

POSE_ADC_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                        'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')


def test_two_process_training_splits_the_data(data_workspace, tmp_path):
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(
        textwrap.dedent(f'''
        _base_ = [{POSE_ADC_CFG!r}]
        custom_imports = dict(
            imports=['mmadc', 'sample_recorder'], allow_failed_imports=False)
        custom_hooks = [dict(type='SampleRecorderHook')]
        train_cfg = dict(max_epochs=1, val_interval=1)
        train_dataloader = dict(batch_size=4)
        '''))
    work_dir = str(tmp_path / 'work')
    env_path = os.pathsep.join([
        osp.join(REPO_ROOT, 'tests', 'helpers'),
        os.environ.get('PYTHONPATH', '')
    ])
    torchrun = osp.join(osp.dirname(PYTHON), 'torchrun')
    run_cli([
        'env', f'PYTHONPATH={env_path}', torchrun, '--nproc_per_node=2',
        '--master_port=29533',
        osp.join(REPO_ROOT, 'tools', 'train.py'),
        str(cfg), '--launcher', 'pytorch', '--work-dir', work_dir
    ],
            cwd=data_workspace)

    seen = []
    for rank in (0, 1):
        with open(osp.join(work_dir, f'samples_rank{rank}.json')) as f:
            seen.append({tuple(s) for s in json.load(f)})
    assert seen[0] and seen[1]
    # each rank trained on its own shard: no instance on both (the sampler
    # pads the last shard with at most world_size - 1 repeats)
    assert len(seen[0] & seen[1]) <= 1
    # validation ran across both processes and was gathered
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
