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


@pytest.fixture
def editable_install(tmp_path, monkeypatch):
    """A PEP 660 style editable install of a package ``fakeadc``: sources
    (with ``.mim/model-index.yml``) importable from ``src``, and in ``site``
    only the ``.dist-info`` (RECORD, editable ``direct_url.json``)."""
    src, site = tmp_path / 'src', tmp_path / 'site'
    info = 'fakeadc-0.1.dist-info'
    files = {
        src / 'fakeadc' / '__init__.py':
        '',
        src / 'fakeadc' / '.mim' / 'model-index.yml':
        'Models:\n- Name: toy-model\n  Config: configs/toy.py\n',
        site / info / 'METADATA':
        'Metadata-Version: 2.1\nName: fakeadc\nVersion: 0.1\n',
        site / info / 'top_level.txt':
        'fakeadc\n',
        site / info / 'direct_url.json':
        '{"dir_info": {"editable": true}, "url": "file://%s"}' % src,
        site / info / 'RECORD':
        f'{info}/METADATA,,\n{info}/RECORD,,\n',
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(src))  # the editable import hook's part
    monkeypatch.setattr(sys, 'path', sys.path + [str(site)])
    yield src / 'fakeadc', site
    sys.modules.pop('fakeadc', None)


def record_paths(site) -> list:
    with open(site / 'fakeadc-0.1.dist-info' / 'RECORD') as f:
        return [line.split(',')[0] for line in f.read().splitlines()]


def test_mim_finds_an_editable_install_once_linked(editable_install):
    """mim's own loader (what `mim search` runs) fails on the editable
    install as pip leaves it, and finds the model index once linked; the
    link is in RECORD, so pip's uninstall removes it, and unlinking leaves
    the sources as they were."""
    from mim.commands.search import load_metadata_from_local
    source, site = editable_install
    with pytest.raises(FileNotFoundError, match='model-index.yml'):
        load_metadata_from_local('fakeadc')
    assert mim_tools.package_link_status('fakeadc') == 'missing'

    link = str(site / 'fakeadc')
    assert mim_tools.link_package('fakeadc') == link
    assert osp.realpath(link) == osp.realpath(source)
    assert [m.name for m in load_metadata_from_local('fakeadc').models
            ] == ['toy-model']
    assert record_paths(site)[-1] == 'fakeadc'
    assert mim_tools.package_link_status('fakeadc') == 'mmadc'
    assert mim_tools.link_package('fakeadc') is None  # idempotent

    assert mim_tools.unlink_package('fakeadc') == link
    assert not osp.lexists(link)
    assert 'fakeadc' not in record_paths(site)
    assert sorted(os.listdir(source)) == ['.mim', '__init__.py']


def test_regular_install_is_left_alone(editable_install):
    source, site = editable_install
    direct_url = site / 'fakeadc-0.1.dist-info' / 'direct_url.json'
    direct_url.write_text('{"dir_info": {}, "url": "file:///somewhere"}')
    assert mim_tools.package_link_status('fakeadc') == 'not needed'
    assert mim_tools.link_package('fakeadc') is None
    assert not osp.lexists(site / 'fakeadc')
