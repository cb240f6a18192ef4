# Copyright (c) mmadc contributors. All rights reserved.
"""COCO's small / medium / large split of person instances by area."""
import math
from typing import Tuple

import numpy as np
from mmengine.structures import BaseDataElement

#: Size groups in order, and COCO's area thresholds between them (pixels^2).
SIZE_GROUPS: Tuple[str, ...] = ('small', 'medium', 'large')
SMALL_MAX_AREA = 32**2
MEDIUM_MAX_AREA = 96**2
#: Where a person's area comes from: its box ``w * h`` (the paper's "areas
#: of their bounding boxes") or the annotation's ``area`` (segment area,
#: what COCOeval's AP^M / AP^L use).
SIZE_SOURCES = ('bbox', 'area')


def size_group(area: float) -> str:
    """COCO size group of a person of the given area.

    COCOeval's area ranges ``[0, 32^2]``, ``[32^2, 96^2]``, ``[96^2, 1e10]``
    are closed, so an area of exactly ``32^2`` counts in both the small and
    the medium range there. A partition needs a choice; like the paper
    ("smaller than 32x32", "greater than 32x32 but smaller than 96x96") we
    use half-open ranges closed below:

    - small: ``area < 32^2``
    - medium: ``32^2 <= area < 96^2``
    - large: ``area >= 96^2``

    Args:
        area (float): Area in pixels^2.

    Returns:
        str: ``'small'``, ``'medium'`` or ``'large'``.
    """
    area = float(area)
    if not math.isfinite(area) or area < 0:
        raise ValueError(f'area must be finite and >= 0, got {area}')
    if area < SMALL_MAX_AREA:
        return 'small'
    if area < MEDIUM_MAX_AREA:
        return 'medium'
    return 'large'


def instance_area(data_sample, size_by: str = 'area') -> Tuple[float, str]:
    """The area of the person instance of a top-down data sample.

    mmpose's ``PackPoseInputs`` keeps the raw COCO annotation in the
    sample's ``raw_ann_info`` meta field (unless a config drops it from
    ``meta_keys``); persons from a detection file have none. Sources, in
    order:

    1. ``size_by='area'``: the annotation's ``area`` (the segment area that
       COCOeval's size ranges use);
    2. the annotation's box ``w * h`` (the paper's "areas of their bounding
       boxes"; also the fallback when an annotation has no ``area``);
    3. the box the sample was cropped with (``gt_instances.bboxes``, xyxy:
       the detection's box, or the GT box clipped to the image; the only
       source without ``raw_ann_info``).

    Args:
        data_sample (PoseDataSample | dict): One data sample, or the dict
            an evaluator's ``process`` receives for it.
        size_by (str): ``'area'`` or ``'bbox'``.

    Returns:
        tuple[float, str]: The area and its source (``'area'``,
        ``'ann_bbox'`` or ``'input_bbox'``).
    """
    if size_by not in SIZE_SOURCES:
        raise ValueError(f'size_by must be one of {SIZE_SOURCES}, got '
                         f'{size_by!r}')
    if isinstance(data_sample, BaseDataElement):
        data_sample = data_sample.to_dict()
    ann = data_sample.get('raw_ann_info')
    if isinstance(ann, (list, tuple)) or (ann is None and isinstance(
            data_sample.get('id'), (list, tuple))):
        raise ValueError(
            'rate statistics by person size need one person per model '
            'input (a top-down dataset); got a bottom-up sample of image '
            f'{data_sample.get("img_id")}')
    if isinstance(ann, dict):
        if size_by == 'area' and ann.get('area') is not None:
            return float(ann['area']), 'area'
        bbox = ann.get('bbox')
        if bbox is not None and len(bbox) == 4:
            return float(bbox[2]) * float(bbox[3]), 'ann_bbox'
    gt = data_sample.get('gt_instances') or {}
    bboxes = gt.get('bboxes')
    if bboxes is not None and len(bboxes) == 1:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(bboxes).reshape(4))
        return max(x2 - x1, 0.) * max(y2 - y1, 0.), 'input_bbox'
    raise ValueError(
        'cannot find the person area of data sample '
        f'{data_sample.get("id", data_sample.get("img_path"))}: it has '
        "neither 'raw_ann_info' (keep it in PackPoseInputs' meta_keys) nor "
        'one box in gt_instances.bboxes')
