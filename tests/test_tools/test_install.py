# Copyright (c) mmadc contributors. All rights reserved.
"""The installer (tools/install): mmcv wheels are kept per torch build, and
a wrong setting stops with one line before anything is installed."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

INSTALL = osp.join(REPO_ROOT, 'tools', 'install')
# The environments `make test` builds: torch 2.14 in .venv, torch 2.1 in the
# other two
ENVS = ('.venv', '.venv-torch-min', '.venv-stack-min')


def _tag(python: str) -> str:
    return subprocess.run(
        [python, osp.join(INSTALL, 'torch_build_tag.py')],
        capture_output=True,
        text=True,
        check=True).stdout.strip()


def test_torch_build_tag_names_version_commit_and_python():
    import torch
    tag = _tag(sys.executable)
    assert tag == (f'torch-{torch.__version__}-'
                   f'{torch.version.git_version[:12]}-'
                   f'cp{sys.version_info[0]}{sys.version_info[1]}')


def test_another_torch_gets_another_wheel_folder():
    """Environments with different torch builds keep their mmcv wheels in
    different folders, so neither installs the other's build; those with
    the same torch share one."""
    pythons = {sys.executable}
    pythons.update(
        osp.join(REPO_ROOT, env, 'bin', 'python') for env in ENVS
        if osp.isfile(osp.join(REPO_ROOT, env, 'bin', 'python')))
    tags = {python: _tag(python) for python in pythons}
    versions = {
        python:
        subprocess.run(
            [python, '-c', 'import torch; print(torch.__version__)'],
            capture_output=True,
            text=True,
            check=True).stdout.strip()
        for python in pythons
    }
    if len(set(versions.values())) < 2:
        pytest.skip('only one torch here (make test builds two)')
    for a in pythons:
        for b in pythons:
            assert (tags[a] == tags[b]) == (versions[a] == versions[b])


@pytest.mark.parametrize('setting, message', [
    ({
        'MMADC_STACK': 'requirements/no_such_stack.txt'
    }, 'MMADC_STACK: "requirements/no_such_stack.txt" is not a requirements '
     'file'),
    ({
        'MMADC_EDITABLE': 'yes'
    }, 'MMADC_EDITABLE must be 0 or 1, got "yes"'),
])
def test_setup_env_refuses_a_wrong_setting_first(tmp_path, setting, message):
    venv = tmp_path / 'venv'
    env = dict(os.environ, MMADC_VENV=str(venv), **setting)
    proc = subprocess.run(['bash', osp.join(INSTALL, 'setup_env.sh')],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f'setup_env.sh: {message}']
    assert not venv.exists()
