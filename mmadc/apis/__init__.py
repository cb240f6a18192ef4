# Copyright (c) mmadc contributors. All rights reserved.
"""Inference helpers for the demos and the rate picture: models built
through mmpose's and mmseg's own ``init_model`` with a checkpoint that must
fit the config, and the demos' image inputs and outputs."""
from .demo_io import (DemoError, check_boxes_inside, parse_boxes, plan_outputs,
                      read_image, run_cli_main)
from .inference import init_pose_model, init_seg_model, load_fitting_weights

__all__ = [
    'DemoError', 'check_boxes_inside', 'init_pose_model', 'init_seg_model',
    'load_fitting_weights', 'parse_boxes', 'plan_outputs', 'read_image',
    'run_cli_main'
]
