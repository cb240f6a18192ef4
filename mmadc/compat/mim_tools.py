# Copyright (c) mmadc contributors. All rights reserved.
"""Give ``mim train``/``mim test`` a script for codebases that ship none.

``mim train PACKAGE CONFIG`` runs ``PACKAGE/.mim/tools/train.py`` (or
``PACKAGE/tools/train.py``) of the installed package. The mmsegmentation
wheel ships neither, so ``mim train mmseg ...`` cannot start. This module
places two tiny scripts there, ``train.py`` and ``test.py``, which call
mmadc's generic entry points (:mod:`mmadc.entrypoints`, which read the task
from the config's ``default_scope``)::

    python -m mmadc.compat.mim_tools install     # what setup_env.sh runs
    python -m mmadc.compat.mim_tools status
    python -m mmadc.compat.mim_tools uninstall   # removes only our scripts

A script a package ships itself is never touched; ``uninstall`` removes only
files carrying :data:`MARKER` (or an earlier version's marker).
"""
import argparse
import importlib.util
import os
import os.path as osp
from typing import Dict, List, Sequence

MARKER = '# Installed by mmadc: python -m mmadc.compat.mim_tools'
PACKAGES = ('mmseg', 'mmpose')
SCRIPTS = ('train', 'test')
#: First lines of the scripts earlier mmadc versions wrote (before this
#: module moved from ``mmadc.utils``): still ours to update or remove.
LEGACY_MARKER = '# Installed by mmadc: python -m mmadc.utils.mim_tools'
OWN_MARKERS = (MARKER, LEGACY_MARKER)

TEMPLATE = '''{marker}
# `mim {script} {package}` runs this file; it calls mmadc's entry point.
# Remove: `python -m mmadc.compat.mim_tools uninstall`.
from mmadc.entrypoints.{script} import main

if __name__ == '__main__':
    main()
'''


def package_root(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'package "{package}" is not installed')
    return osp.dirname(spec.origin)


def script_status(package: str, script: str) -> str:
    """'shipped', 'mmadc' or 'missing' for ``package``'s mim script."""
    root = package_root(package)
    for path in (osp.join(root, '.mim', 'tools', f'{script}.py'),
                 osp.join(root, 'tools', f'{script}.py')):
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                return 'mmadc' if f.readline().rstrip() in OWN_MARKERS \
                    else 'shipped'
    return 'missing'


def install(packages: Sequence[str] = PACKAGES) -> List[str]:
    """Write the scripts that are missing; return the paths written."""
    written = []
    for package in packages:
        if importlib.util.find_spec(package) is None:
            continue
        for script in SCRIPTS:
            if script_status(package, script) == 'shipped':
                continue
            tools_dir = osp.join(package_root(package), '.mim', 'tools')
            os.makedirs(tools_dir, exist_ok=True)
            path = osp.join(tools_dir, f'{script}.py')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(
                    TEMPLATE.format(
                        marker=MARKER, script=script, package=package))
            written.append(path)
    return written


def uninstall(packages: Sequence[str] = PACKAGES) -> List[str]:
    """Remove the scripts mmadc wrote; return the paths removed."""
    removed = []
    for package in packages:
        if importlib.util.find_spec(package) is None:
            continue
        for script in SCRIPTS:
            if script_status(package, script) == 'mmadc':
                path = osp.join(
                    package_root(package), '.mim', 'tools', f'{script}.py')
                os.remove(path)
                removed.append(path)
    return removed


def status(packages: Sequence[str] = PACKAGES) -> Dict[str, str]:
    return {
        f'{package} {script}.py': script_status(package, script)
        for package in packages if importlib.util.find_spec(package)
        for script in SCRIPTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('action', choices=['install', 'uninstall', 'status'])
    action = parser.parse_args().action
    if action == 'status':
        for name, state in status().items():
            print(f'{name}: {state}')
        return
    paths = install() if action == 'install' else uninstall()
    verb = 'wrote' if action == 'install' else 'removed'
    for path in paths:
        print(f'{verb} {path}')
    if not paths:
        print(f'nothing to {action}: ' +
              ', '.join(f'{k} {v}' for k, v in status().items()))


if __name__ == '__main__':
    main()
