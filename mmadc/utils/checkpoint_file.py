# Copyright (c) mmadc contributors. All rights reserved.
"""Tell a user which file is not a checkpoint, or not one of this model,
before anything loads it.

An empty or foreign file passed as a checkpoint otherwise fails deep inside
``torch.load`` with a bare ``EOFError``, or with torch's advice to retry
with ``weights_only=False``, which would execute whatever the file holds.
The check reads only the file's first bytes (and the zip directory), so a
multi-GB checkpoint is not loaded twice.
"""
import os.path as osp
import re
import zipfile
from typing import Dict, Optional, Tuple

Shapes = Dict[str, Tuple[int, ...]]

# torch.save's legacy (non-zip) format: a pickle of protocol 2 whose first
# object is torch's magic number 0x1950a86a20f9469cfc6c.
_LEGACY_PREFIX = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


class CheckpointFileError(ValueError):
    """A path given as a checkpoint that is not one; one-line message."""


def check_checkpoint_file(path: str, what: str = 'checkpoint') -> None:
    """Raise unless ``path`` is a file that ``torch.save`` wrote (a zip
    archive with a ``data.pkl``, or the legacy format).

    Args:
        path (str): The file.
        what (str): How the file was given, for the message (e.g.
            ``'--resume: checkpoint'``).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        CheckpointFileError: It is empty, damaged or another kind of file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what}: "{path}" does not exist')
    if osp.getsize(path) == 0:
        raise CheckpointFileError(
            f'{what}: "{path}" is empty, not a checkpoint (an interrupted '
            'save or download?)')
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointFileError(
                f'{what}: "{path}" is a damaged zip archive ({err})') from err
        if any(name.endswith('data.pkl') for name in names):
            return
        raise CheckpointFileError(
            f'{what}: "{path}" is a zip archive but not a PyTorch '
            'checkpoint (no data.pkl)')
    with open(path, 'rb') as f:
        head = f.read(len(_LEGACY_PREFIX))
    if head != _LEGACY_PREFIX:
        raise CheckpointFileError(
            f'{what}: "{path}" is not a PyTorch checkpoint (neither '
            'torch.save\'s zip format nor its legacy format; truncated or '
            'another kind of file?)')


def weight_shapes(state_dict: dict) -> Shapes:
    """The shape of every tensor of a state dict."""
    return {
        k: tuple(v.shape)
        for k, v in state_dict.items() if hasattr(v, 'shape')
    }


def describe_weight_difference(model: Shapes,
                               checkpoint: Shapes) -> Optional[str]:
    """None if a checkpoint's weights fit a model's (same names and
    shapes), else a short account of how they differ, for a message."""
    missing = sorted(set(model) - set(checkpoint))
    unexpected = sorted(set(checkpoint) - set(model))
    resized = sorted(
        k for k in set(model) & set(checkpoint) if model[k] != checkpoint[k])
    kinds = ((missing, "weights of the config's model missing"),
             (unexpected, 'weights of another model'),
             (resized, 'weights of another shape'))
    parts = [
        f'{len(keys)} {what} (e.g. {keys[0]})' for keys, what in kinds if keys
    ]
    return '; '.join(parts) or None


def load_fitting_checkpoint(model, path: str, config: str) -> dict:
    """Load a checkpoint's weights into a model only if they fit exactly.

    mmengine's ``load_checkpoint`` (and so mmpose's and mmseg's
    ``init_model``) loads with ``strict=False``: a checkpoint of another
    model (a baseline's for an ADC config, another depth) only logs a
    warning, and the half-initialised network then predicts or exports
    garbage. Here every weight name and shape must match.

    Args:
        model (nn.Module): The model built from ``config``.
        path (str): The checkpoint file.
        config (str): The config the model was built from, for the message.

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: ``path`` is not a checkpoint, or its weights
            do not fit the model (one-line message naming both files).
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    check_checkpoint_file(path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    # as mmengine's load_checkpoint: weights saved from a DDP wrapper
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    difference = describe_weight_difference(
        weight_shapes(model.state_dict()), weight_shapes(state))
    if difference is not None:
        raise CheckpointFileError(f'checkpoint: "{path}" does not fit the '
                                  f'model of "{config}": {difference}')
    model.load_state_dict(state)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else {}
