# Copyright (c) mmadc contributors. All rights reserved.
"""The main job: generate data, then train and evaluate ADC and baselines.

``python tools/run_demo.py`` (what ``make demo`` runs):

1. generates the synthetic COCO-keypoint and Cityscapes-format sets under
   the repository's ``data/`` unless they are already there (the generators
   refuse to touch a folder holding something else);
2. trains and evaluates, through ``mim train`` exactly as a user would,
   SimpleBaseline ResNet-18 with and without ADC (COCO AP by mmpose's
   CocoMetric) and FCN ResNet-18 with and without ADC (mIoU by mmseg's
   IoUMetric), each pair on the same data and budget;
3. prints a summary table and writes it to ``work_dirs/demo/summary.json``.

Every run gets a fresh work directory: a previous run's directory is never
reused or deleted (a re-run writes ``...-2``, ``...-3``, ...).

``python tools/run_demo.py --seeds 0 1 2`` trains each demo config once per
seed instead, ``mim train ... --cfg-options randomness.seed=S`` into
``<config name>-seed<S>``: the seed sets the weights' initialisation, the
data order and the augmentation draws (the generated data sets are the same
for every seed). The summary then also gives, per task, each model's mean
+- standard deviation over the seeds and the paired difference ADC -
baseline (per seed, same seed for both) with its 95% t-interval (paired t
over the seeds, ``df = n - 1``), in the table, in ``seed_statistics.json``
and in one plot, ``seed_statistics.png``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG_DIR = 'configs/demo'

JOBS = [
    dict(
        task='pose',
        package='mmpose',
        metric='coco/AP',
        adc=False,
        config='td-hm_res18_1xb32-40e_synthetic-coco-128x96.py'),
    dict(
        task='pose',
        package='mmpose',
        metric='coco/AP',
        adc=True,
        config='td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py'),
    dict(
        task='seg',
        package='mmseg',
        metric='mIoU',
        adc=False,
        config='fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py'),
    dict(
        task='seg',
        package='mmseg',
        metric='mIoU',
        adc=True,
        config='fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128.py'),
]
GENERATORS = {
    'pose': ('generate_synthetic_coco.py', 'data/synthetic_coco'),
    'seg': ('generate_synthetic_cityscapes.py', 'data/synthetic_cityscapes'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='parent directory of the runs (default: %(default)s)')
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=['pose', 'seg'],
        default=['pose', 'seg'],
        help='which demos to run (default: both)')
    parser.add_argument(
        '--no-baseline',
        action='store_true',
        help='train only the ADC models, not the baselines')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        metavar='SEED',
        help='train each demo config once per seed (randomness.seed: '
        'weights, data order, augmentation) and report mean +- std and ADC '
        '- baseline with a 95%% paired t-interval over the seeds (default: '
        "one run each with the configs' seed, 0)")
    args = parser.parse_args(argv)
    if args.seeds is not None:
        for i, seed in enumerate(args.seeds):
            if not 0 <= seed < 2**32:
                parser.error(f'--seeds: a seed must be in [0, 2**32), got '
                             f'{seed}')
            if seed in args.seeds[:i]:
                parser.error(f'--seeds: seed {seed} is given twice')
    return args


def ensure_data(task: str) -> None:
    """Generate a task's data set unless it is already complete."""
    script, out_dir = GENERATORS[task]
    print(f'[demo] {task} data: {out_dir}', flush=True)
    subprocess.run([
        sys.executable,
        osp.join('tools', 'dataset_generators', script), out_dir
    ],
                   check=True)


def _unused(stem: str, ext: str) -> str:
    """``stem + ext`` if unused, else ``stem-2 + ext``, ``stem-3 + ext``,
    ... (never reuse)."""
    candidate, n = stem + ext, 1
    while osp.exists(candidate):
        n += 1
        candidate = f'{stem}-{n}{ext}'
    return candidate


def fresh_dir(path: str) -> str:
    """``path`` if unused, else ``path-2``, ``path-3``, ..."""
    return _unused(path, '')


def fresh_file(path: str) -> str:
    """``path`` if unused, else ``stem-2.ext``, ``stem-3.ext``, ... (the
    extension kept for the writers that go by it)."""
    return _unused(*osp.splitext(path))


def last_metrics(work_dir: str) -> Dict[str, float]:
    """Metrics of the last validation logged in an mmengine work dir."""
    metrics: Dict[str, float] = {}
    for dirpath, _, files in sorted(os.walk(work_dir)):
        if 'scalars.json' in files:
            with open(osp.join(dirpath, 'scalars.json')) as f:
                for line in f:
                    record = json.loads(line)
                    if 'loss' not in record:  # validation records only
                        metrics = record
    return metrics


def run_job(job: dict, parent: str, seed: Optional[int] = None) -> dict:
    """Train (with evaluation) one demo config through ``mim train``, with
    the config's seed or with ``randomness.seed=seed``."""
    config = osp.join(DEMO_CFG_DIR, job['config'])
    name = osp.splitext(job['config'])[0]
    if seed is not None:
        name += f'-seed{seed}'
    work_dir = fresh_dir(osp.join(parent, name))
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    cmd = [mim, 'train', job['package'], config, '--work-dir', work_dir]
    if seed is not None:
        cmd += ['--cfg-options', f'randomness.seed={seed}']
    print(f'\n[demo] {job["task"]}: {" ".join(cmd)}', flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    minutes = (time.time() - start) / 60
    value = last_metrics(work_dir).get(job['metric'])
    print(
        f'[demo] {job["task"]} done in {minutes:.1f} min: '
        f'{job["metric"]} = {value}',
        flush=True)
    result = dict(
        task=job['task'],
        adc=job['adc'],
        config=config,
        metric=job['metric'],
        value=value,
        minutes=round(minutes, 2),
        work_dir=work_dir)
    if seed is not None:
        result['seed'] = seed
    return result


def print_summary(results: List[dict], path: str) -> None:
    seeds = any('seed' in r for r in results)
    print('\n[demo] summary (same data and budget for each pair)')
    print(f'{"task":<5} {"model":<9} ' + ('seed  ' if seeds else '') +
          f'{"metric":<8} {"value":>8} {"minutes":>8}  work dir')
    for r in results:
        model = 'ADC' if r['adc'] else 'baseline'
        value = 'n/a' if r['value'] is None else f'{r["value"]:.4f}'
        seed = f'{r.get("seed", ""):<5} ' if seeds else ''
        print(f'{r["task"]:<5} {model:<9} {seed}{r["metric"]:<8} '
              f'{value:>8} {r["minutes"]:>8.1f}  {r["work_dir"]}')
    print(f'\nsummary: {path}\n'
          'each work dir holds the checkpoints (best_*.pth, last), the log '
          '(<timestamp>/<timestamp>.log) and the\nlogged curves for plots '
          '(<timestamp>/vis_data/scalars.json; add TensorboardVisBackend '
          'to vis_backends for TensorBoard).')


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    os.chdir(ROOT)  # the demo configs read data/... relative to the repo
    for task in args.tasks:
        ensure_data(task)
    jobs = [
        job for job in JOBS
        if job['task'] in args.tasks and (job['adc'] or not args.no_baseline)
    ]
    if args.seeds is None:
        results = [run_job(job, args.work_dir) for job in jobs]
    else:  # seed by seed: an interrupted run leaves whole pairs
        results = [
            run_job(job, args.work_dir, seed) for seed in args.seeds
            for job in jobs
        ]
    os.makedirs(args.work_dir, exist_ok=True)
    path = fresh_dir(osp.join(args.work_dir, 'summary.json'))
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
    print_summary(results, path)
    if args.seeds is not None:
        report_seeds(results, args.work_dir)
    return results


def report_seeds(results: List[dict], parent: str) -> List[dict]:
    """Print and write the statistics over the seeds: per task each
    model's mean +- std and ADC - baseline with its 95% paired t-interval
    (``seed_statistics.json``, ``seed_statistics.png``)."""
    from mmadc.analysis.report_files import dump_json
    from mmadc.analysis.seed_comparison import (compare_over_seeds,
                                                plot_seed_comparison,
                                                seed_table)
    comparisons = compare_over_seeds(results)
    path = fresh_file(osp.join(parent, 'seed_statistics.json'))
    dump_json(comparisons, path)
    plot = plot_seed_comparison(
        comparisons, fresh_file(osp.join(parent, 'seed_statistics.png')))
    seeds = sorted({r['seed'] for r in results})
    print(f'\n[demo] over the seeds {" ".join(map(str, seeds))} (mean +- '
          'std with ddof=1; the difference per seed, both models trained '
          'with that seed)')
    for line in seed_table(comparisons):
        print(line)
    print(f'\nseed statistics: {path}\nplot: {plot}')
    return comparisons


if __name__ == '__main__':
    main()
