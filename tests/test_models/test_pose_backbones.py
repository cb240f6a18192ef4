# Copyright (c) mmadc contributors. All rights reserved.
"""ResNetADC / HRNetADC against mmpose's own ResNet / HRNet (the oracle)."""
import logging
import pickle
import re
from typing import Dict, List

import pytest
import torch
import torch.nn as nn
import torchvision
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmpose.models.backbones import HRNet, ResNet
from mmpose.registry import MODELS
from mmpose.testing import get_packed_inputs

import mmadc.models  # noqa: F401  registers the models (until mmadc does)
from mmadc.models import HRNetADC, ResNetADC
from mmadc.models.backbones import (ADCBasicBlock, ADCBottleneck,
                                    iter_replaced_convs)
from mmadc.models.layers import DeformableConv2d, ScaleAdaptiveConv2d
from mmadc.ops import AdaptiveDilatedConv2d

# A small HRNet (W18 widths, one module and one block per branch).
HRNET_EXTRA = dict(
    stage1=dict(
        num_modules=1,
        num_branches=1,
        block='BOTTLENECK',
        num_blocks=(1, ),
        num_channels=(16, )),
    stage2=dict(
        num_modules=1,
        num_branches=2,
        block='BASIC',
        num_blocks=(1, 1),
        num_channels=(18, 36)),
    stage3=dict(
        num_modules=1,
        num_branches=3,
        block='BASIC',
        num_blocks=(1, 1, 1),
        num_channels=(18, 36, 72)),
    stage4=dict(
        num_modules=1,
        num_branches=4,
        block='BASIC',
        num_blocks=(1, 1, 1, 1),
        num_channels=(18, 36, 72, 144),
        multiscale_output=True))


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    # Small tensors on a shared 2-core machine: one thread is much faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize_norms(model: nn.Module, seed: int) -> None:
    """Random BN affine parameters and running statistics, so that equal
    outputs are not an artefact of identity-like BN layers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + .5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * .1)
                m.running_mean.copy_(
                    torch.randn(m.running_mean.shape, generator=gen) * .1)
                m.running_var.copy_(
                    torch.rand(m.running_var.shape, generator=gen) + .5)


def _regressor_keys(model: nn.Module) -> List[str]:
    return [k for k in model.state_dict() if '.rate_regressor.' in k]


def _adc_layers(model: nn.Module) -> List[AdaptiveDilatedConv2d]:
    return [m for m in model.modules() if isinstance(m, AdaptiveDilatedConv2d)]


def _assert_same_outputs(plain: nn.Module, adc: nn.Module,
                         x: torch.Tensor) -> None:
    plain.eval()
    adc.eval()
    with torch.no_grad():
        expected, out = plain(x), adc(x)
    assert len(out) == len(expected)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _load_plain_weights(plain: nn.Module, adc: nn.Module) -> None:
    result = adc.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == sorted(_regressor_keys(adc))
    assert len(result.missing_keys) > 0


@pytest.mark.parametrize('depth,num_blocks', [(18, 8), (50, 16)])
def test_resnet_adc_starts_as_resnet(depth, num_blocks):
    """At initialisation ResNetADC is mmpose's ResNet holding the same
    weights; only the rate regressors are extra."""
    torch.manual_seed(0)
    plain = ResNet(depth, out_indices=(0, 1, 2, 3))
    _randomize_norms(plain, 1)
    adc = ResNetADC(depth, out_indices=(0, 1, 2, 3))
    assert len(_adc_layers(adc)) == num_blocks
    block_cls = ADCBasicBlock if depth < 50 else ADCBottleneck
    assert all(isinstance(b, block_cls) for b in adc.layer1)
    _load_plain_weights(plain, adc)
    x = torch.randn(1, 3, 64, 48)
    _assert_same_outputs(plain, adc, x)
    # Not vacuous: rates other than 1 change the output.
    with torch.no_grad():
        adc.layer4[-1].conv2.rate_regressor.fc2.bias.fill_(2.0)
        assert not torch.allclose(adc(x)[-1], plain(x)[-1], atol=1e-3)


def test_hrnet_adc_starts_as_hrnet():
    torch.manual_seed(0)
    plain = HRNet(HRNET_EXTRA)
    _randomize_norms(plain, 2)
    adc = HRNetADC(HRNET_EXTRA)
    # stage 1: 1 Bottleneck; stages 2-4: 2 + 3 + 4 BasicBlocks
    assert len(_adc_layers(adc)) == 1 + 2 + 3 + 4
    assert isinstance(adc.layer1[0], ADCBottleneck)
    assert isinstance(adc.stage4[0].branches[3][0], ADCBasicBlock)
    assert 'blocks_dict' not in vars(adc)  # the per-stage table is gone
    _load_plain_weights(plain, adc)
    x = torch.randn(1, 3, 64, 64)
    _assert_same_outputs(plain, adc, x)
    # plain classes only: the whole model pickles (e.g. torch.save(model))
    restored = pickle.loads(pickle.dumps(adc))
    _assert_same_outputs(plain, restored, x)
    with torch.no_grad():
        adc.stage4[0].branches[0][0].conv2.rate_regressor.fc2.bias.fill_(2.)
        assert not torch.allclose(adc(x)[0], plain(x)[0], atol=1e-3)


def test_adc_stages_select_stages():
    resnet = ResNetADC(18, adc_stages=(False, True, False, True))
    for i, uses_adc in enumerate((False, True, False, True)):
        for block in getattr(resnet, f'layer{i + 1}'):
            assert isinstance(block.conv2, AdaptiveDilatedConv2d) == uses_adc
            assert type(block.conv1) is nn.Conv2d
    hrnet = HRNetADC(HRNET_EXTRA, adc_stages=(True, False, False, True))
    assert isinstance(hrnet.layer1[0].conv2, AdaptiveDilatedConv2d)
    assert type(hrnet.stage2[0].branches[0][0].conv2) is nn.Conv2d
    assert type(hrnet.stage3[0].branches[2][0].conv2) is nn.Conv2d
    assert isinstance(hrnet.stage4[0].branches[1][0].conv2,
                      AdaptiveDilatedConv2d)
    names = [n for n, _ in iter_replaced_convs(hrnet)]
    assert names[0] == 'layer1.0.conv2'
    assert len(names) == 1 + 4


@pytest.mark.parametrize('adc_cfg,layer_cls', [
    (dict(type='ADC', dilation_groups=4), AdaptiveDilatedConv2d),
    (dict(type='DC'), DeformableConv2d),
    (dict(type='SAC'), ScaleAdaptiveConv2d),
])
def test_layer_configs(adc_cfg, layer_cls):
    """Every replaced conv is the configured layer with the replaced conv's
    geometry (stride 2 in the first BasicBlock conv stays in conv1)."""
    model = ResNetADC(18, adc_cfg=adc_cfg)
    layers = dict(iter_replaced_convs(model))
    assert len(layers) == 8
    for layer in layers.values():
        assert type(layer) is layer_cls
        assert layer.stride == (1, 1) and layer.padding == (1, 1)
    if layer_cls is AdaptiveDilatedConv2d:
        assert all(m.dilation_groups == 4 for m in layers.values())
    out = model(torch.randn(1, 3, 64, 48))
    assert out[-1].shape == (1, 512, 2, 2)


def test_bad_config_errors_name_the_argument():
    with pytest.raises(ValueError, match='adc_stages'):
        ResNetADC(18, adc_stages=(True, True, True))
    with pytest.raises(ValueError, match='adc_stages'):
        ResNetADC(18, num_stages=3, adc_stages=(True, True, True, True))
    with pytest.raises(ValueError, match='adc_stages'):
        HRNetADC(HRNET_EXTRA, adc_stages=(True, True))
    with pytest.raises(KeyError, match='adc_cfg'):
        ResNetADC(18, adc_cfg=dict(type='Nope'))
    with pytest.raises(KeyError, match='adc_cfg'):
        HRNetADC(HRNET_EXTRA, adc_cfg=dict(type='Nope'))
    with pytest.raises(TypeError, match='adc_cfg'):
        ResNetADC(18, adc_cfg='ADC')
    # None keeps mmpose's plain blocks.
    assert _adc_layers(ResNetADC(18, adc_cfg=None)) == []


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logged_key_lists(messages: List[str]) -> Dict[str, List[str]]:
    """Key lists of MMEngine's load report ('missing keys in source
    state_dict: a, b' / 'unexpected key in source state_dict: c')."""
    found = {}
    for kind in ('missing keys', 'unexpected key'):
        for msg in messages:
            match = re.search(kind + r' in source state_dict: ([^\n]*)', msg)
            if match:
                found[kind] = [k.strip() for k in match.group(1).split(',')]
    return found


def test_torchvision_checkpoint_loads_through_init_cfg(tmp_path):
    """A torchvision ResNet-18 checkpoint loads into ResNetADC through
    init_cfg: every backbone weight, only rate-regressor keys missing, and
    the rates are still exactly 1 afterwards."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    _randomize_norms(tv, 3)
    state = tv.state_dict()
    path = tmp_path / 'resnet18_torchvision.pth'
    torch.save(state, path)

    model = ResNetADC(
        18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(records)

    report = _logged_key_lists(records.messages)
    assert sorted(report['missing keys']) == sorted(_regressor_keys(model))
    assert sorted(report['unexpected key']) == ['fc.bias', 'fc.weight']
    loaded = model.state_dict()
    assert set(loaded) - set(state) == set(_regressor_keys(model))
    for key, value in state.items():
        if not key.startswith('fc.'):
            assert torch.equal(loaded[key], value), key

    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 48))
    for layer in _adc_layers(model):
        assert torch.equal(layer.last_rates, torch.ones_like(layer.last_rates))
        assert not layer.rate_regressor.fc2.weight.any()


@pytest.mark.parametrize(
    'adc_cfg',
    [dict(type='ADC'), dict(type='DC'),
     dict(type='SAC')])
def test_init_weights_restores_identity_start(adc_cfg):
    """The backbones' own init_cfg (Kaiming / Normal on every Conv2d, which
    includes DC's offset conv) must not leave the predictors away from their
    identity start."""
    for model in (ResNetADC(18, adc_cfg=adc_cfg),
                  HRNetADC(HRNET_EXTRA, adc_cfg=adc_cfg)):
        reference = {}
        for name, layer in iter_replaced_convs(model):
            # ADC's first regressor layer is free (random) at the start.
            predictor = {
                k: v
                for k, v in layer.state_dict().items()
                if k not in ('weight', 'bias') and '.fc1.' not in k
            }
            reference[name] = {k: v.clone() for k, v in predictor.items()}
            with torch.no_grad():
                for value in predictor.values():
                    value.add_(1.0)  # what a careless initialiser leaves
        model.init_weights()
        for name, layer in iter_replaced_convs(model):
            state = layer.state_dict()
            for key, value in reference[name].items():
                assert torch.equal(state[key], value), (name, key)


def test_pretrained_adc_checkpoint_keeps_regressors(tmp_path):
    """Predictors present in a Pretrained checkpoint (e.g. fine-tuning an
    ADC model) are kept, even after other initialisers in init_cfg."""
    source = ResNetADC(18)
    with torch.no_grad():
        for layer in _adc_layers(source):
            layer.rate_regressor.fc2.weight.fill_(0.01)
            layer.rate_regressor.fc2.bias.fill_(1.5)
    path = tmp_path / 'resnet18_adc.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    model = ResNetADC(
        18,
        # mmpose zero-inits the last norms after a list init_cfg, even one
        # that loads a checkpoint; keep the comparison about the regressors.
        zero_init_residual=False,
        init_cfg=[
            dict(type='Kaiming', layer=['Conv2d', 'Linear']),
            dict(type='Pretrained', checkpoint=str(path))
        ])
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # A second call is ignored (MMEngine warns), trained rates survive it.
    model.init_weights()
    for key in _regressor_keys(model):
        assert torch.equal(model.state_dict()[key], source.state_dict()[key])


def _build_estimator() -> nn.Module:
    return MODELS.build(
        dict(
            type='TopdownPoseEstimator',
            data_preprocessor=dict(
                type='PoseDataPreprocessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True),
            backbone=dict(type='ResNetADC', depth=18),
            head=dict(
                type='HeatmapHead',
                in_channels=512,
                out_channels=17,
                deconv_out_channels=(32, 32, 32),
                deconv_kernel_sizes=(4, 4, 4),
                loss=dict(type='KeypointMSELoss', use_target_weight=True),
                decoder=dict(
                    type='MSRAHeatmap',
                    input_size=(64, 64),
                    heatmap_size=(16, 16),
                    sigma=2))))


def test_topdown_estimator_loss_and_rate_gradients():
    """TopdownPoseEstimator with ResNetADC-18: forward, mmpose's loss and
    backward; the last regressor layer of every ADC gets a gradient."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = _build_estimator()
    packed = get_packed_inputs(
        batch_size=2,
        img_shape=(64, 64),
        input_size=(64, 64),
        heatmap_size=(16, 16),
        with_reg_label=False,
        with_simcc_label=False)
    model.train()
    data = model.data_preprocessor(packed, training=True)
    losses = model(**data, mode='loss')
    assert set(losses) >= {'loss_kpt'}
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(loss)
    loss.backward()
    layers = _adc_layers(model.backbone)
    assert len(layers) == 8
    for layer in layers:
        fc2 = layer.rate_regressor.fc2
        assert fc2.weight.grad is not None and fc2.weight.grad.abs().sum() > 0
        assert fc2.bias.grad is not None and fc2.bias.grad.abs().sum() > 0
