# Copyright (c) mmadc contributors. All rights reserved.
"""Synthetic datasets that stand in for COCO keypoints and Cityscapes."""
from .synthetic_cityscapes import generate_cityscapes
from .synthetic_coco import generate_coco_keypoints

__all__ = ['generate_coco_keypoints', 'generate_cityscapes']
