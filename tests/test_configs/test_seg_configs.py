# Copyright (c) mmadc contributors. All rights reserved.
"""Every seg config under configs/seg parses, is mmseg's config of the same
name (ADC: plus the ADC backbone, nothing else), builds its model
(pretrained loading switched off) and loads a V1c checkpoint; loading the
PSANet configs stops with the fix where mmcv's compiled ops are missing.
"""
import glob
import logging
import os.path as osp
import re
import subprocess
import sys
from typing import Any, Dict, List

import mmseg
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS

import mmadc  # noqa: F401  registers everything, as custom_imports does
from mmadc.compat.compiled_ops import (MMCV_OPS_FIX, REQUIRED_OPS,
                                       require_mmcv_ops)
from mmadc.models import ResNetV1cADC
from mmadc.models.backbones import iter_replaced_convs
from mmadc.ops import AdaptiveDilatedConv2d

CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'seg')
# What 'mmseg::' refers to (the configs mmseg installs with itself).
MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
NAME = re.compile(r'(?P<method>fcn|psanet|deeplabv3|deeplabv3plus)_r50-d8'
                  r'(?P<adc>-adc)?_4xb2-40k_cityscapes-769x769\.py$')
HEADS = {
    'fcn': 'FCNHead',
    'psanet': 'PSAHead',
    'deeplabv3': 'ASPPHead',
    'deeplabv3plus': 'DepthwiseSeparableASPPHead'
}
# Table IV of the paper: (without ADC, with ADC) mIoU.
TARGETS = {
    'fcn': ('71.47', '75.74'),
    'psanet': ('77.99', '78.57'),
    'deeplabv3': ('78.58', '78.70'),
    'deeplabv3plus': ('78.97', '80.11')
}
PSAMASK_MESSAGE = ("PSANet needs mmcv's compiled ops (mmcv.ops.PSAMask); "
                   'install full mmcv: tools/install/setup_env.sh or '
                   '`mim install mmcv==2.1.0`')
ADC_KEYS = {'type', 'adc_cfg', 'adc_stages'}


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _name(path: str) -> str:
    return osp.basename(path)


def _mmseg_config(name: str) -> Config:
    """mmseg's own config of this name (the baseline's oracle)."""
    method = NAME.match(name)['method']
    return Config.fromfile(osp.join(MMSEG_CONFIGS, method, name))


def _unscoped(value: Any) -> Any:
    """``value`` without the ``_scope_='mmseg'`` that an ``mmseg::`` base
    adds to every ``type`` dict."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def _build(model_cfg) -> nn.Module:
    model_cfg = model_cfg.copy()
    model_cfg.pretrained = None  # nothing may be downloaded
    model_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model_cfg)


def test_every_experiment_has_a_config():
    """Table IV: four methods, each without and with ADC."""
    expected = {
        f'{m}_r50-d8{tag}_4xb2-40k_cityscapes-769x769.py'
        for m in HEADS
        for tag in ('', '-adc')
    }
    assert {_name(p) for p in CONFIGS} == expected


def test_readme_lists_every_config_with_its_target():
    with open(osp.join(CONFIG_DIR, 'README.md')) as f:
        readme = f.read()
    links = re.findall(r'\]\(([^)]+\.py)\)', readme)
    assert set(links) == {_name(p) for p in CONFIGS}
    for line in readme.splitlines():
        match = re.search(r'\]\(([^)]+\.py)\)', line)
        if match:
            name = match.group(1)
            parsed = NAME.match(name)
            target = TARGETS[parsed['method']][int(bool(parsed['adc']))]
            assert line.rstrip(' |').endswith(target), line


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_is_mmsegs_and_builds(path):
    name = _name(path)
    match = NAME.match(name)
    assert match, f'{name} does not follow the naming scheme'
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['mmadc'], allow_failed_imports=False)

    # Everything but custom_imports and (ADC) the backbone is mmseg's.
    base = _mmseg_config(name.replace('-adc', ''))
    ours, theirs = _unscoped(cfg.to_dict()), _unscoped(base.to_dict())
    ours.pop('custom_imports')
    backbone = ours['model'].pop('backbone')
    base_backbone = theirs['model'].pop('backbone')
    assert ours == theirs
    assert theirs['model']['pretrained'] == 'open-mmlab://resnet50_v1c'
    assert cfg.train_dataloader.batch_size == 2  # x 4 GPUs
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.crop_size == (769, 769)
    assert cfg.model.decode_head.type == HEADS[match['method']]
    if match['adc']:
        assert backbone['type'] == 'ResNetV1cADC'
        assert backbone['adc_cfg'] == dict(type='ADC', dilation_groups=None)
        assert backbone['adc_stages'] == (True, True, True, True)
        assert {
            k: v
            for k, v in backbone.items() if k not in ADC_KEYS
        } == {
            k: v
            for k, v in base_backbone.items() if k != 'type'
        }
    else:
        assert backbone == base_backbone

    model = _build(cfg.model)
    assert type(model.decode_head).__name__ == HEADS[match['method']]
    if match['adc']:
        assert type(model.backbone) is ResNetV1cADC
        assert model.backbone.deep_stem and not model.backbone.avg_down
        # The oracle: the baseline's backbone, built by mmseg (ResNetV1c).
        plain = _build(base.model).backbone
        assert type(plain) is ResNetV1c
        replaced = dict(iter_replaced_convs(model.backbone))
        assert len(replaced) == 16  # every block of ResNet-50
        for conv_name, layer in replaced.items():
            assert isinstance(layer, AdaptiveDilatedConv2d)
            assert layer.dilation_groups == layer.in_channels
            conv = plain.get_submodule(conv_name)
            assert (layer.dilation, layer.padding,
                    layer.stride) == (conv.dilation, conv.padding,
                                      conv.stride), conv_name
        assert {layer.dilation[0] for layer in replaced.values()} == {1, 2, 4}
    else:
        assert type(model.backbone) is ResNetV1c


def test_demo_adc_config_is_its_baseline_with_the_adc_v1c_backbone():
    """The segmentation demo's ADC config changes only its baseline's
    backbone type (ResNetV1c -> ResNetV1cADC) and adds ADC, and its
    backbone has the stem and the replaced convs of mmseg's ResNetV1c."""
    demo = osp.join(osp.dirname(CONFIG_DIR), 'demo')
    base = Config.fromfile(
        osp.join(demo,
                 'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py'))
    cfg = Config.fromfile(
        osp.join(
            demo,
            'fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128.py'))
    backbone = cfg.model.backbone.to_dict()
    base_backbone = base.model.backbone.to_dict()
    assert backbone.pop('type') == 'ResNetV1cADC'
    assert base_backbone.pop('type') == 'ResNetV1c'
    assert backbone.pop('adc_cfg') == dict(type='ADC')
    assert backbone == base_backbone
    model = _build(cfg.model).backbone
    plain = _build(base.model).backbone
    assert type(model) is ResNetV1cADC and type(plain) is ResNetV1c
    assert model.deep_stem and not model.avg_down
    replaced = dict(iter_replaced_convs(model))
    assert len(replaced) == 8  # every block of ResNet-18
    for conv_name, layer in replaced.items():
        conv = plain.get_submodule(conv_name)
        assert (layer.dilation, layer.padding,
                layer.stride) == (conv.dilation, conv.padding, conv.stride)
    ours = {k: v.shape for k, v in model.state_dict().items()}
    theirs = {k: v.shape for k, v in plain.state_dict().items()}
    assert {k: ours[k] for k in theirs} == theirs  # + the rate regressors


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logged_key_lists(messages: List[str]) -> Dict[str, List[str]]:
    found = {}
    for kind in ('missing keys', 'unexpected key'):
        for msg in messages:
            match = re.search(kind + r' in source state_dict: ([^\n]*)', msg)
            if match:
                found[kind] = [k.strip() for k in match.group(1).split(',')]
    return found


def test_adc_config_loads_v1c_checkpoint(tmp_path):
    """The FCN-ADC config's ``model.pretrained`` (open-mmlab://resnet50_v1c,
    here a V1c-format file written by the test) loads every backbone weight;
    only the rate-regressor keys are missing, and the model then computes
    what the baseline does (rates exactly 1)."""
    torch.manual_seed(0)
    adc_cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'fcn_r50-d8-adc_4xb2-40k_cityscapes-769x769.py'))
    plain = revert_sync_batchnorm(
        _build(
            _mmseg_config('fcn_r50-d8_4xb2-40k_cityscapes-769x769.py').model))
    plain.init_weights()
    state = plain.backbone.state_dict()
    path = str(tmp_path / 'resnet50_v1c.pth')
    torch.save(dict(state_dict=state), path)

    model_cfg = adc_cfg.model.copy()
    model_cfg.pretrained = path
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = revert_sync_batchnorm(MODELS.build(model_cfg))
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(records)
    report = _logged_key_lists(records.messages)
    regressor_keys = [
        k for k in model.backbone.state_dict() if '.rate_regressor.' in k
    ]
    assert sorted(report['missing keys']) == sorted(regressor_keys)
    assert 'unexpected key' not in report
    for key, value in state.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key

    # Same backbone weights, rates 1: same features as mmseg's ResNetV1c.
    plain.eval()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, out = plain.backbone(x), model.backbone(x)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for _, layer in iter_replaced_convs(model.backbone):
        assert torch.equal(layer.last_rates, torch.ones_like(layer.last_rates))


def test_psamask_check_passes_with_this_install():
    require_mmcv_ops(REQUIRED_OPS, needed_by='PSANet')
    from mmcv.ops import PSAMask
    assert PSAMask is not None


def test_missing_ops_are_named_with_the_fix(monkeypatch):
    with pytest.raises(RuntimeError) as info:
        require_mmcv_ops(('PSAMask', 'NoSuchOp'), needed_by='Something')
    assert str(info.value).startswith(
        "Something needs mmcv's compiled ops (mmcv.ops.PSAMask, "
        'mmcv.ops.NoSuchOp); ' + MMCV_OPS_FIX)
    assert "mmcv.ops has no ['NoSuchOp']" in str(info.value)
    # mmcv.ops does not import (as with mmcv-lite)
    monkeypatch.setitem(sys.modules, 'mmcv.ops', None)
    with pytest.raises(RuntimeError) as info:
        require_mmcv_ops(('PSAMask', ), needed_by='PSANet')
    assert str(info.value).startswith(PSAMASK_MESSAGE)
    assert 'import mmcv.ops failed: ModuleNotFoundError' in str(info.value)


def test_psanet_config_without_compiled_ops_names_the_fix(repo_root):
    """In a fresh process whose mmcv has no compiled extension (as with
    mmcv-lite: ``mmcv._ext`` does not import), loading a PSANet config
    stops at its ``custom_imports`` with the fix as the last line, not
    with MMEngine's generic custom-import error, mmpose's missing
    ``mmcv._ext`` or mmseg's "mmcv-full"."""
    config = osp.join(CONFIG_DIR,
                      'psanet_r50-d8-adc_4xb2-40k_cityscapes-769x769.py')
    code = ('import sys\n'
            "sys.modules['mmcv._ext'] = None  # mmcv-lite\n"
            'from mmengine.config import Config\n'
            f'Config.fromfile({config!r})\n')
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "RuntimeError: mmadc needs mmcv's compiled ops (mmcv.ops.PSAMask "
        "for mmseg's PSANet; mmpose's models import mmcv.ops as well); " +
        MMCV_OPS_FIX), proc.stderr[-2000:]
