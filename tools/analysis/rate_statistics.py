# Copyright (c) mmadc contributors. All rights reserved.
"""Dilation-rate statistics of a pose model's ADC layers by person size.

Runs the model of CONFIG (weights from CHECKPOINT) in test mode over the
config's val (or test) split, one forward per person: the val dataset is
used with ``bbox_file=None``, so the persons are the ground-truth instances
(cropped with their GT boxes, each with a known area) and not detections,
and the flip test is off (the rates are those of the unflipped crop).
Every ADC layer's rates are grouped by the person's size (COCO's small
``area < 32^2``, medium ``32^2 <= area < 96^2``, large ``area >= 96^2``;
the annotation ``area`` by default, the GT box ``w * h`` with ``--size-by
bbox``) and written to OUT_DIR:

- ``rate_statistics.json``: per layer, dilation group and size group the
  mean and the (population) variance of the rate, plus the instance counts;
- ``rate_statistics.csv``: the same as a long table;
- ``plots/rates_<stage>.png``: Fig. 6 of the paper, one subplot per block.

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

from mmadc.analysis.rate_statistics import (
    SIZE_SOURCES, ADCRateCollector, SizeGroupedRateStats,
    build_analysis_dataloader, build_analysis_model, dump_json, instance_area,
    iter_batch_rates, load_analysis_config, plot_rate_statistics,
    require_adc_layers, size_group, write_rate_csv)


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
        '--size-by',
        choices=SIZE_SOURCES,
        default='area',
        help="person size: the annotation's 'area' (as COCOeval's size "
        "ranges, default) or its box w*h ('bbox', as the paper)")
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
    cfg = load_analysis_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint: "{args.checkpoint}" does not exist')
    model = build_analysis_model(cfg, args.checkpoint, args.device)
    layers = require_adc_layers(model, args.config)
    loader = build_analysis_dataloader(
        cfg, args.split, args.max_instances, gt_boxes=True)
    stats = SizeGroupedRateStats(layers)
    collector = ADCRateCollector(model, args.config)
    for batch, rates in iter_batch_rates(model, loader, collector):
        areas = [instance_area(s, args.size_by) for s in batch['data_samples']]
        stats.update(rates, [size_group(a) for a, _ in areas],
                     [src for _, src in areas])

    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0], 'rate_statistics')
    os.makedirs(out_dir, exist_ok=True)
    summary = stats.summary(
        config=args.config,
        checkpoint=args.checkpoint,
        split=args.split,
        boxes='ground truth (bbox_file=None)',
        size_by=args.size_by)
    json_path = osp.join(out_dir, 'rate_statistics.json')
    dump_json(summary, json_path)
    write_rate_csv(summary, osp.join(out_dir, 'rate_statistics.csv'))
    plots = [] if args.no_plots else plot_rate_statistics(
        summary, osp.join(out_dir, 'plots'))

    counts = summary['num_instances']
    print('instances: ' + ', '.join(f'{g} {counts[g]}' for g in counts))
    print(f'area sources: {summary["area_sources"]}')
    for name, entry in summary['layers'].items():
        means = []
        for group in ('small', 'medium', 'large'):
            st = entry['groups'][group]
            vals = [v for v in st['mean'] if v is not None]
            means.append(f'{group} {sum(vals) / len(vals):.3f}'
                         if vals else f'{group} -')
        print(f'{name}: mean rate ' + ', '.join(means))
    print(f'wrote {json_path}, {len(plots)} plots in {out_dir}')
    return summary


if __name__ == '__main__':
    main()
