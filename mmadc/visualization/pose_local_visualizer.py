# Copyright (c) mmadc contributors. All rights reserved.
"""mmpose's ``PoseLocalVisualizer`` under numpy >= 2.3.

mmpose 1.3.2 draws every keypoint with ``draw_circles(radius=np.array([r]))``
and its OpenCV backend then calls ``int(radius)``, which numpy 2.3 and later
refuse for a 1-element array ("only 0-dimensional arrays can be converted
to Python scalars"): the visualizer fails at the first keypoint above the
score threshold. :class:`NumpyCompatPoseLocalVisualizer` passes such a
radius on as a scalar and is otherwise mmpose's visualizer;
:func:`compatible_visualizer_cfg` swaps it in for a config's
``PoseLocalVisualizer``.
"""
import numpy as np
from mmpose.registry import VISUALIZERS
from mmpose.visualization import PoseLocalVisualizer


@VISUALIZERS.register_module()
class NumpyCompatPoseLocalVisualizer(PoseLocalVisualizer):
    """``PoseLocalVisualizer`` whose circles take a 1-element radius array
    (what mmpose passes) under numpy >= 2.3."""

    def draw_circles(self, center, radius, *args, **kwargs):
        if self.backend == 'opencv':
            radius = np.asarray(radius)
            if radius.size == 1:
                radius = radius.item()
        return super().draw_circles(center, radius, *args, **kwargs)


def compatible_visualizer_cfg(cfg: dict) -> dict:
    """A visualizer config with mmpose's ``PoseLocalVisualizer`` replaced
    by :class:`NumpyCompatPoseLocalVisualizer` (other types unchanged)."""
    cfg = dict(cfg)
    if cfg.get('type') in ('PoseLocalVisualizer', 'mmpose.PoseLocalVisualizer',
                           PoseLocalVisualizer):
        # by name, so that a Runner's config stays dumpable
        cfg['type'] = 'NumpyCompatPoseLocalVisualizer'
    return cfg
