# Copyright (c) mmadc contributors. All rights reserved.
"""ADCRateRecordHook with ADCRateSizeMetric / ADCReceptiveFieldMetric in
MMEngine's own test loop, against rates computed one sample at a time."""
import uuid
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, InstanceData
from rate_helpers import input_dependent_rates
from torch.utils.data import Dataset

import mmadc  # noqa: F401  registers the hook and the metrics
from mmadc.evaluation import ADCRateSizeMetric
from mmadc.evaluation.functional import receptive_field
from mmadc.ops import AdaptiveDilatedConv2d

torch.set_num_threads(1)

# box sides of the samples: areas small, medium, large, small, large, ...
SIDES = [(10, 10), (40, 40), (100, 100), (20, 30), (120, 90), (50, 60), (5, 8)]


def group_of(w, h):
    area = w * h  # COCO's thresholds written out: < 32^2, < 96^2
    return 'small' if area < 1024 else 'medium' if area < 9216 else 'large'


class ToyPoseModel(BaseModel):
    """Two ADC layers whose rates depend on the input; ``passes`` forwards
    of the backbone per batch, like a flip test."""

    def __init__(self, passes: int = 1) -> None:
        super().__init__()
        self.passes = passes
        self.backbone = nn.ModuleDict(
            OrderedDict(
                layer1=nn.ModuleList([nn.Module()]),
                layer2=nn.ModuleList([nn.Module()])))
        self.backbone.layer1[0].conv2 = AdaptiveDilatedConv2d(
            4, 4, 3, padding=1)
        self.backbone.layer2[0].conv2 = AdaptiveDilatedConv2d(
            4, 4, 3, padding=1, dilation_groups=2)
        input_dependent_rates(self, seed=0, bias=1.5)

    def features(self, x):
        x = self.backbone.layer1[0].conv2(x)
        return self.backbone.layer2[0].conv2(x)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        for k in range(self.passes):
            self.features(inputs.flip(-1) if k else inputs)
        if mode == 'predict':
            return data_samples
        return inputs


class ToyBoxes(Dataset):
    metainfo = dict(dataset_name='toy')

    def __len__(self) -> int:
        return len(SIDES)

    def __getitem__(self, index: int) -> dict:
        w, h = SIDES[index]
        sample = BaseDataElement(metainfo=dict(id=index, img_id=index))
        sample.gt_instances = InstanceData(
            bboxes=np.array([[3., 4., 3. + w, 4. + h]]))
        generator = torch.Generator().manual_seed(index)
        return dict(
            inputs=torch.randn(4, 6, 6, generator=generator) * 3,
            data_samples=sample)


def collate(batch):
    return dict(
        inputs=[b['inputs'] for b in batch],
        data_samples=[b['data_samples'] for b in batch])


def run_test(tmp_path, model, metric, batch_size=3):
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        test_dataloader=dict(
            dataset=ToyBoxes(),
            batch_size=batch_size,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=collate,
            num_workers=0),
        test_cfg=dict(),
        test_evaluator=metric,
        custom_hooks=[dict(type='ADCRateRecordHook')],
        default_hooks=dict(logger=None, checkpoint=None),
        experiment_name=f'adc_rates_{uuid.uuid4().hex}')
    metrics = runner.test()
    return metrics, runner.test_loop.evaluator.metrics[0]


def rates_one_by_one(model):
    """Each sample alone through the model: its rates per layer, pass by
    pass (the oracle the batched records are checked against)."""
    out = []
    with torch.no_grad():
        for index in range(len(SIDES)):
            x = ToyBoxes()[index]['inputs'][None]
            per_pass = []
            for k in range(model.passes):
                model.features(x.flip(-1) if k else x)
                per_pass.append({
                    'backbone.layer1.0.conv2':
                    model.backbone.layer1[0].conv2.last_rates[0].double(),
                    'backbone.layer2.0.conv2':
                    model.backbone.layer2[0].conv2.last_rates[0].double(),
                })
            out.append(per_pass)
    return out


def test_size_metric_in_the_test_loop(tmp_path):
    model = ToyPoseModel()
    metrics, metric = run_test(tmp_path, model, dict(type='ADCRateSizeMetric'))
    expected = rates_one_by_one(model)
    groups = [group_of(w, h) for w, h in SIDES]
    summary = metric.summary
    assert summary['num_instances'] == dict(
        small=groups.count('small'),
        medium=groups.count('medium'),
        large=groups.count('large'),
        all=len(SIDES))
    assert metrics['adc_rate/num_small'] == groups.count('small')
    for name in ('backbone.layer1.0.conv2', 'backbone.layer2.0.conv2'):
        for group in ('small', 'medium', 'large'):
            rows = torch.stack([
                expected[i][0][name] for i, g in enumerate(groups)
                if g == group
            ]).numpy()
            st = summary['layers'][name]['groups'][group]
            np.testing.assert_allclose(st['mean'], rows.mean(0), rtol=1e-5)
            np.testing.assert_allclose(
                st['var'], rows.var(0), rtol=1e-4, atol=1e-10)
    assert rows.std() > 0  # the rates differ between samples
    assert metrics['adc_rate/layer2/large'] == pytest.approx(
        summary['layers']['backbone.layer2.0.conv2']['channel_spread']['large']
        ['mean'])


def test_size_metric_needs_one_forward_per_person(tmp_path):
    with pytest.raises(RuntimeError, match='one forward per instance'):
        run_test(tmp_path, ToyPoseModel(passes=2),
                 dict(type='ADCRateSizeMetric'))


def test_receptive_field_metric_counts_every_pass(tmp_path):
    model = ToyPoseModel(passes=2)
    metrics, metric = run_test(tmp_path, model,
                               dict(type='ADCReceptiveFieldMetric'))
    expected = rates_one_by_one(model)
    for row in metric.rows:
        rates = torch.stack(
            [p[row['layer']] for sample in expected for p in sample])
        assert row['samples'] == 2 * len(SIDES)
        assert row['rate']['mean'] == pytest.approx(float(rates.mean()))
        assert row['rate']['max'] == pytest.approx(float(rates.max()))
        assert row['receptive_field']['mean'] == pytest.approx(
            float(receptive_field(rates).mean()))
    assert metrics['adc_receptive_field/layer1/rate'] == pytest.approx(
        metric.rows[0]['rate']['mean'])


def test_metric_errors():
    metric = ADCRateSizeMetric()
    with pytest.raises(RuntimeError, match='ADCRateRecordHook'):
        metric.process({}, [dict(id=1, gt_instances=dict())])
    layers = dict(
        conv=dict(
            stage='conv',
            dilation_groups=2,
            channels_per_group=1,
            in_channels=2))
    sample = dict(
        adc_layers=layers,
        adc_rates=dict(conv=torch.ones(1, 2)),
        gt_instances=dict(bboxes=np.array([[0., 0., 10., 10.]])))
    metric.process({}, [sample, sample])
    # a padded sampler shows as more persons than the dataset has
    with pytest.raises(ValueError, match='round_up'):
        metric.evaluate(1)
    with pytest.raises(ValueError, match='size_by'):
        ADCRateSizeMetric(size_by='segm')


def test_size_metric_trend_of_constructed_rates():
    """Rates set to grow with the box area: Spearman 1 in every layer and
    stage, and the large - small difference computed here."""
    layers = OrderedDict(
        (name,
         dict(
             stage=stage,
             dilation_groups=groups,
             channels_per_group=1,
             in_channels=groups))
        for name, stage, groups in (('backbone.layer1.0.conv2', 'layer1', 2),
                                    ('backbone.layer1.1.conv2', 'layer1', 3),
                                    ('backbone.layer2.0.conv2', 'layer2', 1)))
    metric = ADCRateSizeMetric(num_resamples=200, seed=3)
    per_person = []
    for k, (w, h) in enumerate(SIDES):
        base = 1. + np.log(w * h) / 10  # increases with the area
        rates = OrderedDict(
            (name,
             torch.tensor(
                 [[base + j / 100 for j in range(info['dilation_groups'])]]))
            for name, info in layers.items())
        per_person.append(base)
        metric.process({}, [
            dict(
                adc_layers=layers,
                adc_rates=rates,
                gt_instances=dict(bboxes=np.array([[0., 0., w, h]])))
        ])
    metrics = metric.evaluate(len(SIDES))
    summary = metric.summary
    groups = np.array([group_of(w, h) for w, h in SIDES])
    base = np.array(per_person)
    for stage in ('layer1', 'layer2'):
        trend = summary['stage_trends'][stage]
        assert trend['spearman']['value'] == pytest.approx(1.)
        assert trend['spearman']['excludes_zero']
        assert metrics[f'adc_rate/{stage}/spearman'] == pytest.approx(1.)
    # the groups' mean over persons of the layer's mean over channels
    offsets = dict(layer1=np.mean([0.005, 0.01]), layer2=0.)
    for name, info in layers.items():
        diff = summary['layers'][name]['size_trend']['large_minus_small']
        expected = base[groups == 'large'].mean() - \
            base[groups == 'small'].mean()
        assert diff['value'] == pytest.approx(expected) and expected > 0
        assert diff['n'] == [
            int((groups == 'large').sum()),
            int((groups == 'small').sum())
        ]
    assert metrics['adc_rate/layer1/large_minus_small'] == pytest.approx(
        expected)
    # per-person stage rate: mean over the stage's layers of the means
    np.testing.assert_allclose(summary['persons']['stage_rate']['layer1'],
                               base + offsets['layer1'])
    assert summary['persons']['area'] == [float(w * h) for w, h in SIDES]
    assert summary['size_trend']['num_resamples'] == 200
    with pytest.raises(ValueError, match='num_resamples'):
        ADCRateSizeMetric(num_resamples=0)
