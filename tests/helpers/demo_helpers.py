# Copyright (c) mmadc contributors. All rights reserved.
"""Checkpoints and images for the demo and rate-picture tests."""
import os.path as osp

import numpy as np
import torch
from conftest import REPO_ROOT

POSE_ADC_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                        'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')
POSE_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                    'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')
SEG_ADC_CFG = osp.join(
    REPO_ROOT, 'configs', 'demo',
    'fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128.py')


def write_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Save a freshly built model of ``config`` as an mmengine checkpoint.

    The ADC rate regressors' last biases are drawn from U(0.5, 1.5) instead
    of their initial 0 (rates 1), so that every layer's rates differ
    between groups as a trained model's do.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner.checkpoint import save_checkpoint
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('rate_regressor.fc2.bias'):
                param.copy_(torch.rand(param.shape, generator=generator) - 0.5)
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def write_image(path: str,
                height: int = 120,
                width: int = 160,
                seed: int = 0) -> np.ndarray:
    """A smooth random colour image (a PNG: lossless, so drawn pixels can
    be told from the input exactly)."""
    import mmcv
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8, width // 8, 3)).astype(np.uint8)
    image = mmcv.imresize(small, (width, height))
    mmcv.imwrite(image, path)
    return image
