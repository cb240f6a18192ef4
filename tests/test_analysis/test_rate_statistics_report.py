# Copyright (c) mmadc contributors. All rights reserved.
import csv
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from analysis_helpers import (build_pose_model, load_tool, tiny_coco,
                              val_annotations, write_pose_config)
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample
from rate_helpers import input_dependent_rates
from scipy import stats as scipy_stats

from mmadc.evaluation.functional import (RunningStats, SizeGroupedRateStats,
                                         instance_area, size_group)
from mmadc.models.utils import (ADCRateCollector, adc_layer_title,
                                describe_adc_layers, describe_layer,
                                find_adc_layers, layer_stage)
from mmadc.ops import AdaptiveDilatedConv2d

torch.set_num_threads(1)


@pytest.mark.parametrize(
    'area, group',
    [
        (0, 'small'),
        (1023.999, 'small'),
        (32**2, 'medium'),  # COCO's boundary: medium, ranges closed below
        (5000, 'medium'),
        (9215.999, 'medium'),
        (96**2, 'large'),
        (1e6, 'large'),
    ])
def test_size_group_thresholds(area, group):
    assert size_group(area) == group


@pytest.mark.parametrize('area', [-1, float('nan'), float('inf')])
def test_size_group_rejects_bad_area(area):
    with pytest.raises(ValueError, match='area'):
        size_group(area)


def test_running_stats_equal_numpy():
    rng = np.random.default_rng(0)
    # a large offset with a tiny spread: sums of squares would cancel
    data = 1e4 + 1e-3 * rng.standard_normal((1000, 7))
    stats = RunningStats(7)
    for lo, hi in ((0, 1), (1, 17), (17, 400), (400, 401), (401, 1000)):
        stats.update(data[lo:hi])
    stats.update(np.zeros((0, 7)))  # empty batches change nothing
    assert stats.count == 1000
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-6)
    np.testing.assert_array_equal(stats.min, data.min(0))
    np.testing.assert_array_equal(stats.max, data.max(0))
    # tensors and single vectors too
    small = RunningStats(2)
    small.update(torch.tensor([1., 3.]))
    small.update(torch.tensor([[3., 5.], [5., 7.]]))
    np.testing.assert_allclose(small.mean, [3., 5.])
    np.testing.assert_allclose(small.var, [8 / 3, 8 / 3])
    assert np.isnan(RunningStats(3).mean).all()
    with pytest.raises(ValueError, match='shape'):
        small.update(np.zeros((2, 3)))


def test_layer_names():
    assert layer_stage('backbone.layer1.2.conv2') == 'layer1'
    assert layer_stage('backbone.stage3.0.branches.1.3.conv2') == 'stage3'
    assert layer_stage('module.backbone.layer4.0.conv2') == 'layer4'
    assert layer_stage('head.conv') == 'head.conv'
    assert describe_layer('backbone.layer1.2.conv2') == 'layer1 block 3'
    assert describe_layer('backbone.stage2.0.branches.1.3.conv2') == \
        'stage2 0.branches.1.3'


def pose_sample(ann=None, bbox=None) -> PoseDataSample:
    sample = PoseDataSample()
    meta = dict(id=5, img_id=1)
    if ann is not None:
        meta['raw_ann_info'] = ann
    sample.set_metainfo(meta)
    if bbox is not None:
        sample.gt_instances = InstanceData(bboxes=np.array([bbox], float))
    return sample


def test_instance_area_sources():
    ann = dict(area=500., bbox=[10, 20, 30, 40])
    assert instance_area(pose_sample(ann)) == (500., 'area')
    assert instance_area(pose_sample(ann), 'bbox') == (1200., 'ann_bbox')
    assert instance_area(pose_sample(dict(bbox=[0, 0, 50, 50]))) == \
        (2500., 'ann_bbox')
    assert instance_area(pose_sample(bbox=[10, 10, 20, 30])) == \
        (200., 'input_bbox')
    with pytest.raises(ValueError, match='top-down'):
        instance_area(pose_sample([ann, ann]))
    with pytest.raises(ValueError, match='raw_ann_info'):
        instance_area(pose_sample())
    with pytest.raises(ValueError, match='size_by'):
        instance_area(pose_sample(ann), 'segm')


class Block(nn.Module):

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv2 = AdaptiveDilatedConv2d(
            channels, channels, 3, padding=1, dilation_groups=groups)


def toy_model() -> nn.Module:
    model = nn.Module()
    model.backbone = nn.ModuleDict(
        dict(
            layer1=nn.Sequential(Block(4, 4)),
            layer2=nn.Sequential(Block(4, 2))))
    model.head = nn.Conv2d(4, 4, 1)
    return model


def run(model, x):
    for stage in model.backbone.values():
        x = stage[0].conv2(x)
    return x


def test_collector_records_every_forward():
    model = toy_model()
    layers = find_adc_layers(model)
    assert list(layers) == [
        'backbone.layer1.0.conv2', 'backbone.layer2.0.conv2'
    ]
    with torch.no_grad():
        layers['backbone.layer1.0.conv2'].rate_regressor.fc2.bias.copy_(
            torch.tensor([0.5, 1.0, 1.5, 2.0]))
    x = torch.randn(3, 4, 8, 8)
    with ADCRateCollector(model) as collector:
        run(model, x)
        run(model, x[:2])
        rates = collector.pop()
        assert collector.pop() == {}
    assert rates['backbone.layer1.0.conv2'].shape == (5, 4)
    assert rates['backbone.layer2.0.conv2'].shape == (5, 2)
    torch.testing.assert_close(rates['backbone.layer1.0.conv2'],
                               torch.tensor([[0.5, 1.0, 1.5, 2.0]] * 5))
    assert (rates['backbone.layer2.0.conv2'] == 1).all()
    run(model, x)  # hooks removed on exit
    assert collector.pop() == {}
    with pytest.raises(ValueError, match='no ADC layers in the model of X'):
        ADCRateCollector(nn.Conv2d(1, 1, 1), 'X')


def test_size_grouped_stats_by_hand():
    model = toy_model()
    stats = SizeGroupedRateStats(describe_adc_layers(model))
    one = torch.tensor([[1., 2., 3., 4.], [3., 2., 1., 0.]])
    two = torch.tensor([[1., 1.], [3., 5.]])
    stats.update(
        {
            'backbone.layer1.0.conv2': one,
            'backbone.layer2.0.conv2': two
        }, ['small', 'large'], ['area', 'area'])
    stats.update(
        {
            'backbone.layer1.0.conv2': one[:1],
            'backbone.layer2.0.conv2': two[:1]
        }, ['small'])
    summary = stats.summary()
    assert summary['num_instances'] == dict(small=2, medium=0, large=1, all=3)
    layer1 = summary['layers']['backbone.layer1.0.conv2']
    assert layer1['groups']['small'] == dict(
        count=2, mean=[1., 2., 3., 4.], var=[0., 0., 0., 0.])
    assert layer1['groups']['medium']['mean'] == [None] * 4
    assert layer1['groups']['all']['mean'] == pytest.approx(
        [5 / 3, 2, 7 / 3, 8 / 3])
    # var of (1, 3, 1) = 8/9
    assert layer1['groups']['all']['var'][0] == pytest.approx(8 / 9)
    layer2 = summary['layers']['backbone.layer2.0.conv2']
    assert layer2['channels_per_group'] == 2
    assert layer2['groups']['large']['mean'] == [3., 5.]
    with pytest.raises(RuntimeError, match='one forward per instance'):
        stats.update({'backbone.layer1.0.conv2': one}, ['small', 'small'])


# End to end: the tool on the generated data with ResNetADC-18.


def expected_counts(annotations, key):
    counts = dict(small=0, medium=0, large=0)
    for ann in annotations:
        area = ann['area'] if key == 'area' else ann['bbox'][2] * \
            ann['bbox'][3]
        # COCO's thresholds written out: < 32^2, < 96^2, the rest
        group = 'small' if area < 1024 else \
            'medium' if area < 9216 else 'large'
        counts[group] += 1
    counts['all'] = len(annotations)
    return counts


def test_tool_at_initialisation(tmp_path):
    config = write_pose_config(tmp_path, 'ResNetADC')
    model = build_pose_model(config)
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = tmp_path / 'out'
    summary = load_tool('rate_statistics').main([
        config, ckpt, '--out-dir',
        str(out), '--boxes', 'gt', '--size-by', 'area'
    ])

    with open(out / 'rate_statistics.json') as f:
        saved = json.load(f)
    assert saved['num_instances'] == summary['num_instances']
    counts = expected_counts(val_annotations(), 'area')
    assert saved['num_instances'] == counts
    assert min(counts['small'], counts['medium'], counts['large']) > 0
    assert saved['area_sources'] == dict(area=counts['all'])
    assert len(saved['layers']) == 8  # 2 blocks x 4 stages of ResNet-18
    for name, layer in saved['layers'].items():
        for group in ('small', 'medium', 'large', 'all'):
            st = layer['groups'][group]
            assert st['count'] == counts[group]
            assert len(st['mean']) == layer['in_channels']
            assert st['mean'] == [1.0] * layer['in_channels'], name
            assert st['var'] == [0.0] * layer['in_channels'], name
    assert saved['layers']['backbone.layer3.1.conv2']['block'] == \
        'layer3 block 2'
    for stage in ('layer1', 'layer2', 'layer3', 'layer4'):
        assert osp.getsize(out / 'plots' / f'rates_{stage}.png') > 1000
    with open(out / 'rate_statistics.csv') as f:
        rows = f.read().splitlines()
    # header + per layer: in_channels x 4 size groups (incl. all)
    assert len(rows) == 1 + 4 * sum(layer['in_channels']
                                    for layer in saved['layers'].values())
    # constant rates (1 at initialisation): no rank correlation exists,
    # the difference is exactly 0
    assert list(
        saved['stage_trends']) == ['layer1', 'layer2', 'layer3', 'layer4']
    for stage, trend in saved['stage_trends'].items():
        assert trend['spearman']['value'] is None
        assert trend['large_minus_small']['value'] == 0.
        assert osp.getsize(out / 'plots' / f'trend_{stage}.png') > 1000
    assert saved['size_trend']['num_resamples'] == 1000
    with open(out / 'rate_size_trend.csv') as f:
        trend_rows = f.read().splitlines()
    # header + (8 layers + 4 stages) x 2 statistics
    assert len(trend_rows) == 1 + 12 * 2


def test_tool_reports_regressor_bias(tmp_path):
    config = write_pose_config(tmp_path, 'ResNetADC')
    model = build_pose_model(config)
    expected = {}
    with torch.no_grad():
        for name, layer in find_adc_layers(model).items():
            # zero weight: rate = relu(bias), the same for every person
            layer.rate_regressor.fc2.weight.zero_()
            bias = 0.5 + torch.arange(layer.dilation_groups) / 64.
            layer.rate_regressor.fc2.bias.copy_(bias)
            expected[name] = bias.tolist()
    ckpt = str(tmp_path / 'bias.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = tmp_path / 'out'
    summary = load_tool('rate_statistics').main([
        config, ckpt, '--out-dir',
        str(out), '--boxes', 'gt', '--size-by', 'bbox', '--max-instances', '6',
        '--no-plots'
    ])
    counts = expected_counts(val_annotations()[:6], 'bbox')
    assert summary['num_instances'] == counts
    assert summary['area_sources'] == dict(ann_bbox=6)
    for name, layer in summary['layers'].items():
        for group in ('small', 'medium', 'large', 'all'):
            st = layer['groups'][group]
            if st['count'] == 0:
                continue
            np.testing.assert_allclose(st['mean'], expected[name], rtol=1e-6)
            np.testing.assert_allclose(st['var'], 0., atol=1e-12)
    assert not (out / 'plots').exists()


def test_tool_size_trend(tmp_path, capsys):
    """Rates that differ between persons: the JSON's trends against
    scipy on the JSON's own persons, the CSV against the JSON, one stdout
    line per stage."""
    config = write_pose_config(tmp_path, 'ResNetADC')
    model = build_pose_model(config)
    input_dependent_rates(model, seed=0)
    ckpt = str(tmp_path / 'random.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = tmp_path / 'out'
    args = [
        config, ckpt, '--out-dir',
        str(out), '--boxes', 'gt', '--max-instances', '12', '--bootstrap',
        '100', '--seed', '5', '--no-plots'
    ]
    summary = load_tool('rate_statistics').main(args)
    printed = capsys.readouterr().out
    persons = summary['persons']
    assert len(persons['area']) == min(12, len(val_annotations()))
    assert summary['num_instances'] == expected_counts(val_annotations()[:12],
                                                       'bbox')
    for stage, trend in summary['stage_trends'].items():
        rates = persons['stage_rate'][stage]
        assert np.std(rates) > 0
        rho = trend['spearman']
        assert rho['value'] == pytest.approx(
            scipy_stats.spearmanr(persons['area'], rates).correlation)
        verdict = 'excludes 0' if rho['excludes_zero'] else 'includes 0'
        line = [x for x in printed.splitlines() if x.startswith(stage + ':')]
        assert len(line) == 1 and verdict in line[0], printed
        assert f'{rho["value"]:.3f}' in line[0]
    with open(out / 'rate_size_trend.csv') as f:
        rows = list(csv.DictReader(f))
    stage_rows = [r for r in rows if r['scope'] == 'stage']
    assert len(stage_rows) == 2 * len(summary['stage_trends'])
    for row in stage_rows:
        res = summary['stage_trends'][row['name']][row['statistic']]
        if res['value'] is None:  # an empty size group: empty cells
            assert row['value'] == row['low'] == row['high'] == ''
            continue
        assert float(row['value']) == res['value']
        assert [float(row['low']), float(row['high'])] == res['interval']
    with open(out / 'rate_statistics.json') as f:
        assert json.load(f)['stage_trends'] == summary['stage_trends']
    # the fixed seed: the same intervals again
    again = load_tool('rate_statistics').main(args)
    assert again['stage_trends'] == summary['stage_trends']
    with pytest.raises(ValueError, match='--bootstrap'):
        load_tool('rate_statistics').main(args + ['--bootstrap', '0'])


def test_tool_errors(tmp_path):
    tool = load_tool('rate_statistics')
    config = write_pose_config(tmp_path, 'ResNet')
    ckpt = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': build_pose_model(config).state_dict()}, ckpt)
    with pytest.raises(
            ValueError, match=f'no ADC layers in the model of {config}'):
        tool.main([config, ckpt, '--out-dir', str(tmp_path / 'o')])
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        tool.main([config, str(tmp_path / 'missing.pth')])
    # a plain ResNet checkpoint into the ADC model: loud, rates stay 1
    with pytest.warns(UserWarning, match='no rate regressor weights for 8'):
        summary = tool.main([
            write_pose_config(tmp_path, 'ResNetADC'), ckpt, '--out-dir',
            str(tmp_path / 'o'), '--max-instances', '2', '--no-plots'
        ])
    assert summary['layers']['backbone.layer1.0.conv2']['groups']['all'][
        'mean'] == [1.0] * 64
    with pytest.raises(FileNotFoundError, match='config'):
        tool.main([str(tmp_path / 'missing.py'), ckpt])


def test_layer_titles_follow_the_paper():
    # the paper's ADC_stageID_blockID, 1-based
    assert adc_layer_title('backbone.layer3.1.conv2') == 'ADC_3_2'
    assert adc_layer_title('module.backbone.layer1.0.conv2') == 'ADC_1_1'
    # HRNet: module, branch and block, each 1-based
    assert adc_layer_title('backbone.stage3.0.branches.1.3.conv2') == \
        'ADC_3_1_2_4'
    assert adc_layer_title('head.conv') == 'head.conv'


def test_channel_spread_and_merge_against_numpy():
    rng = np.random.default_rng(1)
    model = toy_model()
    layers = describe_adc_layers(model)
    rates = {
        'backbone.layer1.0.conv2': rng.uniform(0, 3, (9, 4)),
        'backbone.layer2.0.conv2': rng.uniform(0, 3, (9, 2))
    }
    groups = [
        'small', 'large', 'large', 'medium', 'small', 'large', 'medium',
        'large', 'small'
    ]
    whole = SizeGroupedRateStats(layers)
    whole.update({k: torch.from_numpy(v) for k, v in rates.items()}, groups)
    # two "processes", each with a part of the instances, merged
    first, second = SizeGroupedRateStats(layers), SizeGroupedRateStats(layers)
    first.update({
        k: torch.from_numpy(v[:4])
        for k, v in rates.items()
    }, groups[:4])
    second.update({
        k: torch.from_numpy(v[4:])
        for k, v in rates.items()
    }, groups[4:])
    first.merge(second)
    merged, single = first.summary(), whole.summary()
    assert merged['num_instances'] == single['num_instances']
    index = np.asarray(groups)
    for name, values in rates.items():
        for group in ('small', 'medium', 'large'):
            subset = values[index == group]
            st = merged['layers'][name]['groups'][group]
            np.testing.assert_allclose(st['mean'], subset.mean(0))
            np.testing.assert_allclose(st['var'], subset.var(0))
            spread = merged['layers'][name]['channel_spread'][group]
            # spread across channels of the per-channel mean rates
            assert spread['mean'] == pytest.approx(subset.mean(0).mean())
            assert spread['std'] == pytest.approx(subset.mean(0).std())
            assert spread == pytest.approx(
                single['layers'][name]['channel_spread'][group])
    assert merged['layers']['backbone.layer1.0.conv2']['title'] == 'ADC_1_1'


def write_detections(tmp_path) -> tuple:
    """A detection file for the generated val images: boxes of every size
    (and one of another category, which mmpose skips); returns its path
    and the expected counts by box area, computed here."""
    with open(
            osp.join(tiny_coco(), 'annotations',
                     'person_keypoints_val2017.json')) as f:
        images = json.load(f)['images']
    sides = [(10, 20), (31, 33), (40, 30), (95, 97), (100, 92), (120, 150),
             (20, 50)]
    dets, counts = [], dict(small=0, medium=0, large=0)
    for k, (w, h) in enumerate(sides):
        image = images[k % len(images)]
        dets.append(
            dict(
                image_id=image['id'],
                category_id=1,
                bbox=[5.0, 4.0, float(w), float(h)],
                score=0.5 + k / 100))
        area = w * h  # COCO's thresholds written out: < 32^2, < 96^2
        counts['small' if area < 1024 else 'medium' if area <
               9216 else 'large'] += 1
    dets.append(
        dict(
            image_id=images[0]['id'],
            category_id=2,
            bbox=[0., 0., 50., 50.],
            score=0.9))
    counts['all'] = len(sides)
    path = tmp_path / 'detections.json'
    path.write_text(json.dumps(dets))
    return str(path), counts


def test_tool_counts_the_detections(tmp_path):
    """--boxes det (the default): the persons are exactly the detection
    file's boxes (category 1, this split), grouped by box area."""
    config = write_pose_config(tmp_path, 'ResNetADC')
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': build_pose_model(config).state_dict()}, ckpt)
    detections, counts = write_detections(tmp_path)
    assert min(counts['small'], counts['medium'], counts['large']) > 0
    summary = load_tool('rate_statistics').main([
        config, ckpt, '--out-dir',
        str(tmp_path / 'out'), '--no-plots', '--cfg-options',
        f'val_dataloader.dataset.bbox_file={detections}'
    ])
    assert summary['num_instances'] == counts
    assert summary['area_sources'] == dict(input_bbox=counts['all'])
    assert summary['size_by'] == 'bbox'
    assert summary['boxes'].startswith('detections')
    tool = load_tool('rate_statistics')
    with pytest.raises(ValueError, match='--size-by area needs --boxes gt'):
        tool.main([config, ckpt, '--size-by', 'area'])
    with pytest.raises(ValueError, match='bbox_file'):
        tool.main([
            config, ckpt, '--out-dir',
            str(tmp_path / 'out'), '--cfg-options',
            'val_dataloader.dataset.bbox_file=None'
        ])
