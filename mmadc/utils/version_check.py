# Copyright (c) mmadc contributors. All rights reserved.
"""Check that the installed OpenMMLab packages are versions mmadc supports."""
import importlib
import importlib.metadata
import importlib.util
import sys
from typing import Dict, List, Optional, Tuple

from mmengine.utils import digit_version

# module name -> (pip name, minimum inclusive, maximum exclusive, required)
# mmcv < 2.2.0 because mmseg 1.x refuses newer mmcv at import time.
SUPPORTED: Dict[str, Tuple[str, str, str, bool]] = {
    'mmcv': ('mmcv', '2.0.0', '2.2.0', True),
    'mmengine': ('mmengine', '0.10.0', '1.0.0', True),
    'mmpose': ('mmpose', '1.1.0', '2.0.0', False),
    'mmseg': ('mmsegmentation', '1.0.0', '2.0.0', False),
}


class IncompatibleVersionError(ImportError):
    """An installed OpenMMLab package has a version mmadc does not support."""


def installed_version(module: str,
                      dist: Optional[str] = None) -> Optional[str]:
    """Return the installed version of ``module``, or None if missing.

    An already imported module reports its ``__version__``; otherwise the
    distribution metadata is read without importing the module, because
    mmpose and mmseg assert on the mmcv version at import time and would
    hide this check's clearer message behind their own.

    Args:
        module (str): Module name, e.g. ``'mmseg'``.
        dist (str, optional): Distribution name if it differs from the
            module, e.g. ``'mmsegmentation'``.
    """
    if sys.modules.get(module) is not None:
        return sys.modules[module].__version__
    try:
        return importlib.metadata.version(dist or module)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:  # e.g. mmcv installed as mmcv-full
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def package_available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def find_version_problems(
        versions: Optional[Dict[str, Optional[str]]] = None) -> List[str]:
    """List human-readable problems with the installed versions.

    Args:
        versions (dict, optional): Module name to installed version (None
            when missing). Defaults to the versions found by importing each
            module in :data:`SUPPORTED`.

    Returns:
        list[str]: One entry per unsupported or missing required package.
    """
    problems = []
    for module, (pip_name, low, high, required) in SUPPORTED.items():
        version = (
            versions[module] if versions is not None else installed_version(
                module, pip_name))
        wanted = f'{pip_name}>={low},<{high}'
        if version is None:
            if required:
                problems.append(f'{wanted} is required but not installed')
        elif not digit_version(low) <= digit_version(version) < \
                digit_version(high):
            problems.append(f'{wanted} is required but {pip_name} '
                            f'{version} is installed')
    return problems


def check_versions(versions: Optional[Dict[str, Optional[str]]] = None):
    """Raise one clear error if any installed version is unsupported.

    Raises:
        IncompatibleVersionError: naming installed and required versions.
    """
    problems = find_version_problems(versions)
    if problems:
        raise IncompatibleVersionError(
            'mmadc: ' + '; '.join(problems) +
            ' (run tools/install/setup_env.sh, or install a supported '
            'version with mim).')
