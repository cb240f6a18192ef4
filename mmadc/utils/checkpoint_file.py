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
from typing import Dict, Optional, Set, Tuple

from .cli import CliError, check_input_file

Shapes = Dict[str, Tuple[int, ...]]

# torch.save's legacy (non-zip) format: a pickle of protocol 2 whose first
# object is torch's magic number 0x1950a86a20f9469cfc6c.
_LEGACY_PREFIX = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


class CheckpointFileError(CliError, ValueError):
    """A path given as a checkpoint that is not one, or one of another
    model; one-line message."""


def check_checkpoint_file(path: str, what: str = 'checkpoint') -> None:
    """Raise unless ``path`` is a file that ``torch.save`` wrote (a zip
    archive with a ``data.pkl``, or the legacy format).

    Args:
        path (str): The file.
        what (str): How the file was given, for the message (e.g.
            ``'--resume: checkpoint'``).

    Raises:
        MissingFileError: ``path`` does not exist (a
            ``FileNotFoundError``).
        CheckpointFileError: It is a folder, or an empty, damaged or
            another kind of file.
    """
    if osp.isdir(path):
        raise CheckpointFileError(f'{what}: "{path}" is a folder, expected '
                                  'a checkpoint file')
    check_input_file(path, what)
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


def adc_regressor_keys(model) -> Set[str]:
    """The state-dict keys of the ADC rate regressors of ``model``: what a
    checkpoint of the same network without ADC (a baseline's) lacks, as
    :class:`~mmadc.ops.AdaptiveDilatedConv2d` keeps ``nn.Conv2d``'s
    ``weight`` and ``bias``."""
    from mmadc.ops import AdaptiveDilatedConv2d
    return {
        f'{name}.rate_regressor.{key}'.lstrip('.')
        for name, module in model.named_modules()
        if isinstance(module, AdaptiveDilatedConv2d)
        for key in module.rate_regressor.state_dict()
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


def without_ddp_prefix(state_dict: dict) -> dict:
    """The state dict with the ``module.`` prefix of weights saved from a
    DDP wrapper removed, as mmengine's ``load_checkpoint`` does."""
    return {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}


def check_weights_fit(model,
                      checkpoint: Shapes,
                      path: str,
                      config: str,
                      allow_baseline: bool = False,
                      baseline_flag: Optional[str] = None) -> None:
    """Raise unless a checkpoint's weights fit a model exactly.

    Args:
        model (nn.Module): The model built from ``config``.
        checkpoint (dict): The checkpoint's weight shapes
            (:func:`weight_shapes`, without the DDP prefix).
        path (str): The checkpoint file, for the message.
        config (str): The config, for the message.
        allow_baseline (bool): Accept a checkpoint that lacks only the
            ADC rate regressors' weights (:func:`adc_regressor_keys`): a
            baseline checkpoint loaded into the ADC model on purpose, whose
            rates then stay at their initial 1. Anything else that differs
            is still refused.
        baseline_flag (str, optional): The tool's option that sets
            ``allow_baseline``; named in the message when the checkpoint
            is such a baseline checkpoint.

    Raises:
        CheckpointFileError: The weights do not fit (one line naming both
            files and how they differ).
    """
    shapes = weight_shapes(model.state_dict())
    # the regressors' weights as if the checkpoint held them: only their
    # absence is excused, not another shape
    as_baseline = {
        **{
            k: shapes[k]
            for k in adc_regressor_keys(model)
        },
        **checkpoint
    }
    difference = describe_weight_difference(
        shapes, as_baseline if allow_baseline else checkpoint)
    if difference is None:
        return
    hint = ''
    if baseline_flag is not None and describe_weight_difference(
            shapes, as_baseline) is None:
        hint = (f'; it is a checkpoint of the model without ADC: pass '
                f'{baseline_flag} to load it with every ADC rate 1')
    raise CheckpointFileError(f'checkpoint: "{path}" does not fit the model '
                              f'of "{config}": {difference}{hint}')


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
        MissingFileError: ``path`` does not exist (a
            ``FileNotFoundError``).
        CheckpointFileError: ``path`` is not a checkpoint, or its weights
            do not fit the model (one-line message naming both files).
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    check_checkpoint_file(path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    state = without_ddp_prefix(state)
    check_weights_fit(model, weight_shapes(state), path, config)
    model.load_state_dict(state)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else {}
