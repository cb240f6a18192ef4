# Copyright (c) mmadc contributors. All rights reserved.
"""Train any mmpose or mmseg config; the task comes from ``default_scope``.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--no-validate] [--auto-scale-lr] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

A user's mistake (a missing config, a ``--resume`` file that is not a
checkpoint or one of another model, a work dir of another model's run)
ends the tool with one line ``train.py: error: ...`` and exit status 1
before the Runner starts.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmadc.compat.cpu_distributed import setup_cpu_distributed
from mmadc.utils.checkpoint_file import check_checkpoint_file
from mmadc.utils.cli import CliError, check_input_file, run_cli
from .run_guard import check_run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train an mmpose or mmseg model (mmadc)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints (default: '
        'the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CHECKPOINT; without a value, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the actual batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_dataloader.batch_size=8)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (or --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line flags to the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print('AMP is already enabled in the config.')
        elif wrapper != 'OptimWrapper':
            raise CliError(
                f'--amp needs optim_wrapper.type "OptimWrapper", but the '
                f'config uses "{wrapper}"')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_checkpoint_file(args.resume, '--resume: checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise CliError('--auto-scale-lr needs `auto_scale_lr.'
                           'base_batch_size` in the config')
        cfg.auto_scale_lr.enable = True
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    """Train; a user's mistake ends it with one line on stderr and exit
    status 1 (:func:`~mmadc.utils.cli.run_cli`)."""
    run_cli(run, argv)


def run(argv: Optional[List[str]] = None) -> None:
    """:func:`main` with the errors raised (for callers that handle them).

    Raises:
        CliError: A missing config, a ``--resume`` file that is not a
            checkpoint, or a run of another model (``RunMismatchError``).
    """
    args = parse_args(argv)
    check_input_file(args.config, 'config', 'a config file')
    cfg = merge_args(Config.fromfile(args.config), args)
    check_run(cfg, args.config, args.resume)
    setup_cpu_distributed(cfg)

    from mmadc.engine.independent_runner import build_independent_runner
    build_independent_runner(cfg).train()


if __name__ == '__main__':
    main()
