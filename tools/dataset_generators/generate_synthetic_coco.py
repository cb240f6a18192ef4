# Copyright (c) mmadc contributors. All rights reserved.
"""Generate the synthetic COCO person-keypoint dataset.

Example::

    python tools/dataset_generators/generate_synthetic_coco.py \
        data/synthetic_coco --num-train 200 --num-val 50

Running it again with the same arguments finds the dataset complete and does
nothing. A folder holding anything else (another size or seed, an
interrupted run, unrelated files) is left untouched unless ``--force`` is
given, which deletes only the files and folders this generator writes.
"""
import argparse
import sys
from functools import partial
from typing import List, Optional

from synthetic_data.coco import (GENERATOR_NAME, coco_owned_paths, coco_params,
                                 generate_coco_keypoints)
from synthetic_data.output import run_generator_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic COCO person-keypoint dataset '
        '(COCO folder layout, loadable by mmpose CocoDataset).')
    parser.add_argument(
        'out_dir',
        nargs='?',
        default='data/synthetic_coco',
        help='dataset root to write (default: %(default)s)')
    parser.add_argument(
        '--num-train', type=int, default=200, help='train2017 images')
    parser.add_argument(
        '--num-val', type=int, default=50, help='val2017 images')
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=[320, 240],
        metavar=('W', 'H'),
        help='image width and height (default: 320 240)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--max-persons', type=int, default=4, help='persons per image, max')
    parser.add_argument(
        '--jpeg-quality', type=int, default=90, help='JPEG quality (1-100)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='delete what a previous, different or interrupted generation '
        'left in OUT_DIR and regenerate')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    params = coco_params(args.num_train, args.num_val, args.image_size,
                         args.seed, args.max_persons, args.jpeg_quality)
    return run_generator_cli(
        args.out_dir, GENERATOR_NAME, params, coco_owned_paths(),
        'synthetic COCO keypoints', args.force,
        partial(
            generate_coco_keypoints,
            args.out_dir,
            num_train_images=args.num_train,
            num_val_images=args.num_val,
            image_size=tuple(args.image_size),
            seed=args.seed,
            max_persons=args.max_persons,
            jpeg_quality=args.jpeg_quality))


if __name__ == '__main__':
    sys.exit(main())
