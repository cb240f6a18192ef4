# Copyright (c) mmadc contributors. All rights reserved.
import subprocess
import sys

import mmcv
import pytest

import mmadc
from mmadc.utils.version_check import (IncompatibleVersionError,
                                       check_versions, find_version_problems)


def test_installed_stack_is_supported():
    assert find_version_problems() == []
    check_versions()
    assert mmadc.__version__ == '.'.join(map(str, mmadc.version_info))


@pytest.mark.parametrize('bad', ['2.2.0', '1.7.1'])
def test_unsupported_mmcv_raises_naming_both_versions(monkeypatch, bad):
    monkeypatch.setattr(mmcv, '__version__', bad)
    with pytest.raises(IncompatibleVersionError) as info:
        check_versions()
    message = str(info.value)
    assert 'mmcv>=2.0.0,<2.2.0 is required' in message
    assert f'mmcv {bad} is installed' in message
    assert '\n' not in message


def test_missing_required_and_optional_packages():
    versions = dict(mmcv=None, mmengine='0.10.7', mmpose=None, mmseg='1.2.2')
    problems = find_version_problems(versions)
    assert problems == ['mmcv>=2.0.0,<2.2.0 is required but not installed']
    versions.update(mmcv='2.1.0', mmseg='0.30.0')
    assert find_version_problems(versions) == [
        'mmsegmentation>=1.0.0,<2.0.0 is required but mmsegmentation '
        '0.30.0 is installed'
    ]


def test_import_beside_unsupported_mmcv_prints_one_line():
    code = ('import mmcv; mmcv.__version__ = "2.2.0"\n'
            'import mmadc')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('mmadc.utils.version_check.'
                           'IncompatibleVersionError: mmadc: mmcv>=2.0.0,'
                           '<2.2.0 is required but mmcv 2.2.0 is installed')
