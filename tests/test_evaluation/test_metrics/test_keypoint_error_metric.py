# Copyright (c) mmadc contributors. All rights reserved.
"""KeypointErrorMetric: mmpose's CocoMetric post-processing, then the
keypoint error classes, on a hand-built scene with a known answer."""
import json

import numpy as np
import pytest
from keypoint_helpers import L_SHO, R_SHO, person_xy
from mmpose.datasets.datasets.utils import parse_pose_metainfo

import mmadc  # noqa: F401  registers the metric
from mmadc.evaluation import KeypointErrorMetric


def write_ground_truth(path, meta) -> None:
    anns = []
    for k, shift in enumerate((0., 300.)):
        xy = person_xy(shift)
        kpts = np.concatenate([xy, np.full((17, 1), 2.)], 1)
        anns.append(
            dict(
                id=k + 1,
                image_id=1,
                category_id=1,
                iscrowd=0,
                area=10000.,
                num_keypoints=17,
                bbox=[xy[:, 0].min(), xy[:, 1].min(), 60., 200.],
                keypoints=kpts.reshape(-1).tolist()))
    path.write_text(
        json.dumps(
            dict(
                images=[dict(id=1, width=640, height=480, file_name='a.jpg')],
                annotations=anns,
                categories=[
                    dict(
                        id=1,
                        name='person',
                        keypoints=[
                            meta['keypoint_id2name'][i] for i in range(17)
                        ],
                        skeleton=[])
                ])))


def sample(xy: np.ndarray, ann_id: int) -> dict:
    return dict(
        id=ann_id,
        img_id=1,
        category_id=1,
        ori_shape=(480, 640),
        pred_instances=dict(
            keypoints=xy[None],
            keypoint_scores=np.ones((1, 17)),
            bbox_scores=np.ones(1)),
        gt_instances=dict(bbox_scales=np.array([[100., 100.]])))


def test_keypoint_error_metric_classifies_the_results(tmp_path):
    meta = parse_pose_metainfo(
        dict(from_file='configs/_base_/datasets/coco.py'))
    gt = tmp_path / 'gt.json'
    write_ground_truth(gt, meta)
    metric = KeypointErrorMetric(
        ann_file=str(gt), outfile_prefix=str(tmp_path / 'results'))
    metric.dataset_meta = meta
    a, b = person_xy(), person_xy(300.)
    b_inverted = b.copy()
    b_inverted[L_SHO] = b[R_SHO]  # B's left shoulder on its right one
    metric.process({}, [sample(a, 1), sample(b_inverted, 2)])
    metrics = metric.evaluate(2)
    # by hand: 34 scored keypoints, one inversion, the rest good
    assert metric.report['num_matched'] == 2
    assert metric.report['counts'] == dict(
        good=33, jitter=0, inversion=1, swap=0, miss=0)
    assert metrics['keypoint_errors/inversion'] == pytest.approx(1 / 34)
    assert metrics['keypoint_errors/good'] == pytest.approx(33 / 34)
    assert (tmp_path / 'results.keypoints.json').is_file()
    with pytest.raises(ValueError, match='rule'):
        KeypointErrorMetric(ann_file=str(gt), rule='nearest')
