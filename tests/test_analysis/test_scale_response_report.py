# Copyright (c) mmadc contributors. All rights reserved.
"""The scale response (tools/analysis/scale_response.py and
mmadc.analysis.scale_response_report): the pipeline it runs, the pairing
of the samples across scales, and the tool end to end on models whose
rates are known by construction (the transform's own tests are in
tests/test_datasets/test_transforms, the statistics' in
tests/test_evaluation/test_functional).

The probe backbone's ADC layers see the image itself, and their rate
regressors are set functions of it: ``detail`` is ``1 +`` the mean
absolute difference of horizontally adjacent (normalised) pixels, which a
coarser rendering lowers; ``width`` is the input's width over a reference
width, which only a larger model input changes. The pose set's persons
are checkerboards of known amplitude on the checkerboard's mean grey,
placed so that the crop at scale 1 is exactly the person's pixels and
area averaging to 1/2 or 1/4 leaves one flat grey: the rates at every
scale follow from the construction.
"""
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from analysis_helpers import load_tool
from mmengine.config import Config
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from mmadc.analysis.scale_response_report import (paired_stage_rates,
                                                  scaled_pipeline)
from mmadc.ops import AdaptiveDilatedConv2d
from mmadc.ops.adc_layer import DilationRateRegressor

torch.set_num_threads(1)

# PoseDataPreProcessor's / SegDataPreProcessor's normalisation below
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


class ProbeRegressor(DilationRateRegressor):
    """A rate regressor whose rate is a set function of its input."""

    def __init__(self, in_channels: int, num_rates: int, kind: str,
                 ref_width: int) -> None:
        super().__init__(in_channels, num_rates)
        self.kind, self.ref_width = kind, ref_width

    def forward(self, x):
        if self.kind == 'detail':
            rate = 1 + (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
        else:
            rate = x.new_full((x.shape[0], ), x.shape[-1] / self.ref_width)
        return rate[:, None].expand(-1, self.fc2.out_features).contiguous()


class ScaleProbeBackbone(BaseModule):
    """One ADC layer per stage (``layer<i>.0.conv2``), each on the image."""

    def __init__(self,
                 kinds=('detail', 'width'),
                 ref_width: int = 48,
                 channels: int = 8,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.num_stages = len(kinds)
        for i, kind in enumerate(kinds, 1):
            block = nn.Module()
            block.conv2 = AdaptiveDilatedConv2d(
                3, channels, 3, padding=1, dilation_groups=1)
            block.conv2.rate_regressor = ProbeRegressor(3, 1, kind, ref_width)
            self.add_module(f'layer{i}', nn.Sequential(block))

    def forward(self, x):
        out = sum(
            getattr(self, f'layer{i}')[0].conv2(x)
            for i in range(1, self.num_stages + 1))
        return (out, )


MODELS.register_module(
    name='ScaleProbeBackbone', module=ScaleProbeBackbone, force=True)


def test_scaled_pipeline_places_the_transform():
    pose = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'),
        dict(type='mmpose.TopdownAffine', input_size=(48, 64)),
        dict(type='PackPoseInputs')
    ]
    new, mode = scaled_pipeline(pose, 0.5)
    assert mode == 'topdown'
    assert [s['type'] for s in new] == [
        'LoadImage', 'GetBBoxCenterScale', 'ScaleResolution',
        'mmpose.TopdownAffine', 'PackPoseInputs'
    ]
    assert new[2]['scale'] == 0.5
    assert len(pose) == 4  # the config's own list unchanged
    seg = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(256, 128), keep_ratio=True),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    new, mode = scaled_pipeline(seg, 2)
    assert mode == 'whole image'
    assert [s['type'] for s in new
            ][2:] == ['LoadAnnotations', 'ScaleResolution', 'PackSegInputs']
    with pytest.raises(ValueError, match='neither a TopdownAffine'):
        scaled_pipeline([dict(type='LoadImage')], 2)


def test_paired_stage_rates_orders_by_key():
    runs = {
        1.: dict(key=['a', 'b', 'c'], stage_rate=dict(layer1=[1., 2., 3.])),
        2.: dict(key=['c', 'a', 'b'], stage_rate=dict(layer1=[30., 10., 20.]))
    }
    keys, rates = paired_stage_rates(runs)
    assert keys == ['a', 'b', 'c']
    np.testing.assert_array_equal(rates['layer1'][2.], [10., 20., 30.])
    runs[2.]['key'] = ['c', 'a', 'd']
    with pytest.raises(RuntimeError, match='other samples'):
        paired_stage_rates(runs)


# The tool on constructed data -------------------------------------------

AMPLITUDES = (20, 40, 60, 80, 100, 120)
# two 48x64 persons per 160x96 image, corners on multiples of 4
PERSON_CORNERS = ((8, 16), (96, 16))

POSE_CONFIG = """
default_scope = 'mmpose'
custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)
codec = dict(
    type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(48, 64), sigma=2)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor', mean={mean}, std={std},
        bgr_to_rgb=True),
    backbone=dict(type='ScaleProbeBackbone', kinds=('detail', 'width'),
                  ref_width=48),
    head=dict(
        type='HeatmapHead', in_channels=8, out_channels=17,
        deconv_out_channels=None,
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type='CocoDataset', data_root='{root}/', data_mode='topdown',
        ann_file='annotations.json', data_prefix=dict(img='images/'),
        test_mode=True,
        pipeline=[
            dict(type='LoadImage'),
            dict(type='GetBBoxCenterScale', padding=1.),
            dict(type='TopdownAffine', input_size=codec['input_size']),
            dict(type='PackPoseInputs')
        ]))
"""


def checkerboard_set(root) -> str:
    """Three 160x96 images of grey 128, each with two persons: 48x64
    checkerboards 128 +- amplitude. Returns the config on it."""
    root = str(root)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    yy, xx = np.mgrid[0:64, 0:48]
    sign = np.where((xx + yy) % 2, 1, -1)
    for i in range(3):
        img = np.full((96, 160, 3), 128, np.uint8)
        for j, (x1, y1) in enumerate(PERSON_CORNERS):
            amp = AMPLITUDES[2 * i + j]
            img[y1:y1 + 64, x1:x1 + 48] = (128 + amp * sign)[..., None]
            kpts = []
            for _ in range(17):
                kpts += [x1 + 24, y1 + 32, 2]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=1,
                    bbox=[x1, y1, 48, 64],
                    area=48 * 64,
                    iscrowd=0,
                    num_keypoints=17,
                    keypoints=kpts))
        name = f'{i:03d}.png'
        assert cv2.imwrite(osp.join(root, 'images', name), img)
        images.append(dict(id=i + 1, file_name=name, width=160, height=96))
    with open(osp.join(root, 'annotations.json'), 'w') as f:
        json.dump(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='person')]), f)
    path = osp.join(root, 'probe_pose.py')
    with open(path, 'w') as f:
        f.write(POSE_CONFIG.format(root=root, mean=MEAN, std=STD))
    return path


def probe_checkpoint(config: str, path: str) -> str:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_pose_scale_curve_of_a_constructed_model(tmp_path, capsys):
    config = checkerboard_set(tmp_path)
    ckpt = probe_checkpoint(config, str(tmp_path / 'probe.pth'))
    out = tmp_path / 'out'
    scales = [0.25, 0.5, 1., 2.]
    report = load_tool('scale_response').main([
        config, ckpt, '--scales', '1', '0.25', '2', '0.5', '--out-dir',
        str(out), '--bootstrap', '200'
    ])
    printed = capsys.readouterr().out
    with open(out / 'scale_response.json') as f:
        assert json.load(f) == json.loads(json.dumps(report))
    assert osp.getsize(out / 'scale_response.png') > 1000
    assert report['scales'] == scales
    assert report['num_samples'] == 6
    assert report['scaling'].startswith('each person cropped')
    for scale in scales:  # each scale's Runner: its own log and config
        (dumped, ) = glob.glob(
            str(out / f'scale_{scale:g}' / '*' / 'vis_data' / 'config.py'))
        pipeline = Config.fromfile(dumped).test_dataloader.dataset.pipeline
        assert [p['type'] for p in pipeline
                ][2:4] == ['ScaleResolution', 'TopdownAffine']
        assert pipeline[2]['scale'] == scale

    # detail: at scale 1 the crop is the person's checkerboard, pixel for
    # pixel, so every horizontal step is 2 * amplitude (over std per
    # channel); averaged to 1/2 or 1/4, a checkerboard on its own mean
    # grey is one flat grey: no detail, rate exactly 1
    detail = report['stages']['layer1']
    per_person = 1 + 2 * np.array(AMPLITUDES) * np.mean(1 / np.array(STD))
    stage_rate = report['samples']['stage_rate']['layer1']
    np.testing.assert_allclose(stage_rate['1'], per_person, rtol=1e-5)
    for low in ('0.25', '0.5'):
        np.testing.assert_allclose(stage_rate[low], 1., rtol=1e-6)
    means = {e['scale']: e for e in detail['mean']}
    truth = {0.25: 1., 0.5: 1., 1.: per_person.mean()}
    for scale, value in truth.items():
        entry = means[scale]
        assert entry['value'] == pytest.approx(value, rel=1e-5)
        assert entry['n'] == 6
        low, high = entry['interval']
        assert low - 1e-5 <= value <= high + 1e-5
    assert means[1.]['interval'][1] - means[1.]['interval'][0] > 0.5
    # upsampling adds no detail: bilinear blur, between flat and scale 1
    rates_2 = np.array(stage_rate['2'])
    assert (rates_2 > 1.).all() and (rates_2 < per_person).all()
    diff = detail['largest_minus_smallest']
    assert diff['scales'] == [2., 0.25]
    assert diff['value'] == pytest.approx(rates_2.mean() - 1, rel=1e-5)
    assert diff['excludes_zero'] is True

    # width: the top-down model input is 48 wide at every scale
    width = report['stages']['layer2']
    for entry in width['mean']:
        assert entry['value'] == pytest.approx(1.)
        assert entry['interval'] == pytest.approx([1., 1.])
    assert width['largest_minus_smallest']['excludes_zero'] is False
    assert report['layers']['backbone.layer1.0.conv2']['mean'] == \
        pytest.approx([e['value'] for e in detail['mean']])

    lines = [x for x in printed.splitlines() if x.startswith('layer1:')]
    assert len(lines) == 1
    assert 's=0.25 1.000 [1.000, 1.000]' in lines[0]
    assert 's=2 - s=0.25' in lines[0] and '(excludes 0)' in lines[0]


SEG_CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean={mean}, std={std},
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='ScaleProbeBackbone', kinds=('width', 'detail'),
                  ref_width=128),
    decode_head=dict(
        type='FCNHead', in_channels=8, channels=8, num_convs=1,
        concat_input=False, num_classes=19, norm_cfg=None,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    test_cfg=dict(mode='whole'))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset', data_root='{root}',
        data_prefix=dict(img_path='leftImg8bit/val',
                         seg_map_path='gtFine/val'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(128, 64), keep_ratio=True),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ]))
"""


def test_seg_scale_curve_of_a_constructed_model(tmp_path):
    """Segmentation: the whole input is resized, so a rate that reads the
    input's width is the scale itself, for every image."""
    from synthetic_data import generate_cityscapes
    root = str(tmp_path / 'cityscapes')
    generate_cityscapes(
        root, num_train=1, num_val=3, image_size=(128, 64), seed=0)
    config = str(tmp_path / 'probe_seg.py')
    with open(config, 'w') as f:
        f.write(SEG_CONFIG.format(root=root, mean=MEAN, std=STD))
    ckpt = probe_checkpoint(config, str(tmp_path / 'probe.pth'))
    report = load_tool('scale_response').main([
        config, ckpt, '--scales', '0.25', '0.5', '1', '2', '--out-dir',
        str(tmp_path / 'out'), '--bootstrap', '100', '--no-plots'
    ])
    assert report['num_samples'] == 3
    assert report['scaling'].startswith('the whole model input')
    assert not osp.exists(tmp_path / 'out' / 'scale_response.png')
    width = report['stages']['layer1']
    for entry in width['mean']:
        # round(128 s) / 128 = s for these scales
        assert entry['value'] == pytest.approx(entry['scale'])
        assert entry['interval'] == pytest.approx([entry['scale']] * 2)
    for scale, rates in report['samples']['stage_rate']['layer1'].items():
        np.testing.assert_allclose(rates, float(scale))
    diff = width['largest_minus_smallest']
    assert diff['value'] == pytest.approx(2 - 0.25)
    assert diff['excludes_zero'] is True
    assert len(set(report['samples']['key'])) == 3
