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
naming the folder or file and the options. :func:`check_test_checkpoint`
does the same for the checkpoint ``tools/test.py`` evaluates, which the
Runner would otherwise load with ``strict=False`` and evaluate half
initialised.
"""
import glob
import os.path as osp
from typing import Optional

from mmadc.compat.checkpoint_globals import load_weights_only
from mmadc.utils.checkpoint_file import (Shapes, check_checkpoint_file,
                                         check_weights_fit,
                                         describe_weight_difference,
                                         weight_shapes, without_ddp_prefix)
from mmadc.utils.cli import CliError


class RunMismatchError(CliError):
    """A work dir or checkpoint of another model; one-line message."""


def build_config_model(cfg):
    """The config's model, as the Runner builds it (no weights are loaded
    or downloaded)."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if cfg.get('default_scope'):
        init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def checkpoint_weight_shapes(path: str) -> Shapes:
    """Shapes of the model weights a checkpoint holds."""
    state = load_weights_only(path)
    return weight_shapes(state.get('state_dict', state))


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
    difference = describe_weight_difference(
        weight_shapes(build_config_model(cfg).state_dict()),
        checkpoint_weight_shapes(checkpoint))
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


def check_test_checkpoint(cfg,
                          config_path: str,
                          checkpoint: str,
                          allow_baseline: bool = False,
                          baseline_flag: Optional[str] = None) -> None:
    """Raise unless the checkpoint's weights fit the config's model.

    Args:
        cfg (Config): The merged config.
        config_path (str): The config file, for the message.
        checkpoint (str): A file that passed :func:`check_checkpoint_file`.
        allow_baseline (bool): Accept a checkpoint that lacks only the ADC
            rate regressors (see
            :func:`~mmadc.utils.checkpoint_file.check_weights_fit`).
        baseline_flag (str, optional): The option setting
            ``allow_baseline``, for the message.

    Raises:
        CheckpointFileError: The weights do not fit.
    """
    check_weights_fit(
        build_config_model(cfg),
        without_ddp_prefix(checkpoint_weight_shapes(checkpoint)),
        checkpoint,
        config_path,
        allow_baseline=allow_baseline,
        baseline_flag=baseline_flag)
