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
from demo_helpers import POSE_ADC_CFG, POSE_CFG, write_checkpoint

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


def test_baseline_checkpoint_on_adc_config_on_purpose(data_workspace, tmp_path,
                                                      monkeypatch):
    """With --allow-baseline-checkpoint a baseline checkpoint evaluates in
    the ADC model with every rate 1, which is the baseline network: the
    predictions are the baseline config's own. --overwrite replaces the
    metrics file of an earlier run."""
    monkeypatch.chdir(data_workspace)
    ckpt = write_checkpoint(POSE_CFG, str(tmp_path / 'baseline.pth'))
    with pytest.raises(SystemExit):
        run_test_tool([POSE_ADC_CFG, ckpt])
    dumps = {}
    for name, config in (('baseline', POSE_CFG), ('adc', POSE_ADC_CFG)):
        dumps[name] = str(tmp_path / f'{name}.pkl')
        run_test_tool([
            config, ckpt, '--work-dir',
            str(tmp_path / name), '--dump', dumps[name]
        ] + (['--allow-baseline-checkpoint'] if name == 'adc' else []))
    preds = {}
    for name, path in dumps.items():
        with open(path, 'rb') as f:
            preds[name] = pickle.load(f)
    assert len(preds['adc']) == len(preds['baseline']) > 0
    for adc, base in zip(preds['adc'], preds['baseline']):
        np.testing.assert_allclose(
            adc['pred_instances']['keypoints'],
            base['pred_instances']['keypoints'],
            atol=1e-3)
    metrics = tmp_path / 'metrics.json'
    metrics.write_text('{"earlier": 1}')
    with pytest.raises(SystemExit):
        run_test_tool([POSE_CFG, ckpt, '--out', str(metrics)])
    assert json.loads(metrics.read_text()) == {'earlier': 1}
    run_test_tool([
        POSE_CFG, ckpt, '--work-dir',
        str(tmp_path / 'again'), '--out',
        str(metrics), '--overwrite'
    ])
    assert 0 <= json.loads(metrics.read_text())['coco/AP'] <= 1
