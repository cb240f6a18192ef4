# Copyright (c) mmadc contributors. All rights reserved.
"""Keep a training run from mixing with, or resuming, another model's run.

MMEngine writes ``epoch_N.pth`` and ``last_checkpoint`` into the work dir
whatever is already there, so training a second config into the first's
work dir overwrites part of that run and leaves a mixed folder; a later
``--resume`` then loads the other model's checkpoint and dies inside the
optimizer ("parameter group that doesn't match the size of optimizer's
group"). Before the Runner starts, :func:`check_run` compares the
parameters (names and shapes) of the config's model with those of the
checkpoint that run would continue or overwrite, and stops with one line
naming the folder or file and the options.
"""
import glob
import os.path as osp
from typing import Dict, Optional, Tuple

import torch

from mmadc.utils.checkpoint_file import check_checkpoint_file


class RunMismatchError(Exception):
    """A work dir or checkpoint of another model; one-line message."""


def config_model_shapes(cfg) -> Dict[str, Tuple[int, ...]]:
    """Parameter and buffer shapes of the config's model (no weights are
    loaded or downloaded)."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if cfg.get('default_scope'):
        init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def checkpoint_model_shapes(path: str) -> Dict[str, Tuple[int, ...]]:
    """Shapes of the model weights a checkpoint holds."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    return {
        k: tuple(v.shape)
        for k, v in state.items() if isinstance(v, torch.Tensor)
    }


def describe_difference(model: Dict[str, Tuple[int, ...]],
                        checkpoint: Dict[str, Tuple[int, ...]]
                        ) -> Optional[str]:
    """None if the shapes agree, else a short account of how they differ."""
    missing = sorted(set(model) - set(checkpoint))
    unexpected = sorted(set(checkpoint) - set(model))
    resized = sorted(k for k in set(model) & set(checkpoint)
                     if model[k] != checkpoint[k])
    kinds = ((missing, "weights of the config's model missing"),
             (unexpected, 'weights of another model'),
             (resized, 'weights of another shape'))
    parts = [f'{len(keys)} {what} (e.g. {keys[0]})' for keys, what in kinds
             if keys]
    return '; '.join(parts) or None


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a run in ``work_dir`` would resume or overwrite:
    the one ``last_checkpoint`` names, else the newest ``*.pth``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if path and osp.isfile(path):
            return path
    found = glob.glob(osp.join(work_dir, '*.pth'))
    return max(found, key=osp.getmtime) if found else None


def check_run(cfg, config_path: str, resume: Optional[str]) -> None:
    """Raise :class:`RunMismatchError` if the run would continue or
    overwrite another model's run.

    Args:
        cfg (Config): The merged training config (``work_dir`` set).
        config_path (str): The config file, for the message.
        resume (str, optional): ``'auto'``, a checkpoint path, or None.
    """
    work_dir = cfg.work_dir
    if resume not in (None, 'auto'):
        checkpoint, resuming = resume, True
    else:
        checkpoint, resuming = latest_checkpoint(work_dir), resume == 'auto'
    if checkpoint is None:
        return
    what = '--resume: checkpoint' if resuming else 'checkpoint'
    check_checkpoint_file(checkpoint, what)
    difference = describe_difference(
        config_model_shapes(cfg), checkpoint_model_shapes(checkpoint))
    if difference is None:
        return
    if resuming:
        raise RunMismatchError(
            f'--resume: checkpoint "{checkpoint}" is not of the model of '
            f'"{config_path}" ({difference}); resume with the config it was '
            'trained with, or start a new run in another --work-dir')
    raise RunMismatchError(
        f'work dir "{work_dir}" holds a run of another model '
        f'("{checkpoint}": {difference}); training into it would overwrite '
        'that run\'s checkpoints: pass another --work-dir, or --resume with '
        'that run\'s own config to continue it')
