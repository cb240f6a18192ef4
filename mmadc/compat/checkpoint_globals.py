# Copyright (c) mmadc contributors. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read OpenMMLab training checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and refuses
any pickled global that is not explicitly allowed. mmengine 0.10.7 calls
``torch.load`` without ``weights_only``, so ``--resume`` of any run fails on
the numpy arrays and mmengine objects its checkpoints hold (message hub,
log history, metric values). Instead of a blanket ``weights_only=False``,
mmadc allows exactly the globals those checkpoints contain: no code from a
checkpoint can run beyond rebuilding these data types.
"""
import importlib
from typing import List

import torch

# Dotted names of what mmengine/mmpose/mmseg training checkpoints hold
# beyond tensors. tests/test_tools/test_resume.py checks that the list is
# sufficient for pose and seg checkpoints and that dropping any entry
# breaks loading one of them.
CHECKPOINT_GLOBALS = (
    # numpy arrays and scalars: dataset_meta (keypoint colours, sigmas),
    # best score and ETA in the message hub
    'numpy._core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy.ndarray',
    'numpy.dtype',
    'numpy.dtypes.UInt8DType',
    'numpy.dtypes.Float32DType',
    'numpy.dtypes.Float64DType',
    'numpy.dtypes.Int64DType',
    # mmengine's MessageHub log history
    'mmengine.logging.history_buffer.HistoryBuffer',
    # HistoryBuffer pickles its statistics methods as
    # getattr(HistoryBuffer, 'min'). Allowing getattr lets the unpickler
    # look attributes up on objects it may already build; it still calls
    # only the allowed callables above, so no other code can run.
    'builtins.getattr',
)


def _resolve(dotted: str):
    module, _, name = dotted.rpartition('.')
    # numpy 1 names numpy._core "numpy.core"
    for candidate in (module, module.replace('numpy._core', 'numpy.core')):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    return None


def allowed_checkpoint_globals() -> List[object]:
    """Return the resolvable objects of :data:`CHECKPOINT_GLOBALS`."""
    return [
        obj for obj in map(_resolve, CHECKPOINT_GLOBALS) if obj is not None
    ]


def allow_checkpoint_globals() -> None:
    """Register the checkpoint globals with torch's weights-only unpickler.

    A no-op on torch versions without ``add_safe_globals`` (< 2.4), whose
    ``torch.load`` does not restrict globals by default.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(allowed_checkpoint_globals())
