# Copyright (c) mmadc contributors. All rights reserved.
"""Keypoint error analysis (Ronchi & Perona, ICCV 2017) of COCO predictions.

Classifies every predicted keypoint of the predictions matched to a
ground-truth person as good, jitter, inversion, swap or miss (see
:mod:`mmadc.evaluation.functional.keypoint_errors` for the matching and
the rules), prints the proportions, writes ``error_analysis.json`` and
plots the prediction files side by side like Fig. 5 (``errors_pie.png``,
``errors_bar.png``). Inside a test run the same classification is the
metric :class:`~mmadc.evaluation.KeypointErrorMetric`.

Predictions are COCO keypoint results: mmpose's ``CocoMetric`` writes them
with ``outfile_prefix`` set, e.g. ``python tools/test.py CONFIG CKPT
--cfg-options test_evaluator.outfile_prefix=work_dirs/res50/results``
gives ``work_dirs/res50/results.keypoints.json``.

Example::

    python tools/analysis/error_analysis.py \\
        data/coco/annotations/person_keypoints_val2017.json \\
        work_dirs/res50/results.keypoints.json \\
        work_dirs/res50-adc/results.keypoints.json \\
        --labels baseline ADC --out-dir work_dirs/analysis/errors
"""
import argparse
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Optional

from mmengine.fileio import dump

from mmadc.analysis.keypoint_error_report import (format_error_table,
                                                  load_keypoint_predictions,
                                                  plot_error_comparison)
from mmadc.analysis.report_files import load_json
from mmadc.evaluation.functional.keypoint_errors import (
    MATCH_OKS, RULES, analyze_keypoint_errors)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Keypoint error analysis (good / jitter / inversion / '
        'swap / miss) of COCO keypoint predictions')
    parser.add_argument('gt', help='COCO keypoint annotation JSON')
    parser.add_argument(
        'predictions',
        nargs='+',
        help='COCO keypoint results JSON files (e.g. baseline and ADC)')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='a label per prediction file (default: the file names)')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', 'analysis', 'errors'),
        help='output directory (default: work_dirs/analysis/errors)')
    parser.add_argument(
        '--rule',
        choices=RULES,
        default='definition',
        help="'definition': the paper's definitions, the right keypoint "
        "first (default); 'argmax': the most similar candidate decides, as "
        "in the authors' code")
    parser.add_argument(
        '--match-oks',
        type=float,
        default=MATCH_OKS,
        help=f'minimum OKS to match a prediction to a person '
        f'(default {MATCH_OKS})')
    parser.add_argument(
        '--max-dets',
        type=int,
        default=20,
        help='predictions matched per image, best scores first '
        '(default 20, as COCOeval)')
    parser.add_argument(
        '--no-plots', action='store_true', help='skip the PNG plots')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    labels = args.labels or [
        osp.splitext(osp.basename(p))[0] for p in args.predictions
    ]
    if len(labels) != len(args.predictions):
        raise ValueError(f'labels: got {len(labels)} labels for '
                         f'{len(args.predictions)} prediction files')
    if len(set(labels)) != len(labels):
        raise ValueError(f'labels must be distinct, got {labels}')
    gt = load_json(args.gt, 'gt')
    reports = OrderedDict()
    for label, path in zip(labels, args.predictions):
        reports[label] = analyze_keypoint_errors(
            load_keypoint_predictions(path),
            gt,
            rule=args.rule,
            match_oks=args.match_oks,
            max_dets=args.max_dets,
            source=path)
        reports[label]['predictions_file'] = path
    print(format_error_table(reports))

    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, 'error_analysis.json')
    dump(dict(gt=args.gt, reports=reports), path, indent=1)
    plots = [] if args.no_plots else plot_error_comparison(
        reports, args.out_dir)
    print(f'wrote {path}' + ''.join(f', {p}' for p in plots))
    return reports


if __name__ == '__main__':
    main()
