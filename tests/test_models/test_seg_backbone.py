# Copyright (c) mmadc contributors. All rights reserved.
"""mmseg's ResNetADC against mmseg's own ResNetV1c (the oracle), and
EncoderDecoders with it under the four decode heads of Table IV."""
import logging
import re
from typing import Dict, List

import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmpose.models.backbones import ResNet as PoseResNet
from mmseg.models.backbones import ResNet as SegResNet
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.structures import SegDataSample

import mmadc  # noqa: F401  registers everything, as custom_imports does
from mmadc.models import ResNetADC, ResNetV1cADC, SegResNetADC
from mmadc.models.backbones import (SegADCBasicBlock, SegADCBottleneck,
                                    iter_replaced_convs)
from mmadc.ops import AdaptiveDilatedConv2d

# The d8 backbone of mmseg's FCN/PSANet/DeepLab configs (ResNetV1c).
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)
BN = dict(type='BN', requires_grad=True)


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


def _build_seg(cfg: dict) -> nn.Module:
    with DefaultScope.overwrite_default_scope('mmseg'):
        return SEG_MODELS.build(cfg)


def _load_plain_weights(plain: nn.Module, adc: nn.Module) -> None:
    result = adc.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == sorted(_regressor_keys(adc))
    assert len(result.missing_keys) > 0


def test_one_name_resolves_per_scope():
    """'ResNetADC' is mmseg's ResNet under the mmseg scope and mmpose's
    under the mmpose scope, through the scope's registry and through
    MMEngine's root registry (what the Runner uses)."""
    for registry in (SEG_MODELS, ROOT_MODELS):
        with DefaultScope.overwrite_default_scope('mmseg'):
            seg = registry.build(
                dict(
                    type='ResNetADC',
                    depth=18,
                    deep_stem=True,
                    multi_grid=(1, 2, 4),
                    **D8))
        assert type(seg) is SegResNetADC
        assert isinstance(seg, SegResNet)
        assert seg.deep_stem and seg.multi_grid == (1, 2, 4)
        assert isinstance(seg.stem, nn.Sequential)
        assert isinstance(seg.layer1[0], SegADCBasicBlock)
    with DefaultScope.overwrite_default_scope('mmpose'):
        pose = ROOT_MODELS.build(dict(type='ResNetADC', depth=18))
    assert type(pose) is ResNetADC
    assert isinstance(pose, PoseResNet) and not isinstance(pose, SegResNet)
    assert not hasattr(pose, 'multi_grid')
    # mmpose's ResNet has no mmseg options: the scope really matters.
    with DefaultScope.overwrite_default_scope('mmpose'), pytest.raises(
            TypeError, match='multi_grid'):
        ROOT_MODELS.build(dict(type='ResNetADC', depth=18, multi_grid=None))
    v1c = _build_seg(dict(type='ResNetV1cADC', depth=18))
    assert type(v1c) is ResNetV1cADC
    assert v1c.deep_stem and not v1c.avg_down


@pytest.mark.parametrize('depth,num_blocks', [(18, 8), (50, 16)])
def test_starts_as_resnet_v1c(depth, num_blocks):
    """At initialisation mmseg's ResNetADC (deep stem, d8) is mmseg's
    ResNetV1c holding the same weights; only the rate regressors are extra.
    """
    torch.manual_seed(0)
    plain = ResNetV1c(depth=depth, **D8)
    _randomize_norms(plain, 1)
    adc = _build_seg(
        dict(
            type='ResNetADC',
            depth=depth,
            deep_stem=True,
            avg_down=False,
            **D8))
    layers = _adc_layers(adc)
    assert len(layers) == num_blocks
    block_cls = SegADCBasicBlock if depth < 50 else SegADCBottleneck
    assert all(isinstance(b, block_cls) for b in adc.layer4)
    _load_plain_weights(plain, adc)
    x = torch.randn(1, 3, 64, 64)
    plain.eval()
    adc.eval()
    with torch.no_grad():
        expected, out = plain(x), adc(x)
    assert [o.shape[-1] for o in out] == [16, 8, 8, 8]  # output stride 8
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for layer in layers:
        assert torch.equal(layer.last_rates, torch.ones_like(layer.last_rates))
    # Not vacuous: a rate other than 1 (in a dilated stage) changes it.
    with torch.no_grad():
        adc.layer3[-1].conv2.rate_regressor.fc2.bias.fill_(1.5)
        assert not torch.allclose(adc(x)[-1], expected[-1], atol=1e-3)


@pytest.mark.parametrize('depth,extra', [
    (50, dict(contract_dilation=True)),
    (50, dict(contract_dilation=False)),
    (50, dict(contract_dilation=True, multi_grid=(1, 2, 4))),
    (18, dict(contract_dilation=True)),
])
def test_base_dilation_is_the_replaced_convs(depth, extra):
    """Every ADC layer has the geometry (dilation, padding, stride, shape)
    mmseg's ResNetV1c gives the conv it replaces; dilated stages do dilate.
    """
    kwargs = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), **extra)
    plain = ResNetV1c(depth=depth, **kwargs)
    adc = ResNetV1cADC(depth=depth, **kwargs)
    replaced = dict(iter_replaced_convs(adc))
    assert len(replaced) == len(adc.layer1) + len(adc.layer2) + len(
        adc.layer3) + len(adc.layer4)
    dilations = []
    for name, layer in replaced.items():
        conv = plain.get_submodule(name)
        assert type(conv) is nn.Conv2d
        for attr in ('dilation', 'padding', 'stride', 'kernel_size',
                     'in_channels', 'out_channels'):
            assert getattr(layer, attr) == getattr(conv, attr), (name, attr)
        dilations.append(layer.dilation[0])
    if depth == 50:  # the Bottleneck's conv2 carries the stage's dilation
        layer4 = [b.conv2.dilation[0] for b in adc.layer4]
        expected = {
            (True, None): [2, 4, 4],
            (False, None): [4, 4, 4],
            (True, (1, 2, 4)): [1, 2, 4],
        }[(extra['contract_dilation'], extra.get('multi_grid'))]
        assert layer4 == expected
        first = 1 if extra['contract_dilation'] else 2
        assert adc.layer3[0].conv2.dilation == (first, first)
    else:  # mmseg's BasicBlock dilates conv1; its conv2 stays at 1
        assert set(dilations) == {1}
        assert adc.layer4[1].conv1.dilation == (4, 4)


def test_multi_grid_matches_mmseg():
    torch.manual_seed(0)
    kwargs = dict(depth=50, multi_grid=(1, 2, 4), norm_cfg=BN, **D8)
    plain = ResNetV1c(**kwargs)
    _randomize_norms(plain, 2)
    adc = ResNetV1cADC(**kwargs)
    _load_plain_weights(plain, adc)
    plain.eval()
    adc.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            adc(x)[-1], plain(x)[-1], rtol=1e-4, atol=1e-5)


def test_norm_eval_and_with_cp():
    """norm_eval keeps BN in eval mode while training; with_cp
    (checkpointing) changes neither the output nor the rate gradients."""
    torch.manual_seed(0)
    kwargs = dict(depth=18, norm_eval=True, out_indices=(3, ), **D8)
    model = ResNetV1cADC(**kwargs)
    model_cp = ResNetV1cADC(with_cp=True, **kwargs)
    model_cp.load_state_dict(model.state_dict())
    _randomize_norms(model, 3)
    _randomize_norms(model_cp, 3)
    for m in (model, model_cp):
        m.train()
        assert all(not bn.training for bn in m.modules()
                   if isinstance(bn, nn.BatchNorm2d))
    assert all(b.with_cp for b in model_cp.layer3)
    x = torch.randn(2, 3, 64, 64)
    outs, grads = [], []
    for m in (model, model_cp):
        out = m(x)[0]
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append(m.layer4[0].conv2.rate_regressor.fc2.weight.grad)
    torch.testing.assert_close(outs[0], outs[1])
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])


def test_bad_config_errors_name_the_argument():
    with pytest.raises(ValueError, match='adc_stages'):
        SegResNetADC(18, adc_stages=(True, True, True))
    with pytest.raises(KeyError, match='adc_cfg'):
        SegResNetADC(18, adc_cfg=dict(type='Nope'))
    with pytest.raises(TypeError, match='adc_cfg'):
        SegResNetADC(18, adc_cfg='ADC')
    with pytest.raises(ValueError, match='stage_with_dcn'):
        SegResNetADC(
            50,
            dcn=dict(type='DCN', deform_groups=1),
            stage_with_dcn=(False, False, True, True))
    # None keeps mmseg's plain blocks.
    assert _adc_layers(SegResNetADC(18, adc_cfg=None)) == []
    partial = SegResNetADC(18, adc_stages=(False, False, True, True))
    assert [n.split('.')[0] for n, _ in iter_replaced_convs(partial)
            ] == ['layer3', 'layer3', 'layer4', 'layer4']


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


def _init_logged(model: nn.Module) -> Dict[str, List[str]]:
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(records)
    return _logged_key_lists(records.messages)


@pytest.mark.parametrize('wrapped', [True, False], ids=['state_dict', 'plain'])
@pytest.mark.parametrize('how', ['pretrained', 'init_cfg'])
def test_v1c_checkpoint_loads(tmp_path, wrapped, how):
    """A checkpoint of mmseg's ResNetV1c (the format of
    open-mmlab://resnet50_v1c) loads through ``pretrained`` (what mmseg's
    configs set) or ``init_cfg``: every weight, only the rate-regressor
    keys missing, and the rates are exactly 1 afterwards."""
    torch.manual_seed(0)
    plain = ResNetV1c(depth=18, **D8)
    _randomize_norms(plain, 4)
    state = plain.state_dict()
    path = str(tmp_path / 'resnet18_v1c.pth')
    torch.save(dict(state_dict=state) if wrapped else state, path)

    cfg = dict(type='ResNetADC', depth=18, deep_stem=True, **D8)
    if how == 'pretrained':
        # mmseg's deprecated-but-used way: EncoderDecoder(pretrained=...)
        # hands it to the backbone, which warns and makes it an init_cfg.
        with pytest.warns(UserWarning, match='pretrained'):
            model = _build_seg(dict(cfg, pretrained=path))
    else:
        model = _build_seg(
            dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=path)))
    report = _init_logged(model)
    assert sorted(report['missing keys']) == sorted(_regressor_keys(model))
    assert 'unexpected key' not in report
    loaded = model.state_dict()
    assert set(loaded) - set(state) == set(_regressor_keys(model))
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key

    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        plain.eval()
        torch.testing.assert_close(out[-1], plain(x)[-1])
    for layer in _adc_layers(model):
        assert torch.equal(layer.last_rates, torch.ones_like(layer.last_rates))


def _fcn_aux(channels: int = 16) -> dict:
    return dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=channels,
        num_convs=1,
        concat_input=False,
        num_classes=4,
        norm_cfg=BN,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))


# The decode heads of Table IV, sized for ResNet-18 (512 channels out of
# stage 4, 64 out of stage 1) and a 128x128 input (16x16 at stride 8).
HEADS = {
    'FCNHead':
    dict(type='FCNHead', num_convs=2, concat_input=True),
    # PSANet's mask is 2 h' - 1 for the feature map shrunk by 2 (h' = 8),
    # like mmseg's (97, 97) for 769x769 (97 -> 49).
    'PSAHead':
    dict(type='PSAHead', mask_size=(15, 15), psa_type='bi-direction'),
    'ASPPHead':
    dict(type='ASPPHead', dilations=(1, 12, 24, 36)),
    'DepthwiseSeparableASPPHead':
    dict(
        type='DepthwiseSeparableASPPHead',
        dilations=(1, 12, 24, 36),
        c1_in_channels=64,
        c1_channels=8),
}


def _fake_batch(batch: int = 2, size: int = 128):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, size, size, generator=gen)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        label = torch.randint(0, 4, (1, size, size), generator=gen)
        label[:, :8] = 255  # some ignored pixels, as in Cityscapes
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        samples.append(sample)
    return inputs, samples


@pytest.mark.parametrize('head', list(HEADS))
def test_encoder_decoder_loss_and_rate_gradients(head):
    """EncoderDecoder (ResNetADC-18 d8, BN) with each decode head: forward,
    prediction, mmseg's loss and backward; every ADC's rate regressor gets
    a gradient."""
    torch.manual_seed(0)
    decode = dict(
        in_channels=512,
        in_index=3,
        channels=16,
        num_classes=4,
        norm_cfg=BN,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0),
        **HEADS[head])
    # ConfigDict: mmseg reads test_cfg by attribute, as from a config file.
    model = _build_seg(
        ConfigDict(
            type='EncoderDecoder',
            backbone=dict(
                type='ResNetADC',
                depth=18,
                deep_stem=True,
                norm_cfg=BN,
                # mmseg's default zeroes the BN after each conv2 when no
                # checkpoint is loaded, which would block every gradient
                # through conv2 at step 0; the configs load V1c weights.
                zero_init_residual=False,
                **D8),
            decode_head=decode,
            auxiliary_head=_fcn_aux(),
            test_cfg=dict(mode='whole')))
    assert type(model.decode_head).__name__ == head
    model.init_weights()
    inputs, samples = _fake_batch()

    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        preds = model(inputs, samples, mode='predict')
    # DeepLabV3+ decodes at stride 4 (with stage 1), the others at 8.
    side = 32 if head == 'DepthwiseSeparableASPPHead' else 16
    assert logits.shape == (2, 4, side, side)
    assert preds[0].pred_sem_seg.data.shape == (1, 128, 128)

    model.train()
    losses = model(inputs, samples, mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    layers = _adc_layers(model.backbone)
    assert len(layers) == 8
    for layer in layers:
        fc2 = layer.rate_regressor.fc2
        assert fc2.weight.grad is not None and fc2.weight.grad.abs().sum() > 0
        assert fc2.bias.grad is not None and fc2.bias.grad.abs().sum() > 0
