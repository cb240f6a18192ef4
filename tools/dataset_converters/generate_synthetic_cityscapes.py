# Copyright (c) mmadc contributors. All rights reserved.
"""Generate the synthetic Cityscapes-style segmentation dataset.

Example::

    python tools/dataset_converters/generate_synthetic_cityscapes.py \
        data/synthetic_cityscapes --num-train 100 --num-val 20

Running it again with the same arguments finds the dataset complete and does
nothing. A folder holding anything else (another size or seed, an
interrupted run, unrelated files) is left untouched unless ``--force`` is
given, which deletes only the folders this generator writes.
"""
import argparse
import sys
from typing import List, Optional

from mmadc.datasets.synthetic_cityscapes import (GENERATOR_NAME,
                                                 cityscapes_owned_paths,
                                                 cityscapes_params,
                                                 generate_cityscapes)
from mmadc.datasets.synthetic_utils import (ABSENT, COMPLETE, MANIFEST_NAME,
                                            describe_state, inspect_output)


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


def print_progress(split: str, done: int, total: int) -> None:
    step = max(1, total // 10)
    if done == total or done % step == 0:
        print(f'  {split}: {done}/{total} images', flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    params = cityscapes_params(args.num_train, args.num_val, args.image_size,
                               args.seed, not args.no_label_ids)
    state = inspect_output(args.out_dir, GENERATOR_NAME, params)
    if state == COMPLETE:
        print(f'{args.out_dir} already holds this synthetic Cityscapes '
              'dataset (complete); nothing to do.')
        return 0
    if state != ABSENT and not args.force:
        owned = ', '.join(cityscapes_owned_paths() + [MANIFEST_NAME])
        print(
            f'error: refusing to write into {args.out_dir}: '
            f'{describe_state(state)}. Nothing was changed. Choose another '
            f'folder, or pass --force to delete [{owned}] there and '
            'regenerate.',
            file=sys.stderr)
        return 1
    print(f'Generating synthetic Cityscapes into {args.out_dir} '
          f'({args.num_train} train + {args.num_val} val images, '
          f'{args.image_size[0]}x{args.image_size[1]}, seed {args.seed})')
    paths = generate_cityscapes(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=tuple(args.image_size),
        seed=args.seed,
        write_label_ids=not args.no_label_ids,
        overwrite=state != ABSENT,
        progress=print_progress)
    for key, path in paths.items():
        print(f'  {key}: {path}')
    print('Done.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
