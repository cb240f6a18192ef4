# Copyright (c) mmadc contributors. All rights reserved.
"""Helpers of the analysis tests: a tiny generated COCO set, a tiny pose
config on it, and in-process access to the tools' ``main``.

Test modules import these helpers (pytest puts this directory on
``sys.path`` when it imports them). Deliberately not a ``conftest.py``:
other test modules import ``tests/conftest.py`` as ``conftest``, which a
second conftest module would shadow.
"""
import atexit
import functools
import importlib.util
import json
import os.path as osp
import shutil
import tempfile

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS_DIR = osp.join(REPO_ROOT, 'tools', 'analysis')

# SimpleBaseline ResNet-18 at 64x48 on the generated set. The val dataset
# names the detection file and enables the flip test on purpose: the tools
# must use the GT boxes and one forward per person anyway.
POSE_CONFIG = """
default_scope = 'mmpose'
custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)
codec = dict(
    type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(type='{backbone}', depth=18),
    head=dict(
        type='HeatmapHead',
        in_channels=512,
        out_channels=17,
        deconv_out_channels=(16, 16, 16),
        deconv_kernel_sizes=(4, 4, 4),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))
data_root = '{data_root}/'
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        data_mode='topdown',
        ann_file='annotations/person_keypoints_val2017.json',
        bbox_file=data_root + 'person_detection_results/'
        'COCO_val2017_detections_AP_H_56_person.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=val_pipeline))
"""


@functools.lru_cache(maxsize=None)
def tiny_coco() -> str:
    """Root of a generated COCO set: 3 val images (320x240) with persons of
    all three sizes. Generated once per process (removed at exit)."""
    from synthetic_data import generate_coco_keypoints
    root = osp.join(
        tempfile.mkdtemp(prefix='mmadc_analysis_'), 'synthetic_coco')
    atexit.register(shutil.rmtree, osp.dirname(root), ignore_errors=True)
    generate_coco_keypoints(
        root,
        num_train_images=1,
        num_val_images=3,
        image_size=(320, 240),
        seed=0)
    return root


def val_annotations() -> list:
    """The GT persons mmpose's top-down CocoDataset keeps (not crowd, with
    keypoints, positive box), in dataset order."""
    with open(
            osp.join(tiny_coco(), 'annotations',
                     'person_keypoints_val2017.json')) as f:
        anns = json.load(f)['annotations']
    return [
        a for a in anns if not a.get('iscrowd') and a['num_keypoints'] > 0
        and a['bbox'][2] > 0 and a['bbox'][3] > 0
    ]


def write_pose_config(directory, backbone: str = 'ResNetADC') -> str:
    """Write the tiny config with that backbone type; return its path."""
    path = osp.join(str(directory), f'pose_{backbone}.py')
    with open(path, 'w') as f:
        f.write(POSE_CONFIG.format(backbone=backbone, data_root=tiny_coco()))
    return path


def build_pose_model(config: str):
    """The config's model with fresh weights (every ADC rate 1)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope('mmpose')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def load_tool(name: str):
    """``tools/analysis/<name>.py`` imported as a module (to call its
    ``main`` in-process)."""
    spec = importlib.util.spec_from_file_location(
        f'analysis_tool_{name}', osp.join(TOOLS_DIR, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
