# Copyright (c) mmadc contributors. All rights reserved.
"""Keypoint error classification on hand-built scenes.

Scene: one 640x480 image with persons A and B, both of area 10000
(``s = 100``). Person A's left keypoints (odd indices) are at x = 100, its
right ones (even indices) at x = 160, the nose at x = 130; pair ``p`` of
keypoints (1-2, 3-4, ...) is at y = 40 + 25 p. Person B is A shifted by
300 px in x. For the left shoulder (index 5, sigma 0.079, k = 0.158):
``2 s^2 k^2 = 2 * 10000 * 0.158^2 = 499.28``, so a prediction at distance
``d`` has ``ks = exp(-d^2 / 499.28)``:

- d = 5:  exp(-25 / 499.28)  = 0.951161  -> good
- d = 10: exp(-100 / 499.28) = 0.818495  -> jitter
- d = 12: exp(-144 / 499.28) = 0.749450  -> jitter
- d = 60 (A's right shoulder): exp(-3600 / 499.28) = 0.000739 (< 0.5)
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from analysis_helpers import load_tool
from keypoint_helpers import L_SHO, R_SHO, person_xy
from synthetic_data.coco_scene import COCO_KEYPOINT_NAMES

from mmadc.evaluation.functional.keypoint_errors import (
    analyze_keypoint_errors, classify_keypoints, coco_keypoint_sigmas,
    counterpart_indices, keypoint_similarity, match_predictions)

torch.set_num_threads(1)

COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def annotation(ann_id: int, xy: np.ndarray, vis=None, area=10000.) -> dict:
    vis = np.full(17, 2) if vis is None else np.asarray(vis)
    kpts = np.concatenate([xy, vis[:, None]], axis=1).reshape(-1)
    x0, y0 = xy.min(0) - 10
    x1, y1 = xy.max(0) + 10
    return dict(
        id=ann_id,
        image_id=1,
        category_id=1,
        keypoints=kpts.tolist(),
        num_keypoints=int((vis > 0).sum()),
        area=area,
        bbox=[float(x0), float(y0),
              float(x1 - x0),
              float(y1 - y0)],
        iscrowd=0)


def ground_truth(*anns) -> dict:
    return dict(
        images=[dict(id=1, width=640, height=480, file_name='1.jpg')],
        annotations=list(anns),
        categories=[
            dict(
                id=1,
                name='person',
                keypoints=list(COCO_KEYPOINT_NAMES),
                skeleton=[])
        ])


def prediction(xy: np.ndarray, score: float = 0.9) -> dict:
    kpts = np.concatenate([xy, np.ones((17, 1))], axis=1).reshape(-1)
    return dict(
        image_id=1, category_id=1, keypoints=kpts.tolist(), score=score)


def classify(pred_xy: np.ndarray, people, rule='definition'):
    gt_xy = np.stack(people)
    return classify_keypoints(pred_xy, 0, gt_xy,
                              np.ones(gt_xy.shape[:2], bool),
                              np.full(len(people), 10000.),
                              coco_keypoint_sigmas(), COCO_FLIP, rule)


def test_constants():
    assert counterpart_indices(COCO_KEYPOINT_NAMES) == COCO_FLIP
    assert coco_keypoint_sigmas()[L_SHO] == pytest.approx(0.079)
    assert coco_keypoint_sigmas().shape == (17, )


def test_keypoint_similarity_hand_values():
    sigmas = coco_keypoint_sigmas()
    gt = person_xy()
    for d, expected in ((0, 1.0), (5, 0.951161), (10, 0.818495),
                        (12, 0.749450), (60, 0.000739)):
        pred = gt.copy()
        pred[L_SHO, 0] += d
        ks = keypoint_similarity(pred, gt, 10000., sigmas)
        assert ks[L_SHO] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('rule', ['definition', 'argmax'])
def test_exactly_on_ground_truth_is_good(rule):
    a, b = person_xy(), person_xy(300)
    assert classify(a.copy(), [a, b], rule) == ['good'] * 17


@pytest.mark.parametrize('rule', ['definition', 'argmax'])
@pytest.mark.parametrize('dx, expected', [(5, 'good'), (10, 'jitter'),
                                          (12, 'jitter')])
def test_small_offsets(rule, dx, expected):
    a, b = person_xy(), person_xy(300)
    pred = a.copy()
    pred[L_SHO, 0] -= dx  # towards nobody else
    labels = classify(pred, [a, b], rule)
    assert labels[L_SHO] == expected
    assert labels[:L_SHO] + labels[L_SHO + 1:] == ['good'] * 16


@pytest.mark.parametrize('rule', ['definition', 'argmax'])
def test_mirrored_joint_is_inversion(rule):
    a, b = person_xy(), person_xy(300)
    pred = a.copy()
    pred[L_SHO] = a[R_SHO]  # left shoulder predicted on the right one
    labels = classify(pred, [a, b], rule)
    assert labels[L_SHO] == 'inversion'
    assert labels.count('good') == 16


@pytest.mark.parametrize('rule', ['definition', 'argmax'])
def test_other_persons_joint_is_swap(rule):
    a, b = person_xy(), person_xy(300)
    pred = a.copy()
    pred[L_SHO] = b[L_SHO]
    assert classify(pred, [a, b], rule)[L_SHO] == 'swap'
    pred[L_SHO] = b[R_SHO]  # B's counterpart: also a similar part of B
    assert classify(pred, [a, b], rule)[L_SHO] == 'swap'


@pytest.mark.parametrize('rule', ['definition', 'argmax'])
def test_far_away_is_miss(rule):
    a, b = person_xy(), person_xy(300)
    pred = a.copy()
    pred[L_SHO] = (600., 450.)
    assert classify(pred, [a, b], rule)[L_SHO] == 'miss'
    # another person's *different* joint is not a similar part: miss
    pred[L_SHO] = b[0]
    assert classify(pred, [a, b], rule)[L_SHO] == 'miss'


def test_nose_has_no_inversion():
    a = person_xy()
    pred = a.copy()
    pred[0] = (130., 400.)
    assert classify(pred, [a])[0] == 'miss'


def test_rules_differ_when_near_two_parts():
    # B's left shoulder 12 px from A's: a prediction exactly on B's is a
    # jitter of A's (ks 0.7495) by definition, but B's part is more similar
    a, b = person_xy(), person_xy(300)
    b[L_SHO] = a[L_SHO] + (12., 0.)
    pred = a.copy()
    pred[L_SHO] = b[L_SHO]
    assert classify(pred, [a, b], 'definition')[L_SHO] == 'jitter'
    assert classify(pred, [a, b], 'argmax')[L_SHO] == 'swap'


def test_invisible_keypoints_are_not_scored():
    a = person_xy()
    vis = np.ones((1, 17), bool)
    vis[0, L_SHO] = False
    pred = a.copy()
    pred[R_SHO] = a[L_SHO]  # the counterpart is invisible: no inversion
    labels = classify_keypoints(pred, 0, a[None], vis, np.array([10000.]),
                                coco_keypoint_sigmas(), COCO_FLIP)
    assert labels[L_SHO] is None
    assert labels[R_SHO] == 'miss'


def test_matching_is_greedy_by_score_and_one_to_one():
    sigmas = coco_keypoint_sigmas()
    a, b = person_xy(), person_xy(300)
    gt_xy = np.stack([a, b])
    vis = np.ones((2, 17), bool)
    areas = np.full(2, 10000.)
    near_a = a + 3.
    far = a + 1000.
    # both near A: the higher score takes A; the other may not take A too,
    # and B is too far from it (OKS ~0) to be matched
    preds = np.stack([near_a, a, far])
    matches = match_predictions(preds, np.array([0.5, 0.9, 0.7]), gt_xy, vis,
                                areas, sigmas)
    assert [(d, g) for d, g, _ in matches] == [(1, 0)]
    assert matches[0][2] == pytest.approx(1.0)
    preds = np.stack([b, near_a])
    matches = match_predictions(preds, np.array([0.1, 0.2]), gt_xy, vis, areas,
                                sigmas)
    assert [(d, g) for d, g, _ in matches] == [(1, 0), (0, 1)]
    # max_dets keeps the best scores only
    matches = match_predictions(
        preds, np.array([0.1, 0.2]), gt_xy, vis, areas, sigmas, max_dets=1)
    assert [(d, g) for d, g, _ in matches] == [(1, 0)]


def test_analyze_counts_and_proportions():
    a, b = person_xy(), person_xy(300)
    vis_a = np.full(17, 2)
    vis_a[0] = 0  # A's nose unannotated: 16 scored keypoints for A
    gt = ground_truth(annotation(1, a, vis_a), annotation(2, b))
    pred_a = a.copy()
    pred_a[L_SHO] = a[R_SHO]  # inversion
    # left elbow 10 px off: sigma .072, exp(-100 / (2e4 * .144^2)) = .786
    pred_a[L_SHO + 2, 0] -= 10
    pred_b = b.copy()
    pred_b[9] = a[9]  # B's left wrist on A's: swap
    pred_b[16] = (10., 470.)  # B's right ankle: miss
    preds = [
        prediction(pred_a, 0.9),
        prediction(pred_b, 0.8),
        prediction(a + 2000., 0.1)
    ]  # unmatched
    report = analyze_keypoint_errors(preds, gt)
    assert report['num_predictions'] == 3
    assert report['num_matched'] == 2
    assert report['num_unmatched_predictions'] == 1
    assert report['num_gt_persons'] == 2
    assert report['num_scored_keypoints'] == 33
    assert dict(report['counts']) == dict(
        good=29, jitter=1, inversion=1, swap=1, miss=1)
    assert report['proportions']['miss'] == pytest.approx(1 / 33)
    assert report['proportions']['good'] == pytest.approx(29 / 33)
    shoulder = report['per_keypoint']['left_shoulder']
    assert shoulder['scored'] == 2
    assert shoulder['counts']['inversion'] == 1
    assert shoulder['proportions']['inversion'] == pytest.approx(0.5)
    assert report['per_keypoint']['nose']['scored'] == 1


def test_analyze_rejects_bad_input():
    gt = ground_truth(annotation(1, person_xy()))
    bad = prediction(person_xy())
    bad['image_id'] = 7
    with pytest.raises(ValueError, match='image_id 7'):
        analyze_keypoint_errors([bad], gt, source='preds.json')
    short = prediction(person_xy())
    short['keypoints'] = short['keypoints'][:-3]
    with pytest.raises(ValueError, match='expected 51'):
        analyze_keypoint_errors([short], gt)
    with pytest.raises(ValueError, match='rule'):
        analyze_keypoint_errors([], gt, rule='nearest')


def test_error_analysis_tool(tmp_path):
    a, b = person_xy(), person_xy(300)
    gt_path = tmp_path / 'gt.json'
    gt_path.write_text(
        json.dumps(ground_truth(annotation(1, a), annotation(2, b))))
    base = [prediction(a), prediction(b, 0.8)]
    base[0]['keypoints'][3 * L_SHO:3 * L_SHO + 2] = a[R_SHO].tolist()
    adc = [prediction(a), prediction(b, 0.8)]
    (tmp_path / 'base.json').write_text(json.dumps(base))
    (tmp_path / 'adc.json').write_text(json.dumps(adc))
    out = tmp_path / 'out'
    tool = load_tool('error_analysis')
    reports = tool.main([
        str(gt_path),
        str(tmp_path / 'base.json'),
        str(tmp_path / 'adc.json'), '--labels', 'baseline', 'ADC', '--out-dir',
        str(out)
    ])
    assert reports['baseline']['counts']['inversion'] == 1
    assert reports['ADC']['proportions']['good'] == 1.0
    with open(out / 'error_analysis.json') as f:
        saved = json.load(f)
    assert saved['reports']['baseline']['counts']['good'] == 33
    for name in ('errors_pie.png', 'errors_bar.png'):
        assert osp.getsize(out / name) > 1000
    with pytest.raises(FileNotFoundError, match='predictions'):
        tool.main([str(gt_path), str(tmp_path / 'missing.json')])
    # a truncated file: the error names the argument and the file
    truncated = tmp_path / 'truncated.json'
    truncated.write_text(gt_path.read_text()[:100])
    with pytest.raises(ValueError, match=f'gt: "{truncated}" is not valid'):
        tool.main([str(truncated), str(tmp_path / 'adc.json')])
    with pytest.raises(ValueError, match='labels'):
        tool.main(
            [str(gt_path),
             str(tmp_path / 'adc.json'), '--labels', 'a', 'b'])
