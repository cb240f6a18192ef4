# Copyright (c) mmadc contributors. All rights reserved.
"""Every pose config under configs/pose parses, follows the paper's recipe
and its own name, and builds its model (pretrained loading switched off)."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpose.registry import MODELS

import mmadc.models  # noqa: F401  registers the models (until mmadc does)
from mmadc.models.backbones import iter_replaced_convs
from mmadc.models.layers import DeformableConv2d, ScaleAdaptiveConv2d
from mmadc.ops import AdaptiveDilatedConv2d

CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'pose')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
NAME = re.compile(r'td-hm_(?P<backbone>res\d+|hrnet-w\d+)(?:-(?P<layer>'
                  r'adc|adc-g\d+|dc|sac))?_4xb(?P<batch>\d+)-(?P<epochs>\d+)e_'
                  r'coco-(?P<h>\d+)x(?P<w>\d+)\.py$')
# Residual blocks (= replaced convs) of each backbone.
NUM_BLOCKS = {
    'res50': 16,
    'res101': 33,
    'res152': 50,
    'hrnet-w32': 4 + 1 * 2 * 4 + 4 * 3 * 4 + 3 * 4 * 4,
    'hrnet-w48': 4 + 1 * 2 * 4 + 4 * 3 * 4 + 3 * 4 * 4,
}
LAYERS = {
    'adc': AdaptiveDilatedConv2d,
    'dc': DeformableConv2d,
    'sac': ScaleAdaptiveConv2d
}


def _name(path: str) -> str:
    return osp.basename(path)


def test_every_experiment_has_a_config():
    """Tables I (both input sizes), II and III of the paper."""
    names = {_name(p) for p in CONFIGS}
    expected = set()
    for backbone, schedule in [('res50', '140e'), ('res101', '140e'),
                               ('res152', '140e'), ('hrnet-w32', '210e'),
                               ('hrnet-w48', '210e')]:
        for size in ('256x192', '384x288'):
            batch = 24 if (backbone, size) == ('hrnet-w48', '384x288') else 32
            for tag in ('', '-adc'):
                expected.add(f'td-hm_{backbone}{tag}_4xb{batch}-{schedule}_'
                             f'coco-{size}.py')
    for tag in ('adc-g2', 'adc-g4', 'adc-g8', 'dc', 'sac'):
        expected.add(f'td-hm_res50-{tag}_4xb32-140e_coco-256x192.py')
    assert names == expected


def test_readme_lists_every_config():
    with open(osp.join(CONFIG_DIR, 'README.md')) as f:
        readme = f.read()
    links = set(re.findall(r'\]\(([^)]+\.py)\)', readme))
    assert links == {_name(p) for p in CONFIGS}


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_follows_recipe_and_builds(path):
    match = NAME.match(_name(path))
    assert match, f'{_name(path)} does not follow the naming scheme'
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(
        imports=['mmadc'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmpose'

    # the name: 4 GPUs x batch, epochs, input size
    batch, epochs = int(match['batch']), int(match['epochs'])
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == 4 * batch
    assert cfg.train_cfg.max_epochs == epochs
    height, width = int(match['h']), int(match['w'])
    codec = cfg.model.head.decoder
    assert tuple(codec.input_size) == (width, height)
    assert tuple(codec.heatmap_size) == (width // 4, height // 4)

    # the paper's recipe
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr) == ('Adam', 1e-3)
    milestones = {140: [90, 110], 210: [170, 200]}[epochs]
    assert epochs == (140 if match['backbone'].startswith('res') else 210)
    assert [s.type for s in cfg.param_scheduler] == ['MultiStepLR']
    assert cfg.param_scheduler[0].milestones == milestones
    assert cfg.param_scheduler[0].gamma == 0.1
    transforms = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert transforms['RandomFlip'].direction == 'horizontal'
    assert 'RandomHalfBody' in transforms
    bbox_aug = transforms['RandomBBoxTransform']
    assert bbox_aug.rotate_factor == 30
    assert tuple(bbox_aug.scale_factor) == (0.7, 1.3)
    assert bbox_aug.shift_factor * height == pytest.approx(40)
    assert codec.type == 'MSRAHeatmap' and codec.unbiased is False
    assert cfg.model.test_cfg.flip_test is True
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.bbox_file.endswith(
            'COCO_val2017_detections_AP_H_56_person.json')
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert init_cfg.checkpoint.startswith(('torchvision://', 'https://'))

    # the model, without downloading anything; shapes only (meta device)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpose'), torch.device('meta'):
        model = MODELS.build(cfg.model)
    layer = match['layer']
    replaced = dict(iter_replaced_convs(model.backbone))
    if layer is None:
        assert type(model.backbone).__name__ in ('ResNet', 'HRNet')
        assert replaced == {}
        return
    assert type(model.backbone).__name__ in ('ResNetADC', 'HRNetADC')
    assert len(replaced) == NUM_BLOCKS[match['backbone']]
    layer_cls = LAYERS[layer.split('-')[0]]
    assert all(type(m) is layer_cls for m in replaced.values())
    if layer.startswith('adc'):
        groups = int(layer[len('adc-g'):]) if '-g' in layer else None
        for m in replaced.values():
            assert m.dilation_groups == (groups or m.in_channels)


def test_demo_adc_config_adds_the_rate_hook_to_the_bases_hooks():
    """The rate hook is on by default in the ADC demos, appended to the
    base's hooks: mmpose's SyncBuffersHook must survive."""
    demo = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'configs', 'demo')
    base = Config.fromfile(
        osp.join(demo, 'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py'))
    adc = Config.fromfile(
        osp.join(demo, 'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py'))
    types = [hook['type'] for hook in adc.custom_hooks]
    assert types == [h['type'] for h in base.custom_hooks
                     ] + ['ADCRateLoggerHook']
    assert 'SyncBuffersHook' in types
