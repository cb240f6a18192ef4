# Copyright (c) mmadc contributors. All rights reserved.
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from synthetic_data import generate_coco_keypoints
from synthetic_data.coco import COCO_KEYPOINT_NAMES, COCO_SKELETON

IMAGE_SIZE = (320, 240)
NUM_TRAIN, NUM_VAL = 20, 6


@pytest.fixture(scope='module')
def coco_paths(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('coco') / 'synthetic_coco')
    return generate_coco_keypoints(
        out,
        num_train_images=NUM_TRAIN,
        num_val_images=NUM_VAL,
        image_size=IMAGE_SIZE,
        seed=0)


def _load(path):
    with open(path) as f:
        return json.load(f)


def _tree_bytes(root):
    """Every file under ``root`` with its content."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def test_layout(coco_paths):
    root = coco_paths['data_root']
    for rel in ('annotations/person_keypoints_train2017.json',
                'annotations/person_keypoints_val2017.json',
                'person_detection_results/'
                'COCO_val2017_detections_AP_H_56_person.json'):
        assert osp.isfile(osp.join(root, rel))
    assert coco_paths['train_ann'] == osp.join(
        root, 'annotations', 'person_keypoints_train2017.json')
    assert len(os.listdir(osp.join(root, 'train2017'))) == NUM_TRAIN
    assert len(os.listdir(osp.join(root, 'val2017'))) == NUM_VAL


@pytest.mark.parametrize('split', ['train', 'val'])
def test_annotations_are_valid_coco(coco_paths, split):
    coco = COCO(coco_paths[f'{split}_ann'])
    cats = coco.loadCats(coco.getCatIds())
    assert len(cats) == 1 and cats[0]['id'] == 1
    assert cats[0]['name'] == 'person'
    assert tuple(cats[0]['keypoints']) == COCO_KEYPOINT_NAMES
    assert cats[0]['skeleton'] == COCO_SKELETON
    assert len(coco.getImgIds()) == (
        NUM_TRAIN if split == 'train' else NUM_VAL)

    ann_ids = set()
    for img_id in coco.getImgIds():
        img_info = coco.loadImgs(img_id)[0]
        w, h = img_info['width'], img_info['height']
        assert (w, h) == IMAGE_SIZE
        img = cv2.imread(
            osp.join(coco_paths[f'{split}_img_dir'], img_info['file_name']))
        assert img is not None and img.shape == (h, w, 3)

        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            assert ann['id'] not in ann_ids
            ann_ids.add(ann['id'])
            assert ann['category_id'] == 1 and ann['iscrowd'] == 0
            kpts = np.array(ann['keypoints'], dtype=float).reshape(-1, 3)
            assert kpts.shape == (17, 3)
            assert set(kpts[:, 2]) <= {0, 1, 2}
            labelled = kpts[kpts[:, 2] > 0]
            assert ann['num_keypoints'] == len(labelled)
            # Unlabelled keypoints are zeroed, like real COCO.
            assert not kpts[kpts[:, 2] == 0, :2].any()
            x, y, bw, bh = ann['bbox']
            assert bw > 0 and bh > 0
            assert 0 <= x and x + bw <= w + 1e-6
            assert 0 <= y and y + bh <= h + 1e-6
            tol = 1.0
            assert np.all(labelled[:, 0] >= 0)
            assert np.all(labelled[:, 0] <= w - 1)
            assert np.all(labelled[:, 1] >= 0)
            assert np.all(labelled[:, 1] <= h - 1)
            assert np.all(labelled[:, 0] >= x - tol)
            assert np.all(labelled[:, 0] <= x + bw + tol)
            assert np.all(labelled[:, 1] >= y - tol)
            assert np.all(labelled[:, 1] <= y + bh + tol)
            # The silhouette polygons are real COCO polygons.
            assert ann['area'] > 0
            assert all(
                len(p) >= 6 and len(p) % 2 == 0 for p in ann['segmentation'])
            mask = coco.annToMask(ann)
            assert mask.shape == (h, w) and mask.any()


def test_scales_occlusion_and_visibility(coco_paths):
    anns = _load(coco_paths['train_ann'])['annotations']
    areas = np.array([a['area'] for a in anns])
    # COCO's area groups.
    assert (areas < 32**2).any()
    assert ((areas >= 32**2) & (areas <= 96**2)).any()
    assert (areas > 96**2).any()
    vis = np.concatenate(
        [np.array(a['keypoints']).reshape(-1, 3)[:, 2] for a in anns])
    # Visible, occluded and unlabelled (outside/back-facing) all occur.
    assert {0, 1, 2} <= set(vis.tolist())
    per_image = np.bincount([a['image_id'] for a in anns])
    assert per_image.max() >= 2


def test_detection_results(coco_paths):
    dets = _load(coco_paths['det_file'])
    assert isinstance(dets, list) and dets
    assert all(
        set(d) == {'image_id', 'category_id', 'bbox', 'score'} for d in dets)
    assert all(d['category_id'] == 1 and 0 < d['score'] <= 1 for d in dets)
    gt = COCO(coco_paths['val_ann'])
    res = gt.loadRes(coco_paths['det_file'])
    assert len(res.getAnnIds()) == len(dets)
    assert {d['image_id'] for d in dets} <= set(gt.getImgIds())
    # At least one detection per ground-truth person, plus false positives.
    assert len(dets) > len(gt.getAnnIds())
    assert min(d['score'] for d in dets) < 0.4


def test_determinism(tmp_path):
    kwargs = dict(num_train_images=3, num_val_images=2, image_size=(160, 120))
    a = generate_coco_keypoints(str(tmp_path / 'a'), seed=3, **kwargs)
    b = generate_coco_keypoints(str(tmp_path / 'b'), seed=3, **kwargs)
    c = generate_coco_keypoints(str(tmp_path / 'c'), seed=4, **kwargs)
    files_a = _tree_bytes(a['data_root'])
    assert files_a == _tree_bytes(b['data_root'])
    files_c = _tree_bytes(c['data_root'])
    assert files_a.keys() == files_c.keys()
    for rel in ('annotations/person_keypoints_train2017.json',
                'train2017/000000000001.jpg'):
        assert files_a[rel] != files_c[rel]


def test_refuses_to_overwrite(tmp_path):
    out = str(tmp_path / 'coco')
    kwargs = dict(num_train_images=1, num_val_images=1, image_size=(64, 48))
    generate_coco_keypoints(out, **kwargs)
    with pytest.raises(FileExistsError):
        generate_coco_keypoints(out, seed=1, **kwargs)
    generate_coco_keypoints(out, seed=1, overwrite=True, **kwargs)


def test_mmpose_coco_dataset(coco_paths):
    pytest.importorskip('mmpose')
    from mmpose.datasets import CocoDataset
    root = coco_paths['data_root']
    train = CocoDataset(
        data_root=root,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        data_mode='topdown',
        pipeline=[],
        test_mode=False)
    anns = _load(coco_paths['train_ann'])['annotations']
    # mmpose's top-down mode skips persons without labelled keypoints.
    assert len(train) == sum(a['num_keypoints'] > 0 for a in anns)
    item = train[0]
    assert item['keypoints'].shape == (1, 17, 2)
    assert item['keypoints_visible'].shape == (1, 17)
    assert osp.isfile(item['img_path'])

    val = CocoDataset(
        data_root=root,
        ann_file='annotations/person_keypoints_val2017.json',
        bbox_file=coco_paths['det_file'],
        data_prefix=dict(img='val2017/'),
        data_mode='topdown',
        pipeline=[],
        test_mode=True)
    assert len(val) == len(_load(coco_paths['det_file']))
    assert osp.isfile(val[0]['img_path'])
