# Copyright (c) mmadc contributors. All rights reserved.
"""tools/deployment/pytorch2onnx.py as a user runs it, checked with plain
onnxruntime (the oracle: an independent runtime of standard operators)."""
import os.path as osp
import re
import subprocess

import numpy as np
import pytest
import torch
from conftest import PYTHON, REPO_ROOT, run_cli

from mmadc.ops import AdaptiveDilatedConv2d

onnx = pytest.importorskip('onnx', reason='the deploy extra is not installed')
onnxruntime = pytest.importorskip('onnxruntime')

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')
POSE_ADC = osp.join(DEMO, 'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py')
POSE = osp.join(DEMO, 'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')
SEG_ADC = osp.join(
    DEMO, 'fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128.py')
TOOL = osp.join(REPO_ROOT, 'tools', 'deployment', 'pytorch2onnx.py')

pytestmark = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='exporting ADC needs torch >= 2.4')


def _checkpoint(config, path):
    """A checkpoint of ``config`` with rates away from 1 (so that the
    export has to get the fractional sampling right)."""
    from mmadc.deployment import build_model
    model, _ = build_model(config, None)
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, AdaptiveDilatedConv2d):
                layer.rate_regressor.fc2.weight.normal_(0, 0.05)
                layer.rate_regressor.fc2.bias.uniform_(0.5, 2.5)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model


def _tool(*args):
    return subprocess.run([PYTHON, TOOL, *args],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)


@pytest.mark.parametrize('config,shape', [(POSE_ADC, None),
                                          (SEG_ADC, ('64', '96'))])
def test_export_matches_pytorch_in_onnxruntime(tmp_path, config, shape):
    """Standard ONNX domain only, dynamic batch, and onnxruntime equal to
    PyTorch (checked here independently of the tool's own report)."""
    ckpt = str(tmp_path / 'model.pth')
    model = _checkpoint(config, ckpt)
    out = str(tmp_path / 'model.onnx')
    args = [config, ckpt, '--out', out, '--dynamic-batch']
    if shape:
        args += ['--shape', *shape]
    proc = run_cli([PYTHON, TOOL, *args], cwd=REPO_ROOT)
    assert 'max error' in proc.stdout and '(ok' in proc.stdout
    graph = onnx.load(out)
    assert {op.domain for op in graph.opset_import} <= {'', 'ai.onnx'}
    # ADC's separable form: interpolation matrices and MatMuls, no
    # GridSample (whose generic kernel made the export 4-6x slower)
    ops = {node.op_type for node in graph.graph.node}
    assert 'MatMul' in ops and 'GridSample' not in ops
    height, width = (128, 96) if shape is None else map(int, shape)
    x = torch.randn(3, 3, height, width)
    session = onnxruntime.InferenceSession(
        out, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = model(x, None, mode='tensor')
    expected = (
        expected[0] if isinstance(expected, (list, tuple)) else expected)
    scale = expected.abs().max().item()
    assert np.abs(got - expected.numpy()).max() <= 1e-4 * scale


def test_config_without_adc_exports(tmp_path):
    ckpt = str(tmp_path / 'model.pth')
    _checkpoint(POSE, ckpt)
    proc = run_cli(
        [PYTHON, TOOL, POSE, ckpt, '--out',
         str(tmp_path / 'm.onnx')],
        cwd=REPO_ROOT)
    assert '(ok' in proc.stdout


def test_bad_inputs_give_one_line_errors(tmp_path):
    ckpt = str(tmp_path / 'pose.pth')
    _checkpoint(POSE, ckpt)
    out = str(tmp_path / 'm.onnx')
    cases = [
        ([POSE, str(tmp_path / 'missing.pth'), '--out',
          out], 'checkpoint: ".*missing.pth" does not exist'),
        ([str(tmp_path / 'nope.py'), ckpt, '--out',
          out], 'config: ".*nope.py" does not exist'),
        # a baseline checkpoint lacks the ADC model's rate regressors
        ([POSE_ADC, ckpt, '--out',
          out], "does not fit the model of .*weights of the config's model "
         'missing .*rate_regressor'),
        ([POSE, ckpt, '--out', out, '--shape', '0',
          '96'], '--shape: expected two positive sizes'),
    ]
    for args, pattern in cases:
        proc = _tool(*args)
        assert proc.returncode == 2, proc.stderr
        assert 'Traceback' not in proc.stderr, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith('pytorch2onnx: error: '), proc.stderr
        assert re.search(pattern, last), last
    assert not osp.exists(out)


def test_overwrite_replaces_an_earlier_export(tmp_path):
    """Without --overwrite an existing file (or its .data) is refused
    (tests/test_tools/test_cli_errors.py); with it the export replaces
    them and the new file loads."""
    ckpt = str(tmp_path / 'pose.pth')
    _checkpoint(POSE, ckpt)
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'an earlier export')
    (tmp_path / 'm.onnx.data').write_bytes(b'its weights')
    proc = _tool(POSE, ckpt, '--out', str(out))
    assert proc.returncode == 2 and 'exists' in proc.stderr
    assert out.read_bytes() == b'an earlier export'
    proc = run_cli(
        [PYTHON, TOOL, POSE, ckpt, '--out',
         str(out), '--overwrite'],
        cwd=REPO_ROOT)
    assert '(ok' in proc.stdout
    onnx.checker.check_model(onnx.load(str(out)))
