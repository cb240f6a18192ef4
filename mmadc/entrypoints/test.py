# Copyright (c) mmadc contributors. All rights reserved.
"""Evaluate a checkpoint of any mmpose or mmseg config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--show-dir DIR] [--show] [--interval N] [--wait-time S]
        [--dump FILE.pkl] [--out PATH] [--overwrite]
        [--allow-baseline-checkpoint] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

The flags mean what they mean in mmpose's and mmseg's own ``tools/test.py``
(the task comes from the config's ``default_scope``): ``--show-dir`` and
``--show`` turn on the config's visualization hook, ``--dump`` adds
MMEngine's ``DumpResults`` metric (a pickle of the predictions), and
``--out`` is, as upstream, task-specific: for pose the file the metrics are
written to, for segmentation the directory of predicted label PNGs
(``test_evaluator.output_dir``).

Unlike upstream, the paths are checked before the model is built: an
existing ``--dump`` or ``--out`` file (or a non-empty ``--out`` directory)
is replaced only with ``--overwrite``, never when it is the checkpoint or
the config, and ``--out`` and ``--dump`` must be different files with
formats their writers support. The checkpoint's weights must fit the
config's model exactly (upstream loads them with ``strict=False`` and
evaluates a half-initialised model); ``--allow-baseline-checkpoint`` loads
the checkpoint of the same network without ADC into an ADC model on
purpose, every ADC rate then 1. Mistakes end the tool with one line
``test.py: error: ...`` and exit status 1.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmadc.compat.cpu_distributed import setup_cpu_distributed
from mmadc.utils.checkpoint_file import check_checkpoint_file
from mmadc.utils.cli import CliError, check_input_file, run_cli
from mmadc.utils.output_path import (check_distinct_outputs, check_output_dir,
                                     check_output_files)
from .run_guard import check_test_checkpoint
from .train import default_work_dir

#: What ``mmengine.dump`` writes, by extension (pose's ``--out``).
METRIC_FORMATS = ('.json', '.yaml', '.yml', '.pkl', '.pickle')
#: What MMEngine's ``DumpResults`` writes (``--dump``).
DUMP_FORMATS = ('.pkl', '.pickle')
BASELINE_FLAG = '--allow-baseline-checkpoint'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test an mmpose or mmseg model (mmadc)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs')
    parser.add_argument(
        '--out',
        help='pose: file the metrics are written to (.json, .yaml, .yml or '
        '.pkl); segmentation: directory of the predicted label maps (PNG)')
    parser.add_argument(
        '--dump', help='dump the predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing --out or --dump file (or write into a '
        'non-empty --out directory); default: refuse')
    parser.add_argument(
        BASELINE_FLAG,
        action='store_true',
        help='evaluate a checkpoint of the same network without ADC with '
        'an ADC config (the ADC rate regressors are missing from it and '
        'every rate stays 1); any other difference is still refused')
    parser.add_argument(
        '--show-dir',
        help='directory of the drawn predictions (under the run\'s '
        'work_dir/timestamp for pose, as mmpose does)')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions in a window')
    parser.add_argument(
        '--interval', type=int, default=1, help='draw every N-th sample')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=1,
        help='seconds each shown image stays (--show)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.interval < 1:
        parser.error(f'--interval must be >= 1, got {args.interval}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg: Config, args: argparse.Namespace,
                         task: str) -> None:
    """Turn on the config's visualization hook, as upstream's
    ``tools/test.py`` does (``--show``, ``--show-dir``)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise CliError(f'--show/--show-dir: the config {args.config} has no '
                       'default_hooks.visualization (PoseVisualizationHook or '
                       'SegVisualizationHook)')
    hook.interval = args.interval
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if task == 'pose':
        from mmadc.visualization.pose_local_visualizer import \
            compatible_visualizer_cfg
        hook.enable = True
        hook.out_dir = args.show_dir
        cfg.visualizer = compatible_visualizer_cfg(cfg.visualizer)
    else:
        hook.draw = True
        if args.show_dir is not None:
            cfg.visualizer.save_dir = args.show_dir


def check_outputs(cfg: Config, args: argparse.Namespace, task: str) -> None:
    """Refuse, before any work, outputs that would fail to be written or
    replace a file without ``--overwrite`` (see
    :mod:`mmadc.utils.output_path`)."""
    inputs = ((args.checkpoint, 'checkpoint'), (args.config, 'config'))
    pose_out = args.out if task == 'pose' else None
    check_distinct_outputs({'--out': pose_out, '--dump': args.dump})
    if pose_out is not None:
        check_output_files([pose_out], '--out', METRIC_FORMATS, args.overwrite,
                           inputs)
    elif args.out is not None:
        check_output_dir(args.out, '--out', args.overwrite, inputs)
    if args.dump is not None:
        check_output_files([args.dump], '--dump', DUMP_FORMATS, args.overwrite,
                           inputs)
    check_output_dir(cfg.work_dir, '--work-dir', inputs=inputs)
    # pose's --show-dir is made under work_dir/<timestamp> unless absolute
    if args.show_dir is not None and (task == 'seg'
                                      or osp.isabs(args.show_dir)):
        check_output_dir(args.show_dir, '--show-dir', inputs=inputs)


def add_outputs(cfg: Config, args: argparse.Namespace, task: str) -> None:
    """``--dump`` (both tasks) and segmentation's ``--out`` as evaluator
    settings, as upstream's ``tools/test.py`` does."""
    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
    if task == 'seg' and args.out is not None:
        for evaluator in evaluators:
            evaluator['output_dir'] = args.out
            evaluator['keep_results'] = True
    if args.dump is not None:
        cfg.test_evaluator = [
            *evaluators,
            dict(type='DumpResults', out_file_path=args.dump)
        ]


def save_metrics_hook(path: str):
    """A hook writing the test metrics to ``path`` (mmpose's ``--out``)."""
    import mmengine
    from mmengine.hooks import Hook

    class SaveMetricHook(Hook):

        def after_test_epoch(self, runner, metrics=None) -> None:
            if metrics is not None:
                mmengine.dump(metrics, path)

    return SaveMetricHook()


def main(argv: Optional[List[str]] = None) -> dict:
    """Evaluate; a user's mistake ends it with one line on stderr and exit
    status 1 (:func:`~mmadc.utils.cli.run_cli`).

    Returns:
        dict: The test metrics.
    """
    return run_cli(run, argv)


def run(argv: Optional[List[str]] = None) -> dict:
    """:func:`main` with the errors raised (for callers that handle them).

    Raises:
        CliError: A missing config, a file that is not a checkpoint or one
            of another model, or a refused output path.
    """
    args = parse_args(argv)
    check_input_file(args.config, 'config', 'a config file')
    check_checkpoint_file(args.checkpoint)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    task = 'seg' if cfg.get('default_scope') == 'mmseg' else 'pose'
    check_outputs(cfg, args, task)
    if args.show or args.show_dir is not None:
        enable_visualization(cfg, args, task)
    add_outputs(cfg, args, task)
    check_test_checkpoint(cfg, args.config, args.checkpoint,
                          args.allow_baseline_checkpoint, BASELINE_FLAG)
    setup_cpu_distributed(cfg)

    from mmadc.engine.independent_runner import build_independent_runner
    runner = build_independent_runner(cfg)
    if task == 'pose' and args.out is not None:
        runner.register_hook(save_metrics_hook(args.out), 'LOWEST')
    return runner.test()


if __name__ == '__main__':
    main()
