# Copyright (c) mmadc contributors. All rights reserved.
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from analysis_helpers import REPO_ROOT, load_tool, write_pose_config

from mmadc.analysis.receptive_field_report import format_receptive_field_table
from mmadc.evaluation.functional import ReceptiveFieldStats, receptive_field
from mmadc.models.utils import describe_adc_layers
from mmadc.ops import AdaptiveDilatedConv2d

torch.set_num_threads(1)


def test_eq8_hand_values():
    assert receptive_field(1.0, 3) == 9  # a plain 3x3 conv
    assert receptive_field(2.5, 3) == 36  # (3 * 2.5 - 2.5 + 1)^2 = 6^2
    assert receptive_field(2.0, 3) == 25  # (6 - 2 + 1)^2
    assert receptive_field(0.0, 3) == 1  # all taps on the centre
    assert receptive_field(1.0, 5) == 25
    # base dilation 2 and rate 1.5: rho = 3, (9 - 3 + 1)^2 = 49
    assert receptive_field(1.5, 3, dilation=2) == 49
    # per axis: 3x5 kernel at rate 1 covers 3 x 5 pixels
    assert receptive_field(1.0, (3, 5)) == 15
    np.testing.assert_allclose(
        receptive_field(np.array([1.0, 2.5]), 3), [9., 36.])
    torch.testing.assert_close(
        receptive_field(torch.tensor([1.0, 2.5]), (3, 3), (1, 1)),
        torch.tensor([9., 36.]))


def test_stats_by_hand():
    model = nn.Module()
    model.layer1 = nn.Module()
    model.layer1.conv2 = AdaptiveDilatedConv2d(
        4, 4, 3, padding=1, dilation_groups=2)
    model.layer2 = nn.Module()
    model.layer2.conv2 = AdaptiveDilatedConv2d(4, 4, 3, padding=2, dilation=2)
    stats = ReceptiveFieldStats(describe_adc_layers(model))
    stats.update({'layer1.conv2': torch.tensor([[1.0, 2.5]])})
    stats.update({'layer1.conv2': torch.tensor([[2.5, 1.0], [1.0, 1.0]])})
    rows = stats.summary()
    first, second = rows
    assert first['layer'] == 'layer1.conv2'
    assert first['samples'] == 3
    # rates 1, 2.5, 2.5, 1, 1, 1 -> fields 9, 36, 36, 9, 9, 9
    assert first['rate'] == dict(mean=pytest.approx(1.5), min=1.0, max=2.5)
    assert first['receptive_field'] == dict(
        mean=pytest.approx(18.), min=9., max=36.)
    # never ran
    assert second['samples'] == 0
    assert second['receptive_field'] == dict(mean=None, min=None, max=None)
    assert second['dilation'] == [2, 2]
    table = format_receptive_field_table(rows)
    assert 'layer1.conv2' in table and '36.00' in table and '-' in table


def test_tool_without_checkpoint(tmp_path):
    """Fresh model, every rate 1: every receptive field is 3 x 3 = 9. Run
    as a script, like a user would."""
    config = write_pose_config(tmp_path, 'ResNetADC')
    out = tmp_path / 'out'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'analysis', 'receptive_field.py'), config,
        '--num-images', '3', '--out-dir',
        str(out)
    ],
                          cwd=str(tmp_path),
                          env=dict(os.environ, OMP_NUM_THREADS='1'),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'backbone.layer4.1.conv2' in proc.stdout
    with open(out / 'receptive_field.json') as f:
        report = json.load(f)
    assert report['num_samples'] == 3
    assert len(report['layers']) == 8
    for row in report['layers']:
        assert row['samples'] == 3
        assert row['rate'] == dict(mean=1.0, min=1.0, max=1.0)
        assert row['receptive_field'] == dict(mean=9.0, min=9.0, max=9.0)


def test_tool_errors(tmp_path):
    tool = load_tool('receptive_field')
    config = write_pose_config(tmp_path, 'ResNet')
    with pytest.raises(ValueError, match='no ADC layers in the model of'):
        tool.main([config, '--num-images', '1'])
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        tool.main([
            write_pose_config(tmp_path, 'ResNetADC'),
            str(tmp_path / 'none.pth')
        ])


def test_dataset_without_usable_samples(tmp_path):
    """A val split without persons says so, naming the annotation file,
    instead of MMEngine's "need at least one array to concatenate"."""
    from synthetic_data import generate_coco_keypoints
    root = tmp_path / 'empty_coco'
    generate_coco_keypoints(
        str(root), num_train_images=1, num_val_images=0, image_size=(96, 64))
    config = write_pose_config(tmp_path, 'ResNetADC')
    with open(config) as f:
        text = f.read()
    from analysis_helpers import tiny_coco
    with open(config, 'w') as f:
        f.write(text.replace(tiny_coco(), str(root)))
    tool = load_tool('receptive_field')
    with pytest.raises(ValueError, match='no usable sample') as info:
        tool.main([config, '--num-images', '1'])
    assert 'person_keypoints_val2017.json' in str(info.value)


def test_truncated_annotation_file_is_named(tmp_path):
    import shutil

    from analysis_helpers import tiny_coco
    root = tmp_path / 'coco'
    shutil.copytree(tiny_coco(), root)
    ann = root / 'annotations' / 'person_keypoints_val2017.json'
    ann.write_text(ann.read_text()[:200])
    config = write_pose_config(tmp_path, 'ResNetADC')
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(text.replace(tiny_coco(), str(root)))
    with pytest.raises(ValueError, match='not valid JSON') as info:
        load_tool('receptive_field').main([config, '--num-images', '1'])
    assert 'person_keypoints_val2017.json' in str(info.value)
