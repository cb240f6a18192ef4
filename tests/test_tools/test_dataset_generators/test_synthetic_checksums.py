# Copyright (c) mmadc contributors. All rights reserved.
"""The generators draw exactly what they drew before, on every stack.

The digests below are the same on numpy 1.26 with OpenCV 4.11 (the newest
OpenCV for numpy 1, what ``requirements/stack_min.txt`` resolves to) and on
numpy 2.4 with OpenCV 4.14 and 5.1 (``requirements/stack.txt``), measured
on these sets and on 24 COCO images of 320x240 and 9 street scenes of
256x128. Where those OpenCV releases disagree (thick and anti-aliased
lines, rings, float resizing, HSV conversion, ``approxPolyDP``) the
generators compute with exactly defined operations (float64 element-wise
arithmetic, integer geometry, explicit rounding; see
``synthetic_data/canvas.py``). What the digests still depend on, and so
pin:

- numpy's ``Generator`` streams (PCG64 with ``random``, ``uniform``,
  ``integers``, ``normal``, ``choice``, ``poisson``): equal on numpy 1.26
  and 2.x, though NEP 19 allows them to change in a future release;
- OpenCV's filled polygons, discs and ellipses (anti-aliased in images),
  ``GaussianBlur``, ``findContours`` and its JPEG and PNG codecs: equal on
  OpenCV 4.11, 4.14 and 5.1.

Images are compared decoded (pixels, not the encoder's bytes), annotation
files as written. The tables were retaken when lines, rings, noise
upsampling, colours and polygon simplification moved to exactly defined
code (the figures of ``make demo`` in README were made on the data before).

When the drawing changes on purpose, or one of the above changes with an
upgrade, this test fails: check the new images and labels by eye and with
the property tests of this folder, then take the new digests with
``generated_digests`` and replace the tables, saying why in the commit
message.
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
    '89f96bdca05564e560e20d52963f3cd9a619251da3dc13ba009a6ecf68b91d79',
    'annotations/person_keypoints_val2017.json':
    'c7fdd2ded1ea43e7462b3614ae1f91941ce57c0f814153624ee7394f6a284bdf',
    'person_detection_results/COCO_val2017_detections_AP_H_56_person.json':
    '49074126e901734349036cdb46eb80848ba9c78fcd30aaa5eac57cecb0062364',
    'train2017/000000000001.jpg':
    '54188d6638619eb8cbc5724515921b1b62ec177adc24e6d75328e9595187960e',
    'train2017/000000000002.jpg':
    '877389f60f86739a65d1f64822309939e7bb4b4be8c07fef5779f19e445eb44b',
    'val2017/000001000001.jpg':
    '7939a9a510757ccada7a27ddd9c5c4ec3197ae6ad575815dd213aa6ed61208e4',
}
# seed 2, 2 train + 1 val images of 128x64; the val image holds all 19
# classes, so every kind of traffic participant is drawn
CITYSCAPES_DIGESTS = {
    'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png':
    '4bd5024a744e71a4f565adc7c329cd3be02cdc46a489889783482d40c4291b38',
    'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png':
    '7d7538f3227c5d9ceeb4255bac9504543ff72e87d48e97d7461a1065e00cf2ca',
    'gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png':
    'a1cb995ecf4873d2a294e0407a785abc78c35873a11d2caca4112b3ea317f954',
    'gtFine/train/bremen/bremen_000000_000019_gtFine_labelTrainIds.png':
    '7f4ed323bed403421b7ef4c59ec970fbb75e109b95dccbfd8912ecd30efe2e18',
    'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png':
    '1095cb55554bebc267e1ac5745748550580d6e9a6dba815123d3e5da37b6ca1c',
    'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelTrainIds.png':
    '67fb575bdc7c1c6600c0dbda46e9ba789f27fdbfe36d68b1604416ea8072cc86',
    'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png':
    'f986a2c1d89726a41bd49ae8521c9d77c9e3d90088d4f9ac389915307d697634',
    'leftImg8bit/train/bremen/bremen_000000_000019_leftImg8bit.png':
    '26ebb637e169c1c1ee58bdc9caaba7ddf0a633fa6bfebf828f2fcdaa0d4048b0',
    'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png':
    '773aad57b5271608a04bcc1d216062a9e25f7338247e9d87144601b2580b7d9a',
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
