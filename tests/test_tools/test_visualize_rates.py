# Copyright (c) mmadc contributors. All rights reserved.
"""tools/analysis/visualize_rates.py: the drawn footprints against the
rates mmpose's own inference gives and the backbones' known strides."""
import os.path as osp
import sys

import mmcv
import numpy as np
import pytest
from conftest import REPO_ROOT
from demo_helpers import (POSE_ADC_CFG, SEG_ADC_CFG, write_checkpoint,
                          write_image)

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis'))
import visualize_rates  # noqa: E402

from mmadc.apis import DemoError  # noqa: E402

BOXES = [(5., 10., 45., 60.), (60., 5., 150., 115.)]  # a small, a large one


def expected_pixel_scale(box, input_size=(96, 128), padding=1.25):
    """mmpose's GetBBoxCenterScale + TopdownAffine, done by hand: the box
    padded by 1.25 and widened or heightened to the input's aspect ratio,
    per input pixel."""
    w, h = (box[2] - box[0]) * padding, (box[3] - box[1]) * padding
    aspect = input_size[0] / input_size[1]
    w, h = (w, w / aspect) if w > h * aspect else (h * aspect, h)
    return w / input_size[0]


def upstream_rates(checkpoint, img, boxes):
    """Rates of every ADC layer in mmpose's own init_model +
    inference_topdown without flip test."""
    import torch
    from mmpose.apis import inference_topdown, init_model

    from mmadc.models.utils import ADCRateCollector
    model = init_model(POSE_ADC_CFG, checkpoint, device='cpu')
    model.test_cfg['flip_test'] = False
    with torch.no_grad(), ADCRateCollector(model) as collector:
        inference_topdown(model, img, np.array(boxes), 'xyxy')
        return {k: v.numpy() for k, v in collector.pop().items()}


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    return dict(
        pose=write_checkpoint(POSE_ADC_CFG, str(root / 'pose.pth')),
        seg=write_checkpoint(SEG_ADC_CFG, str(root / 'seg.pth')))


def test_pose_footprints(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    write_image(img)
    out = str(tmp_path / 'rates.png')
    panels = visualize_rates.main([
        img, POSE_ADC_CFG, checkpoints['pose'], '--bboxes',
        *[','.join(map(str, b)) for b in BOXES], '--out-file', out
    ])
    assert len(panels) == len(BOXES)  # one panel per person
    picture = mmcv.imread(out)
    assert picture is not None
    rates = upstream_rates(checkpoints['pose'], img, BOXES)
    for person, (panel, box) in enumerate(zip(panels, BOXES)):
        scale = expected_pixel_scale(box)
        stages = panel['stages']
        assert [s['stage']
                for s in stages] == [f'layer{i}' for i in (1, 2, 3, 4)]
        # each stage's last BasicBlock conv2 reads a map at these strides
        assert [s['stride'] for s in stages] == [(4., 4.), (8., 8.),
                                                 (16., 16.), (32., 32.)]
        for stage in stages:
            layer_rates = rates[stage['layer']][person]
            np.testing.assert_allclose(stage['rates'], layer_rates, rtol=1e-6)
            drawn = [g['rate'] for g in stage['groups']]
            assert drawn[0] == pytest.approx(layer_rates.min(), rel=1e-6)
            assert drawn[-1] == pytest.approx(layer_rates.max(), rel=1e-6)
            assert drawn[0] < drawn[-1]
            for group in stage['groups']:
                spacing = group['rate'] * stage['stride'][0] * scale
                np.testing.assert_allclose(
                    group['spacing_px'], (spacing, spacing), rtol=1e-5)
                for taps, point in zip(group['taps'], panel['points']):
                    assert taps.shape == (9, 2)
                    np.testing.assert_allclose(taps[4], point)  # centre tap
                    np.testing.assert_allclose(
                        taps.max(axis=0) - taps.min(axis=0),
                        (2 * spacing, 2 * spacing),
                        rtol=1e-5)


def test_seg_footprints_and_errors(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    write_image(img, 64, 128)
    out = str(tmp_path / 'rates.png')
    (panel, ) = visualize_rates.main(
        [img, SEG_ADC_CFG, checkpoints['seg'], '--out-file', out])
    assert osp.isfile(out) and len(panel['points']) == 9
    by_stage = {s['stage']: s for s in panel['stages']}
    # ResNetV1c-18-d8: layers 3 and 4 keep stride 8; they dilate their
    # BasicBlocks' conv1, while the ADC conv2 keeps dilation 1 (mmseg's
    # BasicBlock). The test pipeline resizes 128x64 to 256x128 (scale 2).
    for stage, dilation in (('layer3', 1), ('layer4', 1)):
        record = by_stage[stage]
        assert record['stride'] == (8., 8.)
        assert record['dilation'] == (dilation, dilation)
        for group in record['groups']:
            assert group['spacing_px'][0] == pytest.approx(
                dilation * group['rate'] * 8 / 2, rel=1e-5)
    with pytest.raises(DemoError, match='exists'):
        visualize_rates.main(
            [img, SEG_ADC_CFG, checkpoints['seg'], '--out-file', out])
    with pytest.raises(DemoError, match='only for pose'):
        visualize_rates.main([
            img, SEG_ADC_CFG, checkpoints['seg'], '--bboxes', '1,1,9,9',
            '--out-file',
            str(tmp_path / 'b.png')
        ])


@pytest.mark.parametrize('flag, value, most', [('--groups', 6, 5),
                                               ('--groups', 0, 5),
                                               ('--points', 51, 50)])
def test_out_of_range_counts_name_their_range(capsys, flag, value, most):
    """One colour per drawn group: --groups above the palette is refused
    with the range, not with a message about its lower bound."""
    with pytest.raises(SystemExit):
        visualize_rates.parse_args([
            'img.jpg', 'cfg.py', 'ckpt.pth', '--out-file', 'out.png', flag,
            str(value)
        ])
    assert f'{flag} must be in [1, {most}], got {value}' in (
        capsys.readouterr().err)
