# Copyright (c) mmadc contributors. All rights reserved.
"""Evaluate a checkpoint of any mmpose or mmseg config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--show-dir DIR] [--show] [--interval N] [--wait-time S]
        [--dump FILE.pkl] [--out PATH] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

The flags mean what they mean in mmpose's and mmseg's own ``tools/test.py``
(the task comes from the config's ``default_scope``): ``--show-dir`` and
``--show`` turn on the config's visualization hook, ``--dump`` adds
MMEngine's ``DumpResults`` metric (a pickle of the predictions), and
``--out`` is, as upstream, task-specific: for pose the file the metrics are
written to, for segmentation the directory of predicted label PNGs
(``test_evaluator.output_dir``). Unlike upstream, an existing ``--dump`` or
``--out`` file (or a non-empty ``--out`` directory) is never replaced.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmadc.compat.cpu_distributed import setup_cpu_distributed
from mmadc.utils.checkpoint_file import check_checkpoint_file
from .train import default_work_dir


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test an mmpose or mmseg model (mmadc)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs')
    parser.add_argument(
        '--out',
        help='pose: file the metrics are written to (json/yaml/pkl); '
        'segmentation: directory of the predicted label maps (PNG)')
    parser.add_argument(
        '--dump', help='dump the predictions to this pickle file (.pkl)')
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
    for flag, path in (('--dump', args.dump), ('--out', args.out)):
        if path is not None and osp.isfile(path) or (flag == '--out'
                                                     and path is not None
                                                     and osp.isdir(path)
                                                     and os.listdir(path)):
            parser.error(f'{flag}: "{path}" exists; choose a new path (an '
                         'existing file or folder is never replaced)')
    if args.dump is not None and not args.dump.endswith(('.pkl', '.pickle')):
        parser.error(f'--dump: "{args.dump}" must be a .pkl file')
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
        raise ValueError(
            f'--show/--show-dir: the config {args.config} has no '
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
    args = parse_args(argv)
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
    if args.show or args.show_dir is not None:
        enable_visualization(cfg, args, task)
    add_outputs(cfg, args, task)
    setup_cpu_distributed(cfg)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    if task == 'pose' and args.out is not None:
        runner.register_hook(save_metrics_hook(args.out), 'LOWEST')
    return runner.test()


if __name__ == '__main__':
    main()
