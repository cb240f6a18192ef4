# Copyright (c) mmadc contributors. All rights reserved.
"""Resample an image by a factor, keeping its content where it is.

The scale-response analysis (``tools/analysis/scale_response.py``) asks how
a model's dilation rates change when the same content is seen at another
resolution. :class:`ScaleResolution` resamples the loaded image by ``s``
and maps every annotation coordinate with it, so that a later step that
crops by the annotations (mmpose's ``TopdownAffine``) covers the same
content, now at ``s`` times the resolution: what a person ``s`` times as
large (or small) in the camera looks like to a top-down model. Placed
after a segmentation pipeline's ``Resize``, it resizes the whole model
input by ``s``.
"""
import math
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

#: Coordinates in ``(x, y)`` pairs along the last axis: points, mapped as
#: pixel positions.
POINT_KEYS = ('bbox_center', 'keypoints')


def _scaled_points(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Map ``(..., >=2)`` pixel positions (pixel centres at integers, as
    ``cv2.resize`` and ``cv2.warpAffine`` sample) into the resized
    image: ``x' = (x + 0.5) * sx - 0.5``, ``y`` alike."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] = (out[..., 0] + 0.5) * sx - 0.5
    out[..., 1] = (out[..., 1] + 0.5) * sy - 0.5
    return out.astype(np.asarray(points).dtype, copy=False)


@TRANSFORMS.register_module()
class ScaleResolution(BaseTransform):
    """Resample the image by a factor, with the annotations' coordinates.

    The image becomes ``round(w * s) x round(h * s)`` pixels (at least 1),
    by area averaging when it shrinks (``cv2.INTER_AREA``: each new pixel
    the mean of the ones it covers, as a coarser sensor would record) and
    bilinear interpolation when it grows (no detail is added: an
    upsampled image is smoother than one taken at that resolution).
    Positions follow the resampling exactly, per axis with the factors
    ``sx = w' / w`` and ``sy = h' / h`` the rounding leaves:
    ``x' = (x + 0.5) * sx - 0.5`` for ``bbox_center``, ``keypoints`` and
    the corners of ``bbox`` (``(N, 4)`` ``x1, y1, x2, y2``), sizes
    ``bbox_scale`` times ``(sx, sy)``. So a crop taken afterwards by these
    boxes (``TopdownAffine``) shows the same content as without this step,
    rendered from ``s`` times as many pixels.

    Segmentation maps (``gt_seg_map`` and the keys in ``seg_fields``) are
    resized by nearest neighbour to the new image size; ``img_shape``
    becomes the new size and ``scale_factor`` (if present, ``(w, h)``
    factors of an earlier ``Resize``) is multiplied by ``(sx, sy)``.
    ``ori_shape`` is kept: a segmentor still resizes its prediction to the
    original image.

    Required keys: ``img``.

    Modified keys: ``img``, ``img_shape`` and, where present, ``bbox``,
    ``bbox_center``, ``bbox_scale``, ``keypoints``, ``gt_seg_map`` (and
    ``seg_fields``), ``scale_factor``.

    Args:
        scale (float): The factor ``s > 0``; 1 leaves everything as it is.
    """

    def __init__(self, scale: float) -> None:
        if isinstance(scale, bool) or not isinstance(
                scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(
                f'scale must be a finite number > 0, got {scale!r}')
        self.scale = float(scale)

    def transform(self, results: dict) -> Optional[dict]:
        """Resample ``results['img']`` and map the coordinates.

        Args:
            results (dict): The pipeline's result dict.

        Returns:
            dict: The same dict, changed in place.
        """
        if self.scale == 1:
            return results
        img = results['img']
        h, w = img.shape[:2]
        new_w = max(1, int(round(w * self.scale)))
        new_h = max(1, int(round(h * self.scale)))
        sx, sy = new_w / w, new_h / h
        results['img'] = mmcv.imresize(
            img, (new_w, new_h),
            interpolation='area' if self.scale < 1 else 'bilinear')
        results['img_shape'] = (new_h, new_w)
        for key in POINT_KEYS:
            if results.get(key) is not None:
                results[key] = _scaled_points(results[key], sx, sy)
        if results.get('bbox') is not None:
            bbox = np.asarray(results['bbox'])
            corners = _scaled_points(
                bbox.reshape(bbox.shape[:-1] + (2, 2)), sx, sy)
            results['bbox'] = corners.reshape(bbox.shape)
        if results.get('bbox_scale') is not None:
            size = np.asarray(results['bbox_scale'])
            results['bbox_scale'] = (size * np.array([sx, sy])).astype(
                size.dtype, copy=False)
        seg_keys = set(results.get('seg_fields', ()))
        if results.get('gt_seg_map') is not None:
            seg_keys.add('gt_seg_map')
        for key in sorted(seg_keys):
            if results.get(key) is not None:
                results[key] = mmcv.imresize(
                    results[key], (new_w, new_h), interpolation='nearest')
        if results.get('scale_factor') is not None:
            fx, fy = results['scale_factor'][:2]
            results['scale_factor'] = (fx * sx, fy * sy)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale})'
