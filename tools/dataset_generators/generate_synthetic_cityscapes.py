# Copyright (c) mmadc contributors. All rights reserved.
"""Generate the synthetic Cityscapes-style segmentation dataset.

Example::

    python tools/dataset_generators/generate_synthetic_cityscapes.py \
        data/synthetic_cityscapes --num-train 100 --num-val 20

Running it again with the same arguments finds the dataset complete and does
nothing. A folder holding anything else (another size or seed, an
interrupted run, unrelated files) is left untouched unless ``--force`` is
given, which deletes only the folders this generator writes.
"""
import argparse
import sys
from functools import partial
from typing import List, Optional

from synthetic_data.cityscapes import (GENERATOR_NAME, cityscapes_owned_paths,
                                       cityscapes_params, generate_cityscapes)
from synthetic_data.output import run_generator_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic Cityscapes-style dataset '
        '(Cityscapes folder layout, loadable by mmseg CityscapesDataset).')
    parser.add_argument(
        'out_dir',
        nargs='?',
        default='data/synthetic_cityscapes',
        help='dataset root to write (default: %(default)s)')
    parser.add_argument(
        '--num-train', type=int, default=100, help='train images')
    parser.add_argument('--num-val', type=int, default=20, help='val images')
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=[256, 128],
        metavar=('W', 'H'),
        help='image width and height (default: 256 128)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--no-label-ids',
        action='store_true',
        help='do not write *_gtFine_labelIds.png (train ids only)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='delete what a previous, different or interrupted generation '
        'left in OUT_DIR and regenerate')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    params = cityscapes_params(args.num_train, args.num_val, args.image_size,
                               args.seed, not args.no_label_ids)
    return run_generator_cli(
        args.out_dir, GENERATOR_NAME, params, cityscapes_owned_paths(),
        'synthetic Cityscapes', args.force,
        partial(
            generate_cityscapes,
            args.out_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            image_size=tuple(args.image_size),
            seed=args.seed,
            write_label_ids=not args.no_label_ids))


if __name__ == '__main__':
    sys.exit(main())
