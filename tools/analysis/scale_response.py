# Copyright (c) mmadc contributors. All rights reserved.
"""ADC dilation rates against the input's scale, the content held fixed.

Runs the model of CONFIG (weights from CHECKPOINT) over the config's val
(or test) split once per scale ``s`` of ``--scales``, each time through
MMEngine's ``Runner.test()`` with the split's pipeline changed in one
place, :class:`~mmadc.datasets.ScaleResolution` (``s``) inserted:

- top-down pose (a pipeline with ``TopdownAffine``): right before the
  affine crop, so each person is cropped, by its box scaled with the
  image, from the image resized by ``s`` (area averaging to shrink,
  bilinear to grow), then brought to the model input as the pipeline
  always does. The crop shows the same content from ``s`` times as many
  pixels: what a person ``s`` times as large looks like to the model
  (for ``s > 1`` an upsampled image, no new detail);
- other pipelines (segmentation): right before the packing step, after
  the pipeline's ``Resize``: the whole model input is ``s`` times as
  large.

:class:`~mmadc.evaluation.ADCSampleRateMetric` is the test evaluator: for
every sample, each ADC stage's mean rate (over the stage's layers, their
channels and the sample's passes). One forward per sample (the flip test
is off). Per stage and scale the mean over samples is reported with a 95%
bootstrap percentile interval over samples (``--bootstrap`` resamples,
``--seed``; the scales resampled together, as the same samples are seen
at each), and the mean per-sample difference between the largest and the
smallest scale with its interval. Written to OUT_DIR:

- ``scale_response.json``: scales, per stage the curve and the
  difference, per layer its mean rate per scale, and each sample's stage
  rates per scale;
- ``scale_response.png``: the mean rate of each stage against the scale
  with the intervals (unless ``--no-plots``);
- ``scale_<s>/``: per scale the Runner's log and the config it ran
  (``<timestamp>/``, ``<timestamp>.py``).

Files of an earlier run are replaced only with ``--overwrite``.

Example::

    python tools/analysis/scale_response.py \\
        configs/demo/td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py \\
        work_dirs/demo/td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96/\\
epoch_40.pth --scales 0.25 0.5 1 2
"""
import argparse
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Optional

from mmengine.config import DictAction

from mmadc.analysis.analysis_runner import (BOX_SOURCES, build_analysis_runner,
                                            load_analysis_config,
                                            run_analysis_metric)
from mmadc.analysis.report_files import dump_json
from mmadc.analysis.scale_response_report import (ScaleResponseError,
                                                  check_scales,
                                                  plot_scale_response,
                                                  scale_lines, scale_report,
                                                  scaled_config)
from mmadc.evaluation.functional import BOOTSTRAP_SEED, NUM_RESAMPLES
from mmadc.utils.checkpoint_file import check_checkpoint_file
from mmadc.utils.cli import CliError, check_input_file, run_cli
from mmadc.utils.output_path import check_output_dir, check_output_files

DEFAULT_SCALES = (0.25, 0.5, 1., 2.)
OUTPUTS = ('scale_response.json', 'scale_response.png')
#: What a scale means, by where ScaleResolution went (scaled_pipeline).
SCALING = {
    'topdown':
    'each person cropped from the image resized by s (ScaleResolution '
    'before TopdownAffine), then brought to the model input as the '
    'pipeline does',
    'whole image':
    'the whole model input resized by s (ScaleResolution before the '
    'packing step)',
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ADC dilation rates against the input scale, the '
        'content held fixed')
    parser.add_argument('config', help='config file of an ADC model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--scales',
        type=float,
        nargs='+',
        default=list(DEFAULT_SCALES),
        help='the scales s, each > 0 and <= 8 (default: 0.25 0.5 1 2)')
    parser.add_argument(
        '--num-samples',
        type=int,
        help='use only the first N samples (persons or images)')
    parser.add_argument(
        '--out-dir',
        help='output directory (default: '
        'work_dirs/analysis/<config name>/scale_response)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='dataloader of the config to use (default: val)')
    parser.add_argument(
        '--boxes',
        choices=BOX_SOURCES,
        help="top-down pose: the persons of the config's detection file "
        "('det') or the ground-truth boxes ('gt'); default: the dataset as "
        'configured')
    parser.add_argument(
        '--bootstrap',
        type=int,
        default=NUM_RESAMPLES,
        help=f'bootstrap resamples of the intervals (default '
        f'{NUM_RESAMPLES})')
    parser.add_argument(
        '--seed',
        type=int,
        default=BOOTSTRAP_SEED,
        help=f'seed of the bootstrap (default {BOOTSTRAP_SEED})')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cuda:0 (default cpu)')
    parser.add_argument(
        '--no-plots', action='store_true', help='skip the PNG plot')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help="replace an earlier run's files in the output directory")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> str:
    """Every check that needs no model, before any work; returns the
    output directory."""
    args.scales = check_scales(args.scales)
    if args.num_samples is not None and args.num_samples < 1:
        raise ScaleResponseError(
            f'--num-samples must be >= 1, got {args.num_samples}')
    if args.bootstrap < 1:
        raise ScaleResponseError(
            f'--bootstrap must be >= 1, got {args.bootstrap}')
    check_input_file(args.config, 'config', 'a config file')
    check_checkpoint_file(args.checkpoint)
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0], 'scale_response')
    inputs = [(args.config, 'config'), (args.checkpoint, 'checkpoint')]
    check_output_dir(out_dir, '--out-dir', inputs=inputs)
    outputs = OUTPUTS[:1] if args.no_plots else OUTPUTS
    check_output_files([osp.join(out_dir, name) for name in outputs],
                       '--out-dir', ('.json', '.png'),
                       overwrite=args.overwrite,
                       inputs=inputs,
                       make_dirs=True)
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def run(argv: Optional[List[str]] = None) -> dict:
    """The tool; a user's mistake raises a
    :class:`~mmadc.utils.cli.CliError`.

    Args:
        argv (list[str], optional): The arguments (default: the command
            line).

    Returns:
        dict: The report written to ``scale_response.json`` (empty on
        processes other than the main one).
    """
    args = parse_args(argv)
    out_dir = _check_args(args)
    cfg = load_analysis_config(args.config, args.cfg_options)
    metric = dict(
        type='ADCSampleRateMetric',
        num_resamples=args.bootstrap,
        seed=args.seed)
    runs, summaries, mode = OrderedDict(), OrderedDict(), None
    for scale in args.scales:
        scaled, mode = scaled_config(cfg, args.split, scale)
        print(
            f'scale {scale:g} ({mode}): running the {args.split} split',
            flush=True)
        try:
            runner = build_analysis_runner(
                scaled,
                metric,
                work_dir=osp.join(out_dir, f'scale_{scale:g}'),
                checkpoint=args.checkpoint,
                split=args.split,
                num_samples=args.num_samples,
                boxes=args.boxes,
                device=args.device,
                source=args.config)
        except CliError:
            raise
        except ValueError as err:
            # build_analysis_runner's own refusals (no ADC layers, a split
            # or detection file the config lacks, an empty dataset)
            raise ScaleResponseError(str(err)) from err
        result = run_analysis_metric(runner)
        runs[scale], summaries[scale] = result.samples, result.summary
    if any(s is None for s in runs.values()):  # not the main process
        return {}
    report = scale_report(
        runs,
        summaries,
        args.bootstrap,
        args.seed,
        config=args.config,
        checkpoint=args.checkpoint,
        split=args.split,
        boxes=args.boxes or 'as configured',
        scaling=SCALING[mode])
    json_path = osp.join(out_dir, OUTPUTS[0])
    dump_json(report, json_path)
    written = [json_path]
    if not args.no_plots:
        written.append(
            plot_scale_response(
                report, osp.join(out_dir, OUTPUTS[1]),
                f'{osp.basename(args.config)}: ADC rates against scale '
                f'(n={report["num_samples"]})'))
    print(f'samples: {report["num_samples"]}; mean rate per stage and scale '
          f'(95% bootstrap intervals, {args.bootstrap} resamples, seed '
          f'{args.seed}):')
    for line in scale_lines(report):
        print(line)
    print('wrote ' + ', '.join(written))
    return report


def main(argv: Optional[List[str]] = None) -> dict:
    """:func:`run`, a user's mistake ending with one line
    (``scale_response.py: error: ...``) and exit status 1."""
    return run_cli(run, argv, prog='scale_response.py')


if __name__ == '__main__':
    main()
