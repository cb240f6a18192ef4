# Copyright (c) mmadc contributors. All rights reserved.
"""Every pose config under configs/pose parses, follows the paper's recipe
and its own name, and builds its model (pretrained loading switched off)."""
import copy
import glob
import os.path as osp
import re
from typing import Any, Set

import mmpose
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
                  r'coco(?P<split>-test-dev)?-(?P<h>\d+)x(?P<w>\d+)\.py$')
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
    # COCO test-dev2017 (results for the evaluation server)
    for model in ('res50', 'res50-adc', 'hrnet-w32', 'hrnet-w32-adc'):
        schedule = '210e' if model.startswith('hrnet') else '140e'
        expected.add(
            f'td-hm_{model}_4xb32-{schedule}_coco-test-dev-256x192.py')
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
    test_split = 'test-dev2017' if match['split'] else 'val2017'
    assert cfg.val_dataloader.dataset.bbox_file.endswith(
        'COCO_val2017_detections_AP_H_56_person.json')
    assert cfg.test_dataloader.dataset.bbox_file.endswith({
        'val2017':
        'COCO_val2017_detections_AP_H_56_person.json',
        'test-dev2017':
        'COCO_test-dev2017_detections_AP_H_609_person.json'
    }[test_split])
    assert cfg.test_evaluator.get('format_only', False) == bool(match['split'])
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
    demo = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'configs', 'demo')
    base = Config.fromfile(
        osp.join(demo, 'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py'))
    adc = Config.fromfile(
        osp.join(demo, 'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py'))
    types = [hook['type'] for hook in adc.custom_hooks]
    assert types == [h['type']
                     for h in base.custom_hooks] + ['ADCRateLoggerHook']
    assert 'SyncBuffersHook' in types


# What 'mmpose::' refers to (the configs mmpose installs with itself).
MMPOSE_CONFIGS = osp.join(
    osp.dirname(mmpose.__file__), '.mim', 'configs', 'body_2d_keypoint',
    'topdown_heatmap', 'coco')
# The config of each model in mmpose (8 GPUs, 210 epochs, its own batch).
MMPOSE_NAMES = {
    ('res50', '256x192'): 'td-hm_res50_8xb64-210e_coco-256x192.py',
    ('res50', '384x288'): 'td-hm_res50_8xb64-210e_coco-384x288.py',
    ('res101', '256x192'): 'td-hm_res101_8xb64-210e_coco-256x192.py',
    ('res101', '384x288'): 'td-hm_res101_8xb32-210e_coco-384x288.py',
    ('res152', '256x192'): 'td-hm_res152_8xb32-210e_coco-256x192.py',
    ('res152', '384x288'): 'td-hm_res152_8xb32-210e_coco-384x288.py',
    ('hrnet-w32', '256x192'): 'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py',
    ('hrnet-w32', '384x288'): 'td-hm_hrnet-w32_8xb64-210e_coco-384x288.py',
    ('hrnet-w48', '256x192'): 'td-hm_hrnet-w48_8xb32-210e_coco-256x192.py',
    ('hrnet-w48', '384x288'): 'td-hm_hrnet-w48_8xb32-210e_coco-384x288.py',
}
RECIPE_BASES = {
    'res': osp.join(CONFIG_DIR, '_base_', 'simplebaseline_140e_coco.py'),
    'hrnet': osp.join(CONFIG_DIR, '_base_', 'hrnet_210e_coco.py'),
}
# (A config whose name does not parse fails test_config_follows_recipe_and_
# builds; it is left out here.)
NAMED = [(p, NAME.match(_name(p))) for p in CONFIGS]
TRAINED = [(p, match) for p, match in NAMED if match and not match['split']]
BASELINES = [p for p, match in TRAINED if match['layer'] is None]
VARIANTS = [p for p, match in TRAINED if match['layer'] is not None]
TEST_DEV = [p for p, match in NAMED if match and match['split']]
# Where a baseline may differ from mmpose's config of its model and size:
# the paper's recipe, nothing else. The pipelines differ in the translation,
# rotation and scale of RandomBBoxTransform (index 4) and in the codec the
# target encoder takes (unbiased=False written out).
RECIPE_PATHS = re.compile(
    r'(custom_imports|train_cfg/max_epochs|optim_wrapper/optimizer/lr|'
    r'param_scheduler|auto_scale_lr/base_batch_size|'
    r'(train|val|test)_dataloader/batch_size|'
    r'(codec|model/head/decoder)/unbiased|'
    r'(train_pipeline|train_dataloader/dataset/pipeline)/'
    r'(4/\w+|6/encoder/unbiased))(/\d+)*$')
# Where a baseline may differ from its recipe base: the model and the input
# size (codec, the transforms that take it, the translation as a fraction
# of the input height) and, with the size, the batch; '/0' etc. are the
# items of a tuple or list.
MODEL_AND_SIZE_PATHS = re.compile(
    r'(model/backbone/[\w/]+|model/head/in_channels|'
    r'(codec/|model/head/decoder/|'
    r'((train|val)_pipeline|(train|val|test)_dataloader/dataset/pipeline)/'
    r'\d+/(encoder/)?)(input_size|heatmap_size|sigma)|'
    r'((train|val)_pipeline|(train|val|test)_dataloader/dataset/pipeline)/'
    r'\d+/shift_factor|'
    r'(train|val|test)_dataloader/batch_size|auto_scale_lr/base_batch_size)'
    r'(/\d+)*$')
# What an ADC, DC or SAC config changes in its baseline: the backbone's
# replaced convs.
LAYER_PATHS = re.compile(
    r'model/backbone/(type|adc_cfg|adc_cfg/\w+|adc_stages)$')


def _differences(ours: Any, theirs: Any, path: str = '') -> Set[str]:
    """The paths (``key/key/index``) at which two resolved configs differ,
    ignoring the ``_scope_`` markers that ``mmpose::`` bases add."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = (set(ours) | set(theirs)) - {'_scope_'}
        found = set()
        for key in keys:
            sub = f'{path}/{key}' if path else str(key)
            if key not in ours or key not in theirs:
                found.add(sub)
            else:
                found |= _differences(ours[key], theirs[key], sub)
        return found
    if (isinstance(ours, (list, tuple)) and isinstance(theirs, (list, tuple))
            and type(ours) is type(theirs) and len(ours) == len(theirs)):
        found = set()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            found |= _differences(a, b, f'{path}/{i}')
        return found
    return set() if ours == theirs and type(ours) is type(theirs) else {path}


def _resolved(path: str) -> dict:
    return Config.fromfile(path).to_dict()


def test_differences_names_every_changed_leaf():
    """The differ the tests below rely on: it reports changed, added and
    removed leaves, list items and tuple-versus-list, and nothing else."""
    a = dict(x=1, y=dict(z=[1, dict(w=(1, 2))], _scope_='mmpose'), v=[1])
    assert _differences(a, copy.deepcopy(a)) == set()
    b = copy.deepcopy(a)
    b['y']['z'][1]['w'] = [1, 2]
    b['y']['q'] = 0
    b['v'] = [1, 2]
    del b['x']
    b['y']['_scope_'] = 'mmseg'
    assert _differences(a, b) == {'x', 'y/q', 'y/z/1/w', 'v'}


@pytest.mark.parametrize('path', BASELINES, ids=_name)
def test_baseline_is_mmposes_config_plus_the_paper_recipe(path):
    """Each baseline is mmpose's config of the same model and input size
    (the oracle for the model, data and runtime settings the bases restate
    or inherit), changed only where the paper's recipe says so."""
    match = NAME.match(_name(path))
    size = f"{match['h']}x{match['w']}"
    theirs = _resolved(
        osp.join(MMPOSE_CONFIGS, MMPOSE_NAMES[match['backbone'], size]))
    found = _differences(_resolved(path), theirs)
    assert {d for d in found if not RECIPE_PATHS.match(d)} == set()
    assert 'optim_wrapper/optimizer/lr' in found  # the recipe is applied


@pytest.mark.parametrize('path', BASELINES, ids=_name)
def test_baseline_takes_the_recipe_from_its_base(path):
    """The recipe (schedule, optimiser, augmentation, decoding, test) lives
    once per family, in configs/pose/_base_: a baseline differs from its
    family's base only in the model and the input size."""
    family = 'res' if NAME.match(
        _name(path))['backbone'].startswith('res') else 'hrnet'
    found = _differences(_resolved(path), _resolved(RECIPE_BASES[family]))
    assert {d for d in found if not MODEL_AND_SIZE_PATHS.match(d)} == set()


def test_hrnet_recipe_is_the_simplebaseline_recipe_with_its_schedule():
    found = _differences(
        _resolved(RECIPE_BASES['hrnet']), _resolved(RECIPE_BASES['res']))
    assert {d
            for d in found if not d.startswith('model/')} == {
                'train_cfg/max_epochs', 'param_scheduler/0/end',
                'param_scheduler/0/milestones/0',
                'param_scheduler/0/milestones/1'
            }


@pytest.mark.parametrize('path', VARIANTS, ids=_name)
def test_layer_config_changes_only_the_baselines_replaced_convs(path):
    """An ADC (any g), DC or SAC config is its baseline (same model, size,
    recipe) with the backbone's convs replaced, nothing else."""
    match = NAME.match(_name(path))
    baseline = osp.join(CONFIG_DIR,
                        _name(path).replace(f"-{match['layer']}", '', 1))
    found = _differences(_resolved(path), _resolved(baseline))
    assert found and all(LAYER_PATHS.match(d) for d in found), found


@pytest.mark.parametrize('path', TEST_DEV, ids=_name)
def test_test_dev_config_is_its_val_config_on_test_dev(path):
    """A test-dev config tests the model its val config trains: it changes
    only the test split's files and makes the evaluator write the server's
    results format instead of scoring."""
    val = osp.join(CONFIG_DIR, _name(path).replace('coco-test-dev-', 'coco-'))
    ours, theirs = _resolved(path), _resolved(val)
    found = _differences(ours, theirs)
    assert found == {
        'test_dataloader/dataset/ann_file',
        'test_dataloader/dataset/bbox_file',
        'test_dataloader/dataset/data_prefix/img', 'test_evaluator/ann_file',
        'test_evaluator/format_only', 'test_evaluator/outfile_prefix'
    }, found
    dataset = ours['test_dataloader']['dataset']
    assert dataset['ann_file'].endswith('image_info_test-dev2017.json')
    assert dataset['data_prefix']['img'] == 'test2017/'
    assert ours['test_evaluator']['format_only'] is True
