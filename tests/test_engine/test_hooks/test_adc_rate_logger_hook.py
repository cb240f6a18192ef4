# Copyright (c) mmadc contributors. All rights reserved.
import glob
import json
import os.path as osp
import uuid
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS, VISBACKENDS
from mmengine.runner import Runner
from mmengine.visualization import TensorboardVisBackend
from rate_helpers import input_dependent_rates
from torch.utils.data import Dataset

import mmadc.engine  # noqa: F401  registers the hook until mmadc does
from mmadc.engine.hooks.adc_rate_logger_hook import (ADCRateLoggerHook,
                                                     stage_rate_scalars)
from mmadc.ops import AdaptiveDilatedConv2d

torch.set_num_threads(1)

LAYERS = ('backbone.layer1.0.conv2', 'backbone.layer1.1.conv2',
          'backbone.stage2.0.conv2')


class Block(nn.Module):

    def __init__(self, channels: int, use_adc: bool = True) -> None:
        super().__init__()
        self.conv2 = AdaptiveDilatedConv2d(
            channels, channels, 3, padding=1) if use_adc else nn.Conv2d(
                channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv2(x)


class ToyModel(BaseModel):
    """Three ADC layers whose rates depend on the input: two in ``layer1``
    (ResNet style names) and one in ``stage2`` (HRNet style)."""

    def __init__(self, use_adc: bool = True) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            OrderedDict(
                layer1=nn.Sequential(Block(4, use_adc), Block(4, use_adc)),
                stage2=nn.Sequential(Block(4, use_adc))))
        input_dependent_rates(self, seed=0, bias=1.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.backbone(inputs)
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return out


class ToyDataset(Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(4, 6, 6, generator=generator) * 3)


class RateRecorder(Hook):
    """Copies every ADC layer's rates after each training iteration."""

    def __init__(self) -> None:
        self.rates = {}

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        layers = runner.model.backbone
        self.rates[runner.iter + 1] = {
            'backbone.layer1.0.conv2': layers.layer1[0].conv2.last_rates,
            'backbone.layer1.1.conv2': layers.layer1[1].conv2.last_rates,
            'backbone.stage2.0.conv2': layers.stage2[0].conv2.last_rates,
        }


class FakeWriter:
    """Stands in for tensorboard's SummaryWriter (not installed here)."""

    def __init__(self) -> None:
        self.calls = []

    def __getattr__(self, name):

        def record(*args, **kwargs):
            self.calls.append((name, args))

        return record


class FakeTensorboardVisBackend(TensorboardVisBackend):

    def _init_env(self):
        self._tensorboard = FakeWriter()


VISBACKENDS.register_module(
    name='FakeTensorboardVisBackend',
    module=FakeTensorboardVisBackend,
    force=True)


def make_runner(tmp_path, model, hooks, backends=('LocalVisBackend', )):
    return Runner(
        model=model,
        work_dir=str(tmp_path),
        experiment_name=f'adc_rate_hook_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        # lr 0: the rates still vary with the input, the weights do not
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        custom_hooks=list(hooks),
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type=b) for b in backends]),
        default_scope='mmengine')


def expected_scalars(rates: dict) -> dict:
    """Hand aggregation of the recorded rates per stage."""
    layer1 = np.concatenate([
        rates['backbone.layer1.0.conv2'].numpy().ravel(),
        rates['backbone.layer1.1.conv2'].numpy().ravel()
    ])
    stage2 = rates['backbone.stage2.0.conv2'].numpy().ravel()
    out = {}
    for stage, values in (('layer1', layer1), ('stage2', stage2),
                          ('all', np.concatenate([layer1, stage2]))):
        out[f'adc_rate/{stage}/mean'] = values.astype(np.float64).mean()
        out[f'adc_rate/{stage}/min'] = values.min()
        out[f'adc_rate/{stage}/max'] = values.max()
        out[f'adc_rate/{stage}/dead'] = (values == 0).mean()
    return out


def test_registered_in_root_registry():
    hook = HOOKS.build(dict(type='ADCRateLoggerHook', interval=10))
    assert isinstance(hook, ADCRateLoggerHook) and hook.interval == 10
    with pytest.raises(ValueError, match='interval'):
        ADCRateLoggerHook(interval=0)


def test_stage_rate_scalars_by_hand():
    scalars = stage_rate_scalars({
        'layer1': torch.tensor([1., 2., 3.]),
        'stage2': torch.tensor([0., 2.])
    })
    assert scalars == {
        'adc_rate/layer1/mean': 2.0,
        'adc_rate/layer1/min': 1.0,
        'adc_rate/layer1/max': 3.0,
        'adc_rate/layer1/dead': 0.0,
        'adc_rate/stage2/mean': 1.0,
        'adc_rate/stage2/min': 0.0,
        'adc_rate/stage2/max': 2.0,
        'adc_rate/stage2/dead': 0.5,
        'adc_rate/all/mean': pytest.approx(1.6),
        'adc_rate/all/min': 0.0,
        'adc_rate/all/max': 3.0,
        'adc_rate/all/dead': pytest.approx(0.2),
    }


def test_logged_values_equal_model_rates(tmp_path):
    recorder = RateRecorder()
    runner = make_runner(
        tmp_path,
        ToyModel(), [dict(type='ADCRateLoggerHook', interval=2), recorder],
        backends=('LocalVisBackend', 'FakeTensorboardVisBackend'))
    runner.train()

    # the rates differ between samples and iterations (not a constant)
    assert not torch.equal(recorder.rates[2]['backbone.layer1.0.conv2'],
                           recorder.rates[4]['backbone.layer1.0.conv2'])
    assert recorder.rates[2]['backbone.layer1.0.conv2'].shape == (2, 4)

    scalars_file, = glob.glob(
        osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    with open(scalars_file) as f:
        lines = [json.loads(line) for line in f]
    logged = {
        line['step']: line
        for line in lines if 'adc_rate/layer1/mean' in line
    }
    assert sorted(logged) == [2, 4]  # every 2 iterations, step = iter + 1
    for step in (2, 4):
        expected = expected_scalars(recorder.rates[step])
        got = {k: v for k, v in logged[step].items() if k != 'step'}
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert got[key] == pytest.approx(float(value), rel=1e-6), key
    assert runner.message_hub.get_scalar(
        'adc_rate/stage2/max').current() == pytest.approx(
            float(recorder.rates[4]['backbone.stage2.0.conv2'].max()))

    for step in (2, 4):
        image = osp.join(runner.log_dir, 'vis_data', 'vis_image',
                         f'adc_rate_histogram_{step}.png')
        assert osp.getsize(image) > 1000

    writer = runner.visualizer.get_backend(
        'FakeTensorboardVisBackend').experiment
    histograms = [
        args for name, args in writer.calls if name == 'add_histogram'
    ]
    assert [(tag, step)
            for tag, _, step in histograms] == [('adc_rate/layer1', 2),
                                                ('adc_rate/stage2', 2),
                                                ('adc_rate/layer1', 4),
                                                ('adc_rate/stage2', 4)]
    tag, values, step = histograms[-1]
    np.testing.assert_array_equal(
        values, recorder.rates[4]['backbone.stage2.0.conv2'].numpy().ravel())
    tb_scalars = {
        (args[0], args[2]): args[1]
        for name, args in writer.calls if name == 'add_scalar'
    }
    assert tb_scalars[('adc_rate/all/min', 4)] == pytest.approx(
        expected_scalars(recorder.rates[4])['adc_rate/all/min'])


def test_model_without_adc_layers(tmp_path):
    runner = make_runner(tmp_path, ToyModel(use_adc=False),
                         [dict(type='ADCRateLoggerHook', interval=1)])
    with pytest.raises(ValueError, match='no ADC layers'):
        runner.train()


def test_dead_rates_reported_and_warned_once(tmp_path, caplog):
    """A stage whose ReLU rates sit at 0 (here: stage2, its regressor's
    bias pushed far below 0) is reported as dead and warned about once,
    naming its layer; layer1 stays quiet."""
    model = ToyModel()
    with torch.no_grad():
        # zero weights make the rates independent of fc1's (unseeded)
        # initialisation: exactly relu(-50) = 0 in stage2 and 1.5 in layer1
        for block in (*model.backbone.layer1, *model.backbone.stage2):
            block.conv2.rate_regressor.fc2.weight.zero_()
        model.backbone.stage2[0].conv2.rate_regressor.fc2.bias.fill_(-50.)
    runner = make_runner(tmp_path, model,
                         [dict(type='ADCRateLoggerHook', interval=1)])
    with caplog.at_level('WARNING'):
        runner.train()
    assert runner.message_hub.get_scalar(
        'adc_rate/stage2/dead').current() == 1.0
    assert runner.message_hub.get_scalar(
        'adc_rate/layer1/dead').current() == 0.0
    warnings = [
        r.getMessage() for r in caplog.records
        if 'get no gradient' in r.getMessage()
    ]
    if not warnings:  # MMLogger may not propagate to caplog: read the log
        log, = glob.glob(osp.join(runner.log_dir, '*.log'))
        warnings = [
            line for line in open(log).read().splitlines()
            if 'get no gradient' in line
        ]
    assert len(warnings) == 1, warnings
    assert 'stage2' in warnings[0]
    assert 'backbone.stage2.0.conv2' in warnings[0]
    assert 'layer1' not in warnings[0]
