# Copyright (c) mmadc contributors. All rights reserved.
"""A file given as a checkpoint that is not one gets an error naming it
(torch.save itself writes the files that must pass)."""
import os.path as osp
import subprocess
import zipfile

import pytest
import torch
from conftest import PYTHON, REPO_ROOT

from mmadc.utils.checkpoint_file import (CheckpointFileError,
                                         check_checkpoint_file,
                                         load_fitting_checkpoint)


@pytest.mark.parametrize('zip_format', [True, False])
def test_torch_save_files_pass(tmp_path, zip_format):
    path = str(tmp_path / 'model.pth')
    torch.save({'state_dict': {
        'w': torch.ones(3)
    }},
               path,
               _use_new_zipfile_serialization=zip_format)
    check_checkpoint_file(path)


def _bad_files(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.randn(1000)}}, good)
    data = open(good, 'rb').read()
    files = {
        'empty': b'',
        'text': b'not a checkpoint at all\n',
        'truncated': data[:len(data) // 2],
    }
    paths = {}
    for name, content in files.items():
        paths[name] = str(tmp_path / f'{name}.pth')
        with open(paths[name], 'wb') as f:
            f.write(content)
    paths['foreign zip'] = str(tmp_path / 'foreign.pth')
    with zipfile.ZipFile(paths['foreign zip'], 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    return paths


def test_bad_files_name_the_file(tmp_path):
    for kind, path in _bad_files(tmp_path).items():
        with pytest.raises(CheckpointFileError) as info:
            check_checkpoint_file(path, what='--resume: checkpoint')
        message = str(info.value)
        assert message.startswith(f'--resume: checkpoint: "{path}"'), kind
        assert '\n' not in message
        # torch's advice would run arbitrary code from the file
        assert 'weights_only=False' not in message
    with pytest.raises(FileNotFoundError, match='does not exist'):
        check_checkpoint_file(str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('tool', ['test', 'train'])
def test_entry_points_refuse_an_empty_checkpoint(tmp_path, tool):
    empty = tmp_path / 'epoch_1.pth'
    empty.write_bytes(b'')
    config = osp.join(REPO_ROOT, 'configs', 'demo',
                      'td-hm_res18_1xb32-40e_synthetic-coco-128x96.py')
    script = osp.join(REPO_ROOT, 'tools', f'{tool}.py')
    args = [config, str(empty)] if tool == 'test' else [
        config, '--resume',
        str(empty), '--work-dir',
        str(tmp_path / 'work')
    ]
    proc = subprocess.run([PYTHON, script, *args],
                          capture_output=True,
                          text=True,
                          cwd=str(tmp_path),
                          timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f'"{empty}" is empty' in last, proc.stderr[-2000:]
    assert 'EOFError' not in proc.stderr


def test_fitting_checkpoint_loads_and_another_models_is_refused(tmp_path):
    """The weights of a fitting checkpoint (also one saved from a DDP
    wrapper) end up in the model; a checkpoint of another shape or with
    other names is refused with both files named, the model untouched."""
    saved = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    path = str(tmp_path / 'ddp.pth')
    torch.save(
        dict(
            state_dict={
                f'module.{k}': v
                for k, v in saved.state_dict().items()
            },
            meta=dict(epoch=3)), path)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert load_fitting_checkpoint(model, path, 'a.py') == dict(epoch=3)
    for name, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], value)

    other = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointFileError) as info:
        load_fitting_checkpoint(other, path, 'b.py')
    message = str(info.value)
    assert path in message and 'b.py' in message
    assert 'another shape' in message and '\n' not in message
    assert all(
        torch.equal(other.state_dict()[k], v) for k, v in before.items())


def test_folder_given_as_checkpoint(tmp_path):
    with pytest.raises(CheckpointFileError) as info:
        check_checkpoint_file(str(tmp_path))
    assert str(info.value) == (f'checkpoint: "{tmp_path}" is a folder, '
                               'expected a checkpoint file')


def _adc_net(adc: bool):
    from mmadc.ops import AdaptiveDilatedConv2d
    conv = AdaptiveDilatedConv2d if adc else torch.nn.Conv2d
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), conv(8, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8))


def test_baseline_checkpoint_fits_an_adc_model_only_when_allowed():
    """A checkpoint of the network without ADC lacks exactly the rate
    regressors: refused (naming the flag) unless allowed; with the flag
    any other difference is still refused."""
    from mmadc.utils.checkpoint_file import (adc_regressor_keys,
                                             check_weights_fit, weight_shapes)
    model = _adc_net(True)
    keys = adc_regressor_keys(model)
    assert keys and all(k.startswith('1.rate_regressor.') for k in keys)
    baseline = weight_shapes(_adc_net(False).state_dict())
    with pytest.raises(CheckpointFileError) as info:
        check_weights_fit(
            model,
            baseline,
            'b.pth',
            'adc.py',
            baseline_flag='--allow-baseline-checkpoint')
    message = str(info.value)
    assert message.startswith('checkpoint: "b.pth" does not fit the model '
                              'of "adc.py"')
    assert 'rate_regressor' in message
    assert message.endswith('pass --allow-baseline-checkpoint to load it '
                            'with every ADC rate 1')
    check_weights_fit(model, baseline, 'b.pth', 'adc.py', allow_baseline=True)
    check_weights_fit(model, weight_shapes(model.state_dict()), 'a.pth',
                      'adc.py')
    # anything but missing regressors: refused even when allowed, no hint
    others = {
        'resized': {
            **baseline, '0.weight': (4, 3, 3, 3)
        },
        'unexpected': {
            **baseline, 'head.weight': (1, )
        },
        'missing': {
            k: v
            for k, v in baseline.items() if k != '2.running_mean'
        },
    }
    for kind, shapes in others.items():
        with pytest.raises(CheckpointFileError) as info:
            check_weights_fit(
                model,
                shapes,
                'o.pth',
                'adc.py',
                allow_baseline=True,
                baseline_flag='--allow-baseline-checkpoint')
        assert '--allow-baseline-checkpoint' not in str(info.value), kind
