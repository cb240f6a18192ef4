# Copyright (c) mmadc contributors. All rights reserved.
"""The generators draw exactly what they drew before the drawing code moved.

The digests below were taken from the generators' output before the drawing
code moved to ``tools/dataset_converters/synthetic_data`` and became one
canvas and tables of shapes (commit f88bd96); the move kept every generated
file byte-identical (all 793 files of the default-size sets and of sets
with other seeds and sizes). Images are compared decoded (pixels, not the
encoder's bytes), annotation files as written.

When the drawing changes on purpose, or numpy's random streams or OpenCV's
rasteriser change with an upgrade, this test fails: check the new images
and labels by eye and with the property tests of this folder, then take
the new digests with ``generated_digests`` and replace the tables, saying
why in the commit message.
"""
import hashlib
import os
import os.path as osp

import cv2
import pytest
from synthetic_data import generate_cityscapes, generate_coco_keypoints

# seed 1, 2 train + 1 val images of 160x120, at most 3 persons
COCO_DIGESTS = {
    'annotations/person_keypoints_train2017.json':
    '33c26c13d602b868bfeadd5198f3fb6718e994c0f381ff0f92ce1618e6b5cddd',
    'annotations/person_keypoints_val2017.json':
    '66ec65448b14c4bcdc22052489882a80accfc037db5ccddc68df1f345fbaff84',
    'person_detection_results/COCO_val2017_detections_AP_H_56_person.json':
    '6dc683dba4c5a8bd09d57429d6d60d0f523803e2a107db45a159c7f558f1d633',
    'train2017/000000000001.jpg':
    '040fb66066caa1081c3c462a9e42732c103a51dfeaa7a33c75cb9f2eb8892354',
    'train2017/000000000002.jpg':
    '1680870ed594b9f31b7bd3eb1a97ce122cc5ff433dbc038dc3c76779229de4f4',
    'val2017/000001000001.jpg':
    'd14961551e09c129fd6692065720b2e34112e9df4e08c62f0df2e77bfb143ebb',
}
# seed 2, 2 train + 1 val images of 128x64; the val image holds all 19
# classes, so every kind of traffic participant is drawn
CITYSCAPES_DIGESTS = {
    'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png':
    'c69e1b563a78a96dda9db70961130aea2da6ebfde1f29ee02ac3c6dce57479b6',
    'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png':
    '5337499f371c3a26ed063877c01b637b4396dfc1b1d02438c45c113c84e0bfc9',
    'gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png':
    '4117b3107371597a36231707cc548f3eda39726f68b7fcd190cf9a36f185266b',
    'gtFine/train/bremen/bremen_000000_000019_gtFine_labelTrainIds.png':
    'ee47e269f248cbf6e6a66b93229ee0c45ff7ecc2233b767223a6d95fd4f006c4',
    'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png':
    'f9ca6d867f6a8b629a907dfcb7f742eedcaa31ac1bd5d64d54871963e001d3d8',
    'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelTrainIds.png':
    'c8ed8c9fcc839940d090d1973a6062115dbbcd4e3132ff3ab8aaf35966656e29',
    'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png':
    'fc11eb47ed1ca548601e8c417ac18b5d72bc7eb80a3d72f6211b88819967d868',
    'leftImg8bit/train/bremen/bremen_000000_000019_leftImg8bit.png':
    '93f3a27aa77fde24db31dd7c72a2bc1ee1dd6c388f0c29d7aea511ffc12f719f',
    'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png':
    '69b4897e0f861fc077516efa1b95857ab036a8005ecf670cf5bd8aecdcb3b566',
}


def generated_digests(root: str) -> dict:
    """sha256 of every file a generator wrote under ``root`` (decoded pixels
    of images), by path relative to ``root``; the manifest, which records
    the encoders' file sizes, is left out."""
    digests = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name == 'synthetic_manifest.json':
                continue
            path = osp.join(dirpath, name)
            if name.endswith('.json'):
                with open(path, 'rb') as f:
                    data = f.read()
            else:
                data = cv2.imread(path, cv2.IMREAD_UNCHANGED).tobytes()
            rel = osp.relpath(path, root).replace(os.sep, '/')
            digests[rel] = hashlib.sha256(data).hexdigest()
    return digests


def _generate_coco(out):
    generate_coco_keypoints(
        out,
        num_train_images=2,
        num_val_images=1,
        image_size=(160, 120),
        seed=1,
        max_persons=3)


def _generate_cityscapes(out):
    generate_cityscapes(
        out, num_train=2, num_val=1, image_size=(128, 64), seed=2)


@pytest.mark.parametrize(
    'generate,expected', [(_generate_coco, COCO_DIGESTS),
                          (_generate_cityscapes, CITYSCAPES_DIGESTS)],
    ids=['coco', 'cityscapes'])
def test_output_matches_the_recorded_digests(tmp_path, generate, expected):
    out = str(tmp_path / 'data')
    generate(out)
    digests = generated_digests(out)
    assert sorted(digests) == sorted(expected)
    changed = sorted(rel for rel in expected if digests[rel] != expected[rel])
    assert not changed, f'drawn differently than before: {changed}'
