# Copyright (c) mmadc contributors. All rights reserved.
"""A user's mistakes on the export, test and train command lines: each is
refused before any work with one line naming the argument, exit status 1
(2 for the export, as before), no traceback, and no file of the user's
replaced."""
import importlib.util
import os.path as osp
import re
import subprocess

import pytest
import torch
from conftest import PYTHON, REPO_ROOT
from demo_helpers import POSE_ADC_CFG, POSE_CFG, write_checkpoint

from mmadc.entrypoints import test as test_tool
from mmadc.entrypoints import train as train_tool

SEG_CFG = osp.join(REPO_ROOT, 'configs', 'demo',
                   'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py')
EXPORT = osp.join(REPO_ROOT, 'tools', 'deployment', 'pytorch2onnx.py')
TEST = osp.join(REPO_ROOT, 'tools', 'test.py')
TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')


def _load_export_tool():
    spec = importlib.util.spec_from_file_location('pytorch2onnx', EXPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('inputs')
    junk = root / 'junk.pth'
    junk.write_text('not a checkpoint\n')
    return dict(
        pose=write_checkpoint(POSE_CFG, str(root / 'pose.pth')),
        seg=write_checkpoint(SEG_CFG, str(root / 'seg.pth')),
        junk=str(junk),
        folder=str(root))


@pytest.fixture
def no_model_build(monkeypatch):
    """Fail a test if the tool builds a model: its checks must come
    first."""
    from mmadc.entrypoints import run_guard

    def refuse(*args, **kwargs):
        raise AssertionError('the model was built before the check')

    monkeypatch.setattr(run_guard, 'build_config_model', refuse)
    import mmadc.deployment
    monkeypatch.setattr(mmadc.deployment, 'build_model', refuse)


def _refused(capsys, main, argv, pattern, status=1):
    """``main(argv)`` stops with ``status`` and one line matching
    ``pattern`` after ``error: ``; returns that line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == status
    err = capsys.readouterr().err.strip().splitlines()
    assert err, 'no message'
    assert re.search(r': error: ' + pattern, err[-1]), err[-1]
    return err[-1]


def _cli(script, *args, cwd):
    proc = subprocess.run([PYTHON, script, *args],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, proc.stderr.strip().splitlines()[-1]


def test_export_refuses_outputs_before_building(files, tmp_path, capsys,
                                                no_model_build):
    tool = _load_export_tool()
    ckpt = files['pose']
    mine = tmp_path / 'mine.onnx'
    mine.write_bytes(b'my model')
    sidecar = tmp_path / 'new.onnx.data'
    sidecar.write_bytes(b'my weights')
    folder = tmp_path / 'folder'
    folder.mkdir()
    cases = [
        (['--out', str(mine)], f'--out: "{mine}" exists; pass --overwrite'),
        (['--out', str(tmp_path / 'new.onnx')],
         r'--out: ".*new.onnx.data" \(written with ".*new.onnx"\) exists'),
        (['--out', ckpt, '--overwrite'],
         f'--out: "{ckpt}" is the checkpoint .*not even with --overwrite'),
        (['--out', str(tmp_path / 'missing' / 'm.onnx')],
         '--out: the folder ".*missing" of .* does not exist'),
        (['--out', str(folder)], f'--out: "{folder}" is a folder, expected '
         r'a file path \(.onnx\)'),
        (['--out', str(tmp_path / 'm.txt')], '--out: .* expected one of '
         '.onnx'),
        (['--out',
          str(tmp_path / 'm.onnx'), '--shape', '100000', '100000'],
         '--shape: expected sizes H W of at most 8192, got 100000 100000'),
    ]
    for extra, pattern in cases:
        _refused(capsys, tool.main, [POSE_CFG, ckpt, *extra], pattern, 2)
    assert mine.read_bytes() == b'my model'
    assert sidecar.read_bytes() == b'my weights'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'folder', 'mine.onnx', 'new.onnx.data'
    ]
    assert not list(folder.iterdir())  # no stray .data in it


def test_export_names_a_folder_given_as_checkpoint(files, tmp_path, capsys):
    tool = _load_export_tool()
    _refused(
        capsys, tool.main,
        [POSE_CFG, files['folder'], '--out',
         str(tmp_path / 'm.onnx')],
        f'checkpoint: "{files["folder"]}" is a folder, expected a '
        'checkpoint file', 2)


def test_export_cli_is_one_line(files, tmp_path):
    status, last = _cli(
        EXPORT, POSE_CFG, files['pose'], '--out', files['pose'], cwd=tmp_path)
    assert status == 2
    assert last.startswith('pytorch2onnx: error: --out: ') and \
        'is the checkpoint' in last
    assert torch.load(files['pose'], map_location='cpu')['state_dict']


def test_test_tool_refuses_outputs_before_building(files, tmp_path,
                                                   monkeypatch, capsys,
                                                   no_model_build):
    monkeypatch.chdir(tmp_path)
    ckpt = files['pose']
    same = str(tmp_path / 'same.pkl')
    metrics = tmp_path / 'metrics.json'
    metrics.write_text('{"mine": 1}')
    afile = tmp_path / 'labels.txt'
    afile.write_text('mine')
    cases = [
        (POSE_CFG, ['--out', same, '--dump', same],
         f'--dump: "{same}" is also given as --out; the two need different'),
        (POSE_CFG, ['--out', 'm.txt'],
         '--out: "m.txt" has the extension ".txt", expected one of .json, '
         '.yaml, .yml, .pkl'),
        (POSE_CFG, ['--out', str(metrics)],
         f'--out: "{metrics}" exists; pass --overwrite'),
        (POSE_CFG, ['--dump', 'p.json'], '--dump: .* expected one of .pkl'),
        (POSE_CFG, ['--out', ckpt,
                    '--overwrite'], f'--out: "{ckpt}" is the checkpoint'),
        (POSE_CFG, ['--dump', str(tmp_path / 'no' / 'p.pkl')],
         '--dump: the folder .* does not exist'),
        (SEG_CFG, ['--out', str(afile)],
         f'--out: "{afile}" is a file, expected a folder'),
        (POSE_CFG, ['--work-dir', str(afile)],
         '--work-dir: .* is a file, expected a folder'),
    ]
    for config, extra, pattern in cases:
        _refused(capsys, test_tool.main, [config, ckpt, *extra], pattern)
    assert not osp.exists(same) and not osp.exists('m.txt')
    assert metrics.read_text() == '{"mine": 1}'
    assert afile.read_text() == 'mine'


def test_test_tool_refuses_another_models_checkpoint(files, tmp_path,
                                                     monkeypatch, capsys):
    """The Runner loads with strict=False and would evaluate a half
    initialised model; the tool refuses, and the baseline flag admits only
    a checkpoint lacking just the ADC rate regressors."""
    monkeypatch.chdir(tmp_path)
    flag = '--allow-baseline-checkpoint'
    last = _refused(
        capsys, test_tool.main, [POSE_CFG, files['seg']],
        f'checkpoint: "{files["seg"]}" does not fit the model '
        f'of "{POSE_CFG}"')
    assert flag not in last
    last = _refused(
        capsys, test_tool.main, [POSE_ADC_CFG, files['pose']],
        "checkpoint: .* does not fit the model of .*weights of "
        "the config's "
        'model missing .*rate_regressor')
    assert last.endswith(f'pass {flag} to load it with every ADC rate 1')
    last = _refused(capsys, test_tool.main, [POSE_ADC_CFG, files['seg'], flag],
                    'checkpoint: .* does not fit')
    assert 'weights of another model' in last and flag not in last


def test_test_tool_input_mistakes(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cases = [
        ([str(tmp_path / 'nope.py'),
          files['pose']], 'config: ".*nope.py" does not exist'),
        ([POSE_CFG, str(tmp_path / 'nope.pth')],
         'checkpoint: ".*nope.pth" does not exist'),
        ([POSE_CFG, files['junk']],
         'checkpoint: ".*junk.pth" is not a PyTorch checkpoint'),
        ([POSE_CFG, files['folder']],
         'checkpoint: ".*" is a folder, expected a checkpoint'),
    ]
    for argv, pattern in cases:
        _refused(capsys, test_tool.main, argv, pattern)


@pytest.mark.parametrize('tool', ['test', 'train'])
def test_cli_input_mistakes_are_one_line(files, tmp_path, tool):
    """As a user runs the tools: no traceback before the message."""
    if tool == 'test':
        cases = [([str(tmp_path / 'nope.py'),
                   files['pose']], 'config: ".*nope.py" does not exist'),
                 ([POSE_CFG, files['junk']],
                  'checkpoint: ".*junk.pth" is not a PyTorch checkpoint')]
    else:
        work = ['--work-dir', str(tmp_path / 'work')]
        cases = [
            ([POSE_CFG, '--resume',
              str(tmp_path / 'nope.pth'),
              *work], '--resume: checkpoint: ".*nope.pth" does not exist'),
            ([POSE_CFG, '--resume', files['junk'],
              *work], '--resume: checkpoint: .* is not a PyTorch checkpoint')
        ]
    for argv, pattern in cases:
        status, last = _cli(
            TEST if tool == 'test' else TRAIN, *argv, cwd=tmp_path)
        assert status == 1
        assert re.match(f'{tool}.py: error: {pattern}', last), last
    assert not osp.exists(tmp_path / 'work')


def test_train_tool_input_mistakes(files, tmp_path, capsys):
    work = ['--work-dir', str(tmp_path / 'work')]
    _refused(capsys, train_tool.main, [str(tmp_path / 'nope.py'), *work],
             'config: ".*nope.py" does not exist')
    _refused(capsys, train_tool.main,
             [POSE_CFG, '--resume', files['folder'], *work],
             '--resume: checkpoint: .* is a folder, expected a checkpoint')
    assert not osp.exists(tmp_path / 'work')


def test_export_on_an_old_torch_is_one_line(monkeypatch, tmp_path):
    """torch < 2.4 (no torch.library.custom_op) cannot trace ADC: the tool
    says so in one line before building anything (it was a TypeError from
    torch.export)."""
    from mmadc.deployment.onnx_export import ExportError, check_export_support
    if hasattr(torch.library, 'custom_op'):
        check_export_support()  # no error where export works
        monkeypatch.delattr(torch.library, 'custom_op')
    with pytest.raises(
            ExportError,
            match=r'needs torch >= 2\.4.*this is '
            f'torch {re.escape(torch.__version__)}$'):
        check_export_support()
