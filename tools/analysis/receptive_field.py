# Copyright (c) mmadc contributors. All rights reserved.
"""Receptive fields of a model's ADC layers for the rates it produces.

Runs the model of CONFIG (weights from CHECKPOINT if given; without one the
model as constructed, where every rate is 1) over the first N samples of
the config's val split (person crops for top-down pose configs, images for
segmentation configs; pose models run without flip test) through
MMEngine's ``Runner.test()`` with
:class:`~mmadc.evaluation.ADCReceptiveFieldMetric` as the test evaluator,
and prints, per
ADC layer, the observed rates and the receptive fields of Eq. 8,
``(k * rho - rho + 1)^2`` with ``rho = base dilation * rate``: mean, min
and max over samples and channels. The table also goes to
``receptive_field.json`` in OUT_DIR (and the Runner's log to a
time-stamped folder there, the config it ran beside it).

Example::

    python tools/analysis/receptive_field.py \\
        configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py \\
        work_dirs/res50-adc/best_coco_AP_epoch_140.pth --num-images 200
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction
from mmengine.fileio import dump

from mmadc.analysis.analysis_runner import (build_analysis_runner,
                                            load_analysis_config,
                                            run_analysis_metric)
from mmadc.analysis.receptive_field_report import format_receptive_field_table


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Receptive fields of ADC layers (Eq. 8)')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint file (optional)')
    parser.add_argument(
        '--num-images',
        type=int,
        default=32,
        help='number of val samples to run (default 32)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='dataloader of the config to use (default: val)')
    parser.add_argument(
        '--out-dir',
        help='output directory (default: work_dirs/analysis/<config name>)')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cuda:0 (default cpu)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> list:
    args = parse_args(argv)
    cfg = load_analysis_config(args.config, args.cfg_options)
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint: "{args.checkpoint}" does not exist')
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out_dir, exist_ok=True)
    runner = build_analysis_runner(
        cfg,
        dict(type='ADCReceptiveFieldMetric'),
        work_dir=out_dir,
        checkpoint=args.checkpoint,
        split=args.split,
        num_samples=args.num_images,
        device=args.device,
        source=args.config)
    metric = run_analysis_metric(runner)
    rows = metric.rows
    if rows is None:  # not the main process
        return []
    print(format_receptive_field_table(rows))

    path = osp.join(out_dir, 'receptive_field.json')
    dump(
        dict(
            config=args.config,
            checkpoint=args.checkpoint,
            split=args.split,
            num_samples=len(runner.test_loop.dataloader.dataset),
            formula='(k * rho - rho + 1)^2, rho = dilation * rate',
            layers=rows),
        path,
        indent=1)
    print(f'wrote {path}')
    return rows


if __name__ == '__main__':
    main()
