# Copyright (c) mmadc contributors. All rights reserved.
"""Let ``mim`` find what it runs: tool scripts for codebases that ship none,
and mmadc's own files after an editable install.

``mim train PACKAGE CONFIG`` runs ``PACKAGE/.mim/tools/train.py`` (or
``PACKAGE/tools/train.py``) of the installed package. The mmsegmentation
wheel ships neither, so ``mim train mmseg ...`` cannot start. This module
places two tiny scripts there, ``train.py`` and ``test.py``, which call
mmadc's generic entry points (:mod:`mmadc.entrypoints`, which read the task
from the config's ``default_scope``).

``mim search/train/test mmadc`` (openmim 0.3.9) look for the package in the
folder that holds its ``.dist-info`` (``site-packages/mmadc/.mim/...``). A
PEP 660 editable install (``pip install -e .``) leaves only the metadata
and an import hook there, so for such an install this module links
``site-packages/mmadc`` to the sources (whose ``.mim`` setup.py fills with
links) and lists the link in the install's ``RECORD``, so that pip's
uninstall, also the one before a reinstall, removes it::

    python -m mmadc.compat.mim_tools install     # what setup_env.sh runs
    python -m mmadc.compat.mim_tools status
    python -m mmadc.compat.mim_tools uninstall   # removes only what it made

A script a package ships itself is never touched; ``uninstall`` removes only
files carrying :data:`MARKER` (or an earlier version's marker) and the link.
"""
import argparse
import csv
import importlib.metadata
import importlib.util
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

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


def _editable_distribution(package: str):
    """The distribution of an editable install of ``package``, or None."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    direct_url = json.loads(dist.read_text('direct_url.json') or '{}')
    return dist if direct_url.get('dir_info', {}).get('editable') else None


def _record_file(dist) -> str:
    records = [f for f in dist.files or [] if f.name == 'RECORD']
    if not records:
        raise FileNotFoundError(f'{dist.metadata["Name"]}: its install has '
                                'no RECORD file to list the mim link in')
    return str(records[0].locate())


def _set_record_row(dist, row: str, present: bool) -> None:
    """Add ``row`` (a path, no hash) to the RECORD of ``dist`` or drop it."""
    path = _record_file(dist)
    with open(path, newline='', encoding='utf-8') as f:
        rows = [r for r in csv.reader(f) if r and r[0] != row]
    if present:
        rows.append([row, '', ''])
    with open(path, 'w', newline='', encoding='utf-8') as f:
        csv.writer(f, lineterminator='\n').writerows(rows)


def package_link_status(package: str = 'mmadc') -> str:
    """'mmadc' (an editable install, linked where mim looks), 'missing' (an
    editable install, not linked) or 'not needed' (no editable install)."""
    dist = _editable_distribution(package)
    if dist is None:
        return 'not needed'
    link = osp.join(str(dist.locate_file('')), package)
    if osp.islink(link) and osp.exists(link):
        return 'mmadc'
    return 'not needed' if osp.isdir(link) else 'missing'


def link_package(package: str = 'mmadc') -> Optional[str]:
    """For an editable install of ``package``, link the sources next to its
    metadata, where mim looks; return the link made, or None.

    Nothing is done for a regular install (the package lies there already)
    or an existing link to the sources; a dangling link is replaced.
    """
    dist = _editable_distribution(package)
    if dist is None:
        return None
    link = osp.join(str(dist.locate_file('')), package)
    source = package_root(package)
    if osp.islink(link):
        if osp.realpath(link) == osp.realpath(source):
            return None
        os.remove(link)  # dangling: the sources moved
    elif osp.exists(link):
        return None
    # RECORD first: a link pip does not know of would survive `pip install
    # .`, which would then write the wheel's files through it into the
    # sources.
    _set_record_row(dist, package, present=True)
    os.symlink(source, link, target_is_directory=True)
    return link


def unlink_package(package: str = 'mmadc') -> Optional[str]:
    """Remove the link :func:`link_package` made; return it, or None."""
    dist = _editable_distribution(package)
    if dist is None:
        return None
    link = osp.join(str(dist.locate_file('')), package)
    if not osp.islink(link):
        return None
    os.remove(link)
    _set_record_row(dist, package, present=False)
    return link


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('action', choices=['install', 'uninstall', 'status'])
    action = parser.parse_args().action
    if action == 'status':
        for name, state in status().items():
            print(f'{name}: {state}')
        print(f'mmadc for mim: {package_link_status()}')
        return
    if action == 'install':
        paths = install() + [p for p in [link_package()] if p]
    else:
        paths = uninstall() + [p for p in [unlink_package()] if p]
    verb = 'wrote' if action == 'install' else 'removed'
    for path in paths:
        print(f'{verb} {path}')
    if not paths:
        states = [f'{k} {v}' for k, v in status().items()]
        states.append(f'mmadc for mim {package_link_status()}')
        print(f'nothing to {action}: ' + ', '.join(states))


if __name__ == '__main__':
    main()
