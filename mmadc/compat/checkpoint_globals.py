# Copyright (c) mmadc contributors. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read OpenMMLab training checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and refuses
any pickled global that is not explicitly allowed. mmengine 0.10.7 calls
``torch.load`` without ``weights_only``, so ``--resume`` of any run fails on
the numpy arrays and mmengine objects its checkpoints hold (message hub,
log history, metric values). Instead of a blanket ``weights_only=False``,
mmadc allows exactly the globals those checkpoints contain: no code from a
checkpoint can run beyond rebuilding these data types.

torch < 2.4 has ``weights_only`` but no ``add_safe_globals``: its
weights-only unpickler refuses every numpy object. There
:func:`load_weights_only` reads checkpoints through an unpickler restricted
to the same globals (torch's own and :data:`CHECKPOINT_GLOBALS`), so mmadc
reads a checkpoint it did not write under the same rules on every torch.
"""
import importlib
import pickle
from typing import List

import _compat_pickle
import torch

_HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'add_safe_globals')

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
    ``torch.load`` does not restrict globals by default (mmadc's own loads
    go through :func:`load_weights_only` there).
    """
    if _HAS_SAFE_GLOBALS:
        torch.serialization.add_safe_globals(allowed_checkpoint_globals())


def load_weights_only(path: str) -> dict:
    """``torch.load(path, map_location='cpu', weights_only=True)`` that
    reads OpenMMLab checkpoints on every supported torch.

    Args:
        path (str): A file ``torch.save`` wrote.

    Returns:
        dict: The checkpoint, on the CPU.

    Raises:
        pickle.UnpicklingError: The file holds a global that is neither
            torch's nor in :data:`CHECKPOINT_GLOBALS`.
    """
    if _HAS_SAFE_GLOBALS:
        allow_checkpoint_globals()
        return torch.load(path, map_location='cpu', weights_only=True)
    return torch.load(
        path,
        map_location='cpu',
        weights_only=False,
        pickle_module=_RestrictedPickle)


#: Plain data types torch 2.4's weights-only list has and torch 2.1's lacks;
#: numpy 1 pickles an array's bytes through ``_codecs.encode`` (protocol 2).
_LATER_TORCH_GLOBALS = ('_codecs.encode', 'builtins.bytearray',
                        'builtins.complex', 'builtins.set',
                        'collections.Counter', 'torch.device')


class _RestrictedUnpickler(pickle.Unpickler):
    """The unpickler of :func:`load_weights_only` on torch < 2.4: it builds
    only torch's weights-only globals and :data:`CHECKPOINT_GLOBALS`.

    A plain unpickler calls whatever callable ends up on its stack, so
    ``builtins.getattr`` is narrowed to what HistoryBuffer pickles (its
    statistics methods, looked up on the class); any other attribute could
    reach arbitrary code (``ndarray.tofile``, a function's globals).
    """

    def find_class(self, module: str, name: str):
        # torch.save's protocol 2 writes Python 2 names (__builtin__), which
        # pickle maps only in the find_class this method replaces
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name),
            (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        dotted = f'{module}.{name}'
        if dotted == 'builtins.getattr':
            return _history_buffer_statistic
        # torch's own allow-list (tensor rebuild functions, storages,
        # dtypes, OrderedDict): private, but in every supported torch
        from torch import _weights_only_unpickler
        allowed = _weights_only_unpickler._get_allowed_globals()
        if dotted in allowed:
            return allowed[dotted]
        if dotted in _LATER_TORCH_GLOBALS:
            return _resolve(dotted)
        # numpy 1 pickles numpy._core as numpy.core
        if dotted.replace('numpy.core.', 'numpy._core.') in CHECKPOINT_GLOBALS:
            found = _resolve(dotted)
            if found is not None:
                return found
        raise pickle.UnpicklingError(
            f'checkpoint holds the global {dotted}, which is neither '
            'torch\'s nor one of an OpenMMLab checkpoint\'s (mmadc.compat.'
            'checkpoint_globals.CHECKPOINT_GLOBALS)')


def _history_buffer_statistic(owner, name: str):
    """``getattr`` as HistoryBuffer's pickle uses it, and nothing else."""
    history_buffer = _resolve('mmengine.logging.history_buffer.HistoryBuffer')
    statistics = {'min', 'max', 'current', 'mean'}
    statistics.update(getattr(history_buffer, '_statistics_methods', {}))
    if history_buffer is not None and owner is history_buffer \
            and name in statistics:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for the attribute {name!r} of {owner!r}; only '
        'HistoryBuffer\'s statistics methods are allowed')


class _RestrictedPickle:
    """The ``pickle_module`` torch.load takes, with the restricted
    unpickler."""
    Unpickler = _RestrictedUnpickler
    __name__ = 'mmadc_restricted_pickle'

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()
