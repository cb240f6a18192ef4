# Copyright (c) mmadc contributors. All rights reserved.
"""Build a pose or segmentation model for inference with weights that fit.

mmpose's and mmseg's ``init_model`` load a checkpoint with
``strict=False``: a checkpoint of another model (a baseline checkpoint for
an ADC config, another depth) only logs a warning and the demo then draws
the predictions of a half-initialised network. Here the model is built by
upstream's ``init_model`` without weights, and the checkpoint is loaded
only if its weights have exactly the model's names and shapes, and a
config of the other task is refused with one line naming the right demo
(upstream fails inside the model's constructor with a ``TypeError``).
"""
from typing import Optional

import torch.nn as nn

from mmadc.utils.checkpoint_file import (check_checkpoint_file,
                                         load_fitting_checkpoint)
from mmadc.utils.cli import CliError, check_input_file
from .demo_io import DemoError

#: default_scope -> (the task's name, its image demo)
TASKS = {
    'mmpose': ('pose estimation', 'tools/demo/pose_image_demo.py'),
    'mmseg': ('segmentation', 'tools/demo/seg_image_demo.py'),
}


def load_fitting_weights(model: nn.Module, checkpoint: str,
                         config: str) -> dict:
    """:func:`~mmadc.utils.checkpoint_file.load_fitting_checkpoint` with
    its errors as :class:`DemoError` (one line, no traceback).

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).
    """
    try:
        return load_fitting_checkpoint(model, checkpoint, config)
    except CliError as err:
        raise DemoError(str(err)) from None


def _load_config(config: str, checkpoint: str, cfg_options: Optional[dict],
                 scope: str):
    """The config, refused unless its ``default_scope`` is ``scope``, after
    a first look at the checkpoint file (before any model is built)."""
    from mmengine.config import Config
    try:
        check_input_file(config, 'config', 'a config file')
        check_checkpoint_file(checkpoint)
    except CliError as err:
        raise DemoError(str(err)) from None
    cfg = Config.fromfile(config)  # imports custom_imports (mmadc)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    found = cfg.get('default_scope')
    if found != scope:
        task, demo = TASKS[scope]
        if found in TASKS:
            raise DemoError(f'config: "{config}" is a {TASKS[found][0]} '
                            f'config; use {TASKS[found][1]}')
        raise DemoError(f'config: "{config}" is not a {task} config '
                        f'(default_scope {found!r}, expected {scope!r})')
    return cfg


def init_pose_model(config: str,
                    checkpoint: str,
                    device: str = 'cpu',
                    cfg_options: Optional[dict] = None) -> nn.Module:
    """mmpose's ``init_model`` with a checkpoint that must fit.

    Args:
        config (str): An mmpose config file.
        checkpoint (str): A checkpoint of that config.
        device (str): Device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides.

    Returns:
        nn.Module: The pose estimator in eval mode, ``dataset_meta`` from
        the checkpoint if it records one, else from the config (as
        mmpose's ``init_model``).
    """
    from mmpose.apis import init_model
    cfg = _load_config(config, checkpoint, cfg_options, 'mmpose')
    model = init_model(cfg, None, device='cpu')
    meta = load_fitting_weights(model, checkpoint, config)
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return model.to(device).eval()


def init_seg_model(config: str,
                   checkpoint: str,
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """mmseg's ``init_model`` with a checkpoint that must fit.

    Args:
        config (str): An mmseg config file.
        checkpoint (str): A checkpoint of that config.
        device (str): Device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides.

    Returns:
        nn.Module: The segmentor in eval mode, ``dataset_meta`` (classes
        and palette) from the checkpoint if it records one, else
        Cityscapes'.
    """
    from mmseg.apis import init_model
    from mmseg.utils import get_classes, get_palette
    cfg = _load_config(config, checkpoint, cfg_options, 'mmseg')
    model = init_model(cfg, None, device='cpu')
    meta = load_fitting_weights(model, checkpoint, config)
    model.dataset_meta = meta.get('dataset_meta') or dict(
        classes=get_classes('cityscapes'), palette=get_palette('cityscapes'))
    return model.to(device).eval()
