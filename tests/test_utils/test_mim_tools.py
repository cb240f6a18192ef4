# Copyright (c) mmadc contributors. All rights reserved.
import os
import os.path as osp
import sys

import pytest

from mmadc.compat import mim_tools


@pytest.fixture
def fake_codebase(tmp_path, monkeypatch):
    """An importable package without mim tool scripts."""
    pkg = tmp_path / 'fakecodebase'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield str(pkg)
    sys.modules.pop('fakecodebase', None)


def test_installed_environment_has_mim_scripts():
    # After setup_env.sh, `mim train/test` finds a script for both tasks:
    # the package's own or the one mmadc placed.
    status = mim_tools.status()
    assert set(status) == {
        f'{pkg} {script}.py'
        for pkg in ('mmpose', 'mmseg')
        for script in ('train', 'test')
    }
    assert 'missing' not in status.values()


def test_install_and_uninstall_touch_only_missing_scripts(fake_codebase):
    tools = osp.join(fake_codebase, '.mim', 'tools')
    os.makedirs(tools)
    shipped = osp.join(tools, 'test.py')
    with open(shipped, 'w') as f:
        f.write('# the package own test script\n')

    written = mim_tools.install(['fakecodebase'])
    assert written == [osp.join(tools, 'train.py')]
    with open(written[0]) as f:
        text = f.read()
    assert text.startswith(mim_tools.MARKER)
    assert 'from mmadc.entrypoints.train import main' in text
    assert mim_tools.status(['fakecodebase']) == {
        'fakecodebase train.py': 'mmadc',
        'fakecodebase test.py': 'shipped'
    }
    # idempotent: a second install rewrites nothing new
    assert mim_tools.install(['fakecodebase']) == written

    assert mim_tools.uninstall(['fakecodebase']) == written
    assert not osp.exists(written[0])
    with open(shipped) as f:
        assert f.read() == '# the package own test script\n'


def test_scripts_of_earlier_versions_stay_managed(fake_codebase):
    """A script written before the module moved to mmadc.compat (its first
    line names mmadc.utils.mim_tools) is still mmadc's: install rewrites it
    with the current marker, uninstall removes it."""
    tools = osp.join(fake_codebase, '.mim', 'tools')
    os.makedirs(tools)
    old = osp.join(tools, 'train.py')
    with open(old, 'w') as f:
        f.write('# Installed by mmadc: python -m mmadc.utils.mim_tools\n'
                'from mmadc.entrypoints.train import main\n')
    assert mim_tools.status(['fakecodebase'])['fakecodebase train.py'] == \
        'mmadc'
    assert old in mim_tools.install(['fakecodebase'])
    with open(old) as f:
        assert f.readline().rstrip() == mim_tools.MARKER
    assert old in mim_tools.uninstall(['fakecodebase'])
    assert not osp.exists(old)
