# Copyright (c) mmadc contributors. All rights reserved.
"""Fail early, naming the fix, where mmcv's compiled ops are missing.

mmseg's PSANet head needs ``mmcv.ops.PSAMask``, a compiled op of full mmcv,
and mmpose's models import ``mmcv.ops`` when they load (mmpose 1.3's
``EDPoseHead``), which ``import mmadc`` does. Without the ops (mmcv-lite, or
ops built for another torch) ``import mmadc`` thus fails inside mmpose with
``No module named 'mmcv._ext'``, or mmseg's PSANet asks for "mmcv-full", the
mmcv 1.x package. :func:`require_mmcv_ops` raises a :class:`RuntimeError`
that names the ops and this project's fix instead.

**Importing this module runs the check** (:data:`REQUIRED_OPS`);
``mmadc.models`` imports it before mmpose and mmseg, so ``import mmadc``
and every config's ``custom_imports=dict(imports=['mmadc'])`` (``mim
train``, ``tools/train.py``) stop with the fix before anything else runs.
A ``RuntimeError`` (not an ``ImportError``) keeps MMEngine's
``custom_imports`` from replacing the message with its generic "Failed to
import custom modules ... set PYTHONPATH".
"""
import importlib
from typing import Optional, Sequence

#: How to get mmcv's compiled ops (see README, "Installation").
MMCV_OPS_FIX = ('install full mmcv: tools/install/setup_env.sh or '
                '`mim install mmcv==2.1.0`')

#: The compiled ops mmadc's configs use: mmseg's PSAHead (PSANet) needs
#: ``PSAMask``. All ops come from one extension (``mmcv._ext``).
REQUIRED_OPS = ('PSAMask', )


def require_mmcv_ops(ops: Sequence[str],
                     needed_by: str,
                     note: Optional[str] = None) -> None:
    """Check that ``mmcv.ops`` loads and provides ``ops``.

    Args:
        ops (Sequence[str]): Names in ``mmcv.ops``, e.g. ``('PSAMask', )``.
        needed_by (str): What needs them, for the message, e.g.
            ``'PSANet'``.
        note (str, optional): Added to the list of ops in the message.

    Raises:
        RuntimeError: ``mmcv.ops`` does not import or lacks one of ``ops``;
            the message names the ops and the fix, e.g. "PSANet needs
            mmcv's compiled ops (mmcv.ops.PSAMask); install full mmcv:
            tools/install/setup_env.sh or `mim install mmcv==2.1.0`".
    """
    names = ', '.join(f'mmcv.ops.{op}' for op in ops)
    if note:
        names = f'{names}{note}'
    message = (f"{needed_by} needs mmcv's compiled ops ({names}); "
               f'{MMCV_OPS_FIX}')
    try:
        # Any failure counts: ModuleNotFoundError for mmcv._ext (mmcv-lite),
        # ImportError/OSError for an extension built against another torch.
        mmcv_ops = importlib.import_module('mmcv.ops')
    except Exception as err:
        raise RuntimeError(f'{message} (import mmcv.ops failed: '
                           f'{type(err).__name__}: {err})') from err
    missing = [op for op in ops if not hasattr(mmcv_ops, op)]
    if missing:
        raise RuntimeError(f'{message} (mmcv.ops has no {missing})')


require_mmcv_ops(
    REQUIRED_OPS,
    needed_by='mmadc',
    note=" for mmseg's PSANet; mmpose's models import mmcv.ops as well")
