# Copyright (c) mmadc contributors. All rights reserved.
"""The main job: generate data, train and evaluate pose and segmentation.

``python tools/run_demo.py`` (what ``make demo`` runs) generates the
synthetic COCO-keypoint and Cityscapes-format sets under the repository's
``data/`` if they
are missing, trains the demo configs through ``mim train`` exactly as a user
would, and prints where the metrics, logs, checkpoints and plots are.

A previous run's work directory is never overwritten: a re-run writes to a
fresh directory next to it.
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

JOBS = [
    dict(
        task='pose',
        package='mmpose',
        config='configs/demo/td-hm_res18_1xb16-2e_synthetic-coco-128x96.py',
        metric='coco/AP'),
    dict(
        task='seg',
        package='mmseg',
        config='configs/demo/'
        'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py',
        metric='mIoU'),
]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='parent directory of the runs (default: work_dirs/demo)')
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=['pose', 'seg'],
        default=['pose', 'seg'],
        help='which demos to run')
    return parser.parse_args(argv)


def ensure_data(data_root: str, tasks: List[str]) -> None:
    """Generate the demo data sets that are not on disk yet."""
    from mmadc.datasets import generate_cityscapes, generate_coco_keypoints
    roots = {
        'pose': osp.join(data_root, 'synthetic_coco'),
        'seg': osp.join(data_root, 'synthetic_cityscapes'),
    }
    makers = {'pose': generate_coco_keypoints, 'seg': generate_cityscapes}
    for task in tasks:
        print(f'[demo] {task} data: {roots[task]}', flush=True)
        makers[task](roots[task])


def fresh_dir(path: str) -> str:
    """``path`` if unused, else ``path-2``, ``path-3``, ... (never reuse)."""
    candidate, n = path, 1
    while osp.exists(candidate):
        n += 1
        candidate = f'{path}-{n}'
    return candidate


def last_metrics(work_dir: str) -> Dict[str, float]:
    """Validation metrics of the last evaluation in an mmengine work dir."""
    metrics: Dict[str, float] = {}
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(dirpath, 'scalars.json')) as f:
                for line in f:
                    record = json.loads(line)
                    if 'loss' not in record:  # validation records only
                        metrics = record
    return metrics


def run_job(job: dict, parent: str) -> Dict[str, float]:
    name = osp.splitext(osp.basename(job['config']))[0]
    work_dir = fresh_dir(osp.join(parent, name))
    cmd = [
        sys.executable, '-m', 'mim', 'train', job['package'], job['config'],
        '--work-dir', work_dir
    ]
    print(f'[demo] {job["task"]}: {" ".join(cmd)}', flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    metrics = last_metrics(work_dir)
    print(
        f'[demo] {job["task"]} finished in {time.time() - start:.0f} s: '
        f'{job["metric"]} = {metrics.get(job["metric"])}; work dir '
        f'{work_dir} (checkpoints, logs, vis_data/scalars.json)',
        flush=True)
    return metrics


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    # the demo configs read data/synthetic_* relative to the repository
    os.chdir(ROOT)
    ensure_data('data', args.tasks)
    for job in JOBS:
        if job['task'] in args.tasks:
            run_job(job, args.work_dir)


if __name__ == '__main__':
    main()
