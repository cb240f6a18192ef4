# Copyright (c) mmadc contributors. All rights reserved.
"""tools/test.py's upstream flags (--show-dir, --dump, --out) for pose and
segmentation, on the generated data with a written checkpoint."""
import glob
import json
import os
import os.path as osp
import pickle

import mmcv
import numpy as np
import pytest
from demo_helpers import POSE_CFG, write_checkpoint

from mmadc.entrypoints.test import main as run_test_tool

SEG_CFG = POSE_CFG.replace(
    'td-hm_res18_1xb32-40e_synthetic-coco-128x96',
    'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128')


def test_pose_flags(data_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(data_workspace)
    ckpt = write_checkpoint(POSE_CFG, str(tmp_path / 'pose.pth'))
    dump, out = str(tmp_path / 'preds.pkl'), str(tmp_path / 'metrics.json')
    show = 'vis'
    run_test_tool([
        POSE_CFG, ckpt, '--work-dir',
        str(tmp_path / 'run'), '--dump', dump, '--out', out, '--show-dir', show
    ])
    with open(out) as f:
        assert 0 <= json.load(f)['coco/AP'] <= 1
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    with open(
            osp.join('data', 'synthetic_coco', 'person_detection_results',
                     'COCO_val2017_detections_AP_H_56_person.json')) as f:
        boxes = json.load(f)
    # one prediction per detected box, each with 17 keypoints
    assert len(preds) == len(boxes)
    assert all(p['pred_instances']['keypoints'].shape == (1, 17, 2)
               for p in preds)
    drawn = glob.glob(str(tmp_path / 'run' / '*' / show / '*'))
    assert len(drawn) == len(boxes)
    # refuses to replace the files of that run
    with pytest.raises(SystemExit):
        run_test_tool([POSE_CFG, ckpt, '--dump', dump])


def test_seg_flags(data_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(data_workspace)
    ckpt = write_checkpoint(SEG_CFG, str(tmp_path / 'seg.pth'))
    dump, out = str(tmp_path / 'preds.pkl'), str(tmp_path / 'labels')
    show = str(tmp_path / 'vis')
    run_test_tool([
        SEG_CFG, ckpt, '--work-dir',
        str(tmp_path / 'run'), '--dump', dump, '--out', out, '--show-dir', show
    ])
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == len(os.listdir(out)) > 0
    for pred in preds:
        name = osp.splitext(osp.basename(pred['img_path']))[0] + '.png'
        label = mmcv.imread(osp.join(out, name), flag='unchanged')
        np.testing.assert_array_equal(label,
                                      pred['pred_sem_seg']['data'][0].numpy())
    assert glob.glob(osp.join(show, '**', '*.png'), recursive=True)
