# Copyright (c) mmadc contributors. All rights reserved.
"""The synthetic COCO person-keypoint data set.

COCO cannot be downloaded here, so this module writes images drawn by
:mod:`.coco_scene`, annotated exactly like ``person_keypoints_*2017.json``
and laid out like the COCO folder tree, so mmpose's ``CocoDataset`` configs
work unchanged::

    out_dir/
    ├── annotations/person_keypoints_{train,val}2017.json
    ├── {train,val}2017/000000000001.jpg ...
    ├── person_detection_results/
    │   └── COCO_val2017_detections_AP_H_56_person.json
    └── synthetic_manifest.json
"""
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .canvas import Size
from .coco_scene import COCO_KEYPOINT_NAMES, render_image
from .output import (OutputJournal, ProgressFn, check_counts, prepare_output,
                     split_seed, write_json, write_manifest)

GENERATOR_NAME = 'synthetic_coco'

# 1-based keypoint index pairs, as in the official annotation files.
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12],
                 [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3],
                 [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
PERSON_CATEGORY = dict(
    supercategory='person',
    id=1,
    name='person',
    keypoints=list(COCO_KEYPOINT_NAMES),
    skeleton=COCO_SKELETON)

DET_FILE = osp.join('person_detection_results',
                    'COCO_val2017_detections_AP_H_56_person.json')
SPLITS = (('train2017', 0), ('val2017', 1))
# Image ids of the two splits live in disjoint ranges, like real COCO.
IMAGE_ID_OFFSET = {'train2017': 0, 'val2017': 1_000_000}
MAX_PERSONS_PER_IMAGE = 99  # annotation id = image_id * 100 + index


def _jitter_box(rng: np.random.Generator, bbox: Sequence[float], width: int,
                height: int, sigma: float) -> List[float]:
    """A detector-like box around ``bbox`` (xywh), clipped to the image."""
    x, y, w, h = bbox
    cx = x + w / 2 + rng.normal(0, sigma) * w
    cy = y + h / 2 + rng.normal(0, sigma) * h
    w, h = w * math.exp(rng.normal(0, sigma)), h * math.exp(
        rng.normal(0, sigma))
    x0, y0 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
    x1, y1 = min(float(width), cx + w / 2), min(float(height), cy + h / 2)
    return [
        round(x0, 3),
        round(y0, 3),
        round(max(1.0, x1 - x0), 3),
        round(max(1.0, y1 - y0), 3)
    ]


def _detections(rng: np.random.Generator, image: dict,
                anns: List[dict]) -> List[dict]:
    """Fake person-detector output for one image: a confident box per
    person, sometimes a weaker duplicate, and a few low-score false
    positives (the real results file is sorted by score per image)."""
    width, height = image['width'], image['height']
    dets = []
    for ann in anns:
        score = rng.uniform(0.7, 1.0) if rng.random() < 0.9 else \
            rng.uniform(0.3, 0.7)
        dets.append((score, _jitter_box(rng, ann['bbox'], width, height,
                                        0.05)))
        if rng.random() < 0.3:
            dets.append((rng.uniform(0.05, 0.3),
                         _jitter_box(rng, ann['bbox'], width, height, 0.15)))
    for _ in range(int(rng.poisson(0.7))):
        w = rng.uniform(0.05, 0.5) * width
        h = rng.uniform(0.1, 0.8) * height
        box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
        dets.append(
            (rng.uniform(0.01, 0.35), _jitter_box(rng, box, width, height,
                                                  0.0)))
    dets.sort(key=lambda d: -d[0])
    return [
        dict(
            image_id=image['id'],
            category_id=1,
            bbox=box,
            score=round(float(score), 6)) for score, box in dets
    ]


def _generate_split(journal: OutputJournal, split: str, split_code: int,
                    num_images: int, image_size: Size, seed: int,
                    max_persons: int, jpeg_quality: int,
                    progress: Optional[ProgressFn]) -> Tuple[dict, list]:
    """Write the images of one split; return its COCO dict and detections.
    """
    images, annotations, detections = [], [], []
    for i in range(num_images):
        rng = np.random.default_rng(split_seed(seed, split_code, i))
        img, anns = render_image(rng, image_size, max_persons)
        image_id = IMAGE_ID_OFFSET[split] + i + 1
        image = dict(
            id=image_id,
            file_name=f'{image_id:012d}.jpg',
            width=int(image_size[0]),
            height=int(image_size[1]))
        cv2.imwrite(
            journal.path(osp.join(split, image['file_name'])), img,
            [cv2.IMWRITE_JPEG_QUALITY,
             int(jpeg_quality)])
        for k, ann in enumerate(anns):
            ann.update(id=image_id * 100 + k, image_id=image_id)
        images.append(image)
        annotations += anns
        detections += _detections(rng, image, anns)
        if progress is not None:
            progress(split, i + 1, num_images)
    coco = dict(
        info=dict(
            description='mmadc synthetic COCO person keypoints',
            version='1.0',
            year=2017,
            contributor='mmadc',
            date_created='2017/01/01'),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[PERSON_CATEGORY])
    return coco, detections


def coco_owned_paths() -> List[str]:
    """Paths (relative to the dataset root) the COCO generator writes."""
    return [
        osp.join('annotations', 'person_keypoints_train2017.json'),
        osp.join('annotations', 'person_keypoints_val2017.json'), 'train2017',
        'val2017', DET_FILE
    ]


def coco_params(num_train_images: int, num_val_images: int, image_size: Size,
                seed: int, max_persons: int, jpeg_quality: int) -> dict:
    """The parameters recorded in (and compared with) the manifest."""
    return dict(
        num_train_images=int(num_train_images),
        num_val_images=int(num_val_images),
        image_size=[int(image_size[0]), int(image_size[1])],
        seed=int(seed),
        max_persons=int(max_persons),
        jpeg_quality=int(jpeg_quality))


def generate_coco_keypoints(
        out_dir: str,
        num_train_images: int = 200,
        num_val_images: int = 50,
        image_size: Size = (320, 240),
        seed: int = 0,
        max_persons: int = 4,
        jpeg_quality: int = 90,
        overwrite: bool = False,
        progress: Optional[ProgressFn] = None) -> Dict[str, str]:
    """Generate a synthetic COCO person-keypoint dataset.

    Images are drawn independently from ``(seed, split, index)``, so the
    same arguments always give byte-identical files.

    Args:
        out_dir (str): Dataset root (``data_root`` in mmpose configs).
        num_train_images (int): Images in ``train2017``. Defaults to 200.
        num_val_images (int): Images in ``val2017``. Defaults to 50.
        image_size (tuple[int, int]): ``(width, height)`` of every image.
            Defaults to (320, 240).
        seed (int): Random seed. Defaults to 0.
        max_persons (int): Maximum persons per image (1 to 99).
            Defaults to 4.
        jpeg_quality (int): JPEG quality of the images. Defaults to 90.
        overwrite (bool): Delete files a previous generation left in
            ``out_dir`` instead of raising. Defaults to False.
        progress (Callable, optional): Called as
            ``progress(split, done, total)`` after every image.

    Returns:
        dict[str, str]: Paths of ``data_root``, ``train_ann``, ``val_ann``,
        ``train_img_dir``, ``val_img_dir``, ``det_file`` and ``manifest``.
    """
    check_counts(
        seed, num_train_images=num_train_images, num_val_images=num_val_images)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f'jpeg_quality must be in [1, 100], got '
                         f'{jpeg_quality}')
    if not 1 <= max_persons <= MAX_PERSONS_PER_IMAGE:
        raise ValueError(f'max_persons must be in [1, '
                         f'{MAX_PERSONS_PER_IMAGE}], got {max_persons}')
    if min(image_size) < 16:
        raise ValueError(f'image_size {image_size} is too small')
    params = coco_params(num_train_images, num_val_images, image_size, seed,
                         max_persons, jpeg_quality)
    journal = prepare_output(out_dir, coco_owned_paths(), overwrite)

    paths = dict(data_root=out_dir)
    written, all_dets = [], []
    for (split, code), num in zip(SPLITS, (num_train_images, num_val_images)):
        coco, dets = _generate_split(journal, split, code, num,
                                     tuple(image_size), seed, max_persons,
                                     jpeg_quality, progress)
        ann_rel = osp.join('annotations', f'person_keypoints_{split}.json')
        write_json(journal.path(ann_rel), coco)
        written += [ann_rel] + [
            osp.join(split, im['file_name']) for im in coco['images']
        ]
        key = split[:-4]  # 'train' / 'val'
        paths[f'{key}_ann'] = osp.join(out_dir, ann_rel)
        paths[f'{key}_img_dir'] = osp.join(out_dir, split)
        if split == 'val2017':
            all_dets = dets
    write_json(journal.path(DET_FILE), all_dets)
    written.append(DET_FILE)
    paths['det_file'] = osp.join(out_dir, DET_FILE)
    paths['manifest'] = write_manifest(out_dir, GENERATOR_NAME, params,
                                       written)
    return paths
