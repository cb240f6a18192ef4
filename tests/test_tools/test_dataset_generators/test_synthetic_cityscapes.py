# Copyright (c) mmadc contributors. All rights reserved.
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from synthetic_data import generate_cityscapes
from synthetic_data.cityscapes import LABEL_IDS

IMAGE_SIZE = (256, 128)
NUM = {'train': 8, 'val': 3}


@pytest.fixture(scope='module')
def cs_paths(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('cs') / 'synthetic_cityscapes')
    return generate_cityscapes(
        out,
        num_train=NUM['train'],
        num_val=NUM['val'],
        image_size=IMAGE_SIZE,
        seed=0)


def _pairs(paths, split):
    imgs = sorted(
        glob.glob(
            osp.join(paths[f'{split}_img_dir'], '*', '*_leftImg8bit.png')))
    return [(p, p.replace(paths[f'{split}_img_dir'],
                          paths[f'{split}_ann_dir']).replace(
                              '_leftImg8bit.png', '_gtFine_labelTrainIds.png'))
            for p in imgs]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_images_labels_and_classes(cs_paths, split):
    pairs = _pairs(cs_paths, split)
    assert len(pairs) == NUM[split]
    seen = set()
    for img_path, lbl_path in pairs:
        # Cityscapes naming: <city>_<seq>_<frame>_leftImg8bit.png
        city = osp.basename(osp.dirname(img_path))
        parts = osp.basename(img_path).split('_')
        assert parts[0] == city and len(parts) == 4
        assert len(parts[1]) == 6 and len(parts[2]) == 6
        img = cv2.imread(img_path, cv2.IMREAD_UNCHANGED)
        lbl = cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED)
        assert img.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3)
        assert lbl.shape == img.shape[:2] and lbl.dtype == np.uint8
        values = set(np.unique(lbl).tolist())
        assert values <= set(range(19)) | {255}
        assert np.mean(lbl == 255) < 0.1  # ignore is sparse
        seen |= values
        # Optional Cityscapes label ids agree with the train ids.
        ids = cv2.imread(
            lbl_path.replace('labelTrainIds', 'labelIds'),
            cv2.IMREAD_UNCHANGED)
        assert np.array_equal(ids[lbl == 13],
                              np.full((lbl == 13).sum(), LABEL_IDS[13]))
    assert set(range(19)) <= seen


def test_tiny_split_still_has_every_class(tmp_path):
    paths = generate_cityscapes(
        str(tmp_path / 'cs'), num_train=1, num_val=1, image_size=(128, 64))
    for split in ('train', 'val'):
        (_, lbl_path), = _pairs(paths, split)
        assert set(range(19)) <= set(np.unique(cv2.imread(lbl_path, 0)))


def test_determinism(tmp_path):
    kwargs = dict(num_train=2, num_val=1, image_size=(128, 64))
    runs = [
        generate_cityscapes(str(tmp_path / name), seed=seed, **kwargs)
        for name, seed in (('a', 5), ('b', 5), ('c', 6))
    ]

    def contents(root):
        out = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                with open(osp.join(dirpath, name), 'rb') as f:
                    out[osp.relpath(osp.join(dirpath, name), root)] = f.read()
        return out

    a, b, c = (contents(r['data_root']) for r in runs)
    assert a == b
    assert a.keys() == c.keys()
    assert any(a[k] != c[k] for k in a if k.endswith('_leftImg8bit.png'))


def test_mmseg_cityscapes_dataset(cs_paths):
    pytest.importorskip('mmseg')
    from mmseg.datasets import CityscapesDataset
    for split in ('train', 'val'):
        ds = CityscapesDataset(
            data_root=cs_paths['data_root'],
            data_prefix=dict(
                img_path=f'leftImg8bit/{split}',
                seg_map_path=f'gtFine/{split}'),
            pipeline=[])
        assert len(ds) == NUM[split]
        for i in range(len(ds)):
            info = ds[i]
            assert osp.isfile(info['img_path'])
            assert osp.isfile(info['seg_map_path'])
