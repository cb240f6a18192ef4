# Copyright (c) mmadc contributors. All rights reserved.
"""Draw a top-down pose model's keypoints and skeleton on images.

Through mmpose's own API (``init_model``, ``inference_topdown`` and the
config's ``PoseLocalVisualizer``)::

    python tools/demo/pose_image_demo.py IMG CONFIG CHECKPOINT \\
        [--bboxes X1,Y1,X2,Y2 ...] [--det-file DETECTIONS.json] \\
        --out-file OUT.jpg        # or a folder IMG with --out-dir DIR

Without boxes the whole image is one person box. ``--det-file`` takes a
COCO detection results file (as the configs' ``bbox_file``); images are
matched to it by their COCO file names. Existing outputs are kept unless
``--overwrite`` is given.
"""
import argparse
import sys

import mmcv
import numpy as np
from mmengine.config import DictAction

from mmadc.apis import (check_boxes_inside, init_pose_model, parse_boxes,
                        plan_outputs, read_image)
from mmadc.apis.demo_io import image_id_of, load_detections
from mmadc.utils.cli import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('config', help='an mmpose top-down config')
    parser.add_argument('checkpoint', help='a checkpoint of that config')
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument(
        '--bboxes',
        nargs='+',
        metavar='X1,Y1,X2,Y2',
        help='person boxes in pixels (default: the whole image)')
    boxes.add_argument(
        '--det-file', help='COCO detection results file of the images')
    parser.add_argument(
        '--det-score-thr',
        type=float,
        default=0.3,
        help='--det-file: keep boxes scoring at least this (%(default)s)')
    parser.add_argument('--out-file', help='the drawn image (one input)')
    parser.add_argument('--out-dir', help='folder of the drawn images')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing output files (default: refuse)')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.3,
        help='draw keypoints scoring at least this (%(default)s)')
    parser.add_argument(
        '--radius', type=int, default=3, help='keypoint radius')
    parser.add_argument(
        '--thickness', type=int, default=1, help='skeleton line width')
    parser.add_argument(
        '--draw-bbox', action='store_true', help='draw the person boxes')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    from mmengine.utils import ProgressBar
    from mmpose.apis import inference_topdown
    from mmpose.registry import VISUALIZERS
    from mmpose.structures import merge_data_samples

    from mmadc.visualization.pose_local_visualizer import \
        compatible_visualizer_cfg

    args = parse_args(argv)
    pairs = plan_outputs(
        args.img, args.out_file, args.out_dir, args.overwrite,
        make_dirs=True)  # mmcv.imwrite makes the folders
    boxes = parse_boxes(args.bboxes)
    detections = None if args.det_file is None else load_detections(
        args.det_file, args.det_score_thr)
    model = init_pose_model(args.config, args.checkpoint, args.device,
                            args.cfg_options)
    vis_cfg = compatible_visualizer_cfg(model.cfg.visualizer)
    vis_cfg.update(radius=args.radius, line_width=args.thickness)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.set_dataset_meta(model.dataset_meta)

    written = []
    bar = ProgressBar(len(pairs))
    for path, out in pairs:
        image = read_image(path)
        image_boxes = boxes
        if detections is not None:
            image_boxes = detections.get(
                image_id_of(path), np.zeros((0, 4), np.float32))
        if image_boxes is not None and len(image_boxes):
            check_boxes_inside(image_boxes, image, path)
        if image_boxes is not None and not len(image_boxes):
            mmcv.imwrite(image, out)  # no person detected: nothing to draw
        else:
            results = inference_topdown(model, image, image_boxes, 'xyxy')
            visualizer.add_datasample(
                'result',
                mmcv.bgr2rgb(image),
                data_sample=merge_data_samples(results),
                draw_gt=False,
                draw_bbox=args.draw_bbox,
                kpt_thr=args.kpt_thr,
                out_file=out)
        written.append(out)
        bar.update()
    sys.stdout.write('\n')
    print(f'wrote {len(written)} image(s): '
          f'{written[0] if len(written) == 1 else args.out_dir}')
    return written


if __name__ == '__main__':
    run_cli(main)
