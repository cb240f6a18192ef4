# Copyright (c) mmadc contributors. All rights reserved.
"""Receptive fields of a model's ADC layers for the rates it produces.

Runs the model of CONFIG (weights from CHECKPOINT if given; without one the
model as constructed, where every rate is 1) over the first N samples of
the config's val split (person crops for top-down pose configs, images for
segmentation configs; pose models run without flip test) and prints, per
ADC layer, the observed rates and the receptive fields of Eq. 8,
``(k * rho - rho + 1)^2`` with ``rho = base dilation * rate``: mean, min
and max over samples and channels. The table also goes to
``receptive_field.json`` in OUT_DIR.

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

from mmadc.analysis.rate_statistics import (
    ADCRateCollector, build_analysis_dataloader, build_analysis_model,
    dump_json, iter_batch_rates, load_analysis_config, require_adc_layers)
from mmadc.analysis.receptive_field import (ReceptiveFieldStats,
                                            format_receptive_field_table)


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
    model = build_analysis_model(cfg, args.checkpoint, args.device)
    layers = require_adc_layers(model, args.config)
    loader = build_analysis_dataloader(
        cfg, args.split, args.num_images, gt_boxes=False)
    stats = ReceptiveFieldStats(layers)
    collector = ADCRateCollector(model, args.config)
    for _, rates in iter_batch_rates(model, loader, collector):
        stats.update(rates)
    rows = stats.summary()
    print(format_receptive_field_table(rows))

    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, 'receptive_field.json')
    dump_json(
        dict(
            config=args.config,
            checkpoint=args.checkpoint,
            split=args.split,
            num_samples=len(loader.dataset),
            formula='(k * rho - rho + 1)^2, rho = dilation * rate',
            layers=rows), path)
    print(f'wrote {path}')
    return rows


if __name__ == '__main__':
    main()
