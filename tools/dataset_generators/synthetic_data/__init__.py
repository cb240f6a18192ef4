# Copyright (c) mmadc contributors. All rights reserved.
"""Procedurally drawn stand-ins for COCO keypoints and Cityscapes.

The generator tools ``generate_synthetic_coco.py`` and
``generate_synthetic_cityscapes.py`` next to this package write them in
the real data sets' folder layouts, so mmpose's ``CocoDataset`` and
mmseg's ``CityscapesDataset`` read them unchanged. A tool, not part of the
``mmadc`` library: nothing here imports ``mmadc``.
"""
from .cityscapes import generate_cityscapes
from .coco import generate_coco_keypoints

__all__ = ['generate_coco_keypoints', 'generate_cityscapes']
