# Copyright (c) mmadc contributors. All rights reserved.
"""Dilation-rate statistics of a pose model's ADC layers by person size.

Runs the model of CONFIG (weights from CHECKPOINT) over the config's val
(or test) split through MMEngine's ``Runner.test()`` with
:class:`~mmadc.evaluation.ADCRateSizeMetric` as the test evaluator, so the
config's dataset, pipeline and data loader settings apply. The persons are
the detections of the config's detection file (``--boxes det``, the
default: the val dataset's ``bbox_file``, the population of the paper's
Fig. 6 and of its COCO results) or the ground-truth instances (``--boxes
gt``: ``bbox_file=None``, every annotated person cropped with its GT box).
One forward per person: the flip test is off (the rates are those of the
unflipped crop). Every ADC layer's rates are grouped by the person's size,
COCO's small ``area < 32^2``, medium ``32^2 <= area < 96^2`` and large
``area >= 96^2``, of the box area ``w * h`` (``--size-by bbox``, the
default, as the paper) or of the annotation's segment ``area``
(``--size-by area``, as COCOeval; ground-truth boxes only), and written to
OUT_DIR:

- ``rate_statistics.json``: per layer, dilation group and size group the
  mean and the (population) variance of the rate, plus the instance counts
  and, per layer and size group, the mean and the standard deviation of
  the mean rates across channels (``channel_spread``);
- ``rate_statistics.csv``: the per-group numbers as a long table;
- ``plots/rates_<stage>.png``: Fig. 6 of the paper, one subplot per block,
  titled ``ADC_<stage>_<block>``.

The paper's claim "the dilation rates for larger persons are more likely to
be larger" is also tested as a statistic, per ADC layer and per stage (a
person's stage rate: the mean over the stage's layers of the person's mean
rate over channels): Spearman's rank correlation between box area and mean
rate, and the mean rate of large minus small persons, each with a 95%
bootstrap percentile interval over persons (``--bootstrap`` resamples,
``--seed``). They are in the JSON (``size_trend`` per layer,
``stage_trends``, and ``persons``: each person's area, group and stage
rates), in ``rate_size_trend.csv``, in ``plots/trend_<stage>.png`` (each
person's mean rate against log box area with the least-squares line) and,
per stage, on stdout with whether each interval excludes 0.

The Runner's log and the config it ran go to OUT_DIR too (``<timestamp>/``,
``<timestamp>.py``).

Example::

    python tools/analysis/rate_statistics.py \\
        configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py \\
        work_dirs/res50-adc/best_coco_AP_epoch_140.pth --max-instances 2000
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction

from mmadc.analysis.analysis_runner import (BOX_SOURCES, build_analysis_runner,
                                            load_analysis_config,
                                            run_analysis_metric)
from mmadc.analysis.rate_statistics_report import (plot_rate_statistics,
                                                   plot_size_trends,
                                                   trend_lines, write_rate_csv,
                                                   write_trend_csv)
from mmadc.analysis.report_files import dump_json
from mmadc.evaluation.functional import (BOOTSTRAP_SEED, NUM_RESAMPLES,
                                         SIZE_GROUPS, SIZE_SOURCES)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ADC dilation-rate statistics by person size (Fig. 6)')
    parser.add_argument('config', help='pose config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-dir',
        help='output directory (default: '
        'work_dirs/analysis/<config name>/rate_statistics)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='dataloader of the config to use (default: val)')
    parser.add_argument(
        '--max-instances',
        type=int,
        help='use only the first N person instances')
    parser.add_argument(
        '--boxes',
        choices=BOX_SOURCES,
        default='det',
        help="persons: the detections of the config's bbox_file ('det', "
        "the paper's population, default) or the ground-truth boxes "
        "('gt')")
    parser.add_argument(
        '--size-by',
        choices=SIZE_SOURCES,
        default='bbox',
        help="person size: the box w*h ('bbox', as the paper, default) or "
        "the annotation's segment 'area' (as COCOeval's size ranges; "
        'needs --boxes gt)')
    parser.add_argument(
        '--bootstrap',
        type=int,
        default=NUM_RESAMPLES,
        help='bootstrap resamples of the size-trend intervals (default '
        f'{NUM_RESAMPLES})')
    parser.add_argument(
        '--seed',
        type=int,
        default=BOOTSTRAP_SEED,
        help=f'seed of the bootstrap (default {BOOTSTRAP_SEED})')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cuda:0 (default cpu)')
    parser.add_argument(
        '--no-plots', action='store_true', help='skip the PNG plots')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.size_by == 'area' and args.boxes != 'gt':
        raise ValueError('--size-by area needs --boxes gt: detected persons '
                         'have no annotated segment area')
    if args.bootstrap < 1:
        raise ValueError(f'--bootstrap must be >= 1, got {args.bootstrap}')
    cfg = load_analysis_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint: "{args.checkpoint}" does not exist')
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0], 'rate_statistics')
    os.makedirs(out_dir, exist_ok=True)
    runner = build_analysis_runner(
        cfg,
        dict(
            type='ADCRateSizeMetric',
            size_by=args.size_by,
            num_resamples=args.bootstrap,
            seed=args.seed),
        work_dir=out_dir,
        checkpoint=args.checkpoint,
        split=args.split,
        num_samples=args.max_instances,
        boxes=args.boxes,
        device=args.device,
        source=args.config)
    metric = run_analysis_metric(runner)
    if metric.summary is None:  # not the main process
        return {}
    summary = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        split=args.split,
        boxes=dict(
            det='detections (the dataset\'s bbox_file)',
            gt='ground truth (bbox_file=None)')[args.boxes],
        **metric.summary)
    json_path = osp.join(out_dir, 'rate_statistics.json')
    dump_json(summary, json_path)
    write_rate_csv(summary, osp.join(out_dir, 'rate_statistics.csv'))
    write_trend_csv(summary, osp.join(out_dir, 'rate_size_trend.csv'))
    plots = [] if args.no_plots else plot_rate_statistics(
        summary, osp.join(out_dir, 'plots')) + plot_size_trends(
            summary, osp.join(out_dir, 'plots'))

    counts = summary['num_instances']
    print('instances: ' + ', '.join(f'{g} {counts[g]}' for g in counts))
    print(f'area sources: {summary["area_sources"]}')
    for name, entry in summary['layers'].items():
        parts = []
        for group in SIZE_GROUPS:
            spread = entry['channel_spread'][group]
            parts.append(f'{group} -' if spread['mean'] is
                         None else f'{group} {spread["mean"]:.3f} '
                         f'(sd {spread["std"]:.3f})')
        print(f'{entry["title"]} ({name}): mean rate over channels '
              '(sd across channels) ' + ', '.join(parts))
    print(f'size trend per stage (95% bootstrap intervals, '
          f'{args.bootstrap} resamples, seed {args.seed}):')
    for line in trend_lines(summary):
        print(line)
    print(f'wrote {json_path}, {len(plots)} plots in {out_dir}')
    return summary


if __name__ == '__main__':
    main()
